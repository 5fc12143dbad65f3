#!/usr/bin/env bash
# `make test`: lint, type-check, the whole suite against the real emulators, then proof
# that no process this run started is still running. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

# Every process started below inherits this marker, detached emulators included.
export PYTEST_FIREBASE_RUN_MARKER="run-$(date +%s)-$$-$RANDOM"

# Each phase's time is printed, so a run over the 15-minute budget says where it went.
phase() {
  local name=$1 started=$SECONDS done
  shift
  "$@"
  done=$?
  echo "make test: $name took $((SECONDS - started)) s"
  return $done
}

# Lint runs beside pytest (the emulators' start-up mostly waits; mypy takes one core), and
# its report is printed once pytest is done.
status=0
mkdir -p .cache
phase lint ./scripts/lint.sh > .cache/lint.log 2>&1 &
lint_pid=$!
# One process, one stack. `./scripts/test.sh -n 2` runs two workers with a stack each
# (README, "Running tests selectively"); measured on the shared 2-core machine it was
# slower, not faster, so it is not the default.
phase pytest .venv/bin/python -m pytest "$@" || status=1
wait $lint_pid || status=1
cat .cache/lint.log
.venv/bin/python -m pytest_firebase.procs "$PYTEST_FIREBASE_RUN_MARKER" || status=1
exit $status
