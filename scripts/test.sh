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
# Two workers (pytest-xdist), each with an emulator stack of its own: gw0 on the run's
# port offset, gw1 on it plus 10000 (pytest_firebase.parallel). The tests mostly wait on
# the emulators, so two stacks on two cores finish sooner than one. `-n 0` runs serially.
phase pytest .venv/bin/python -m pytest -n 2 "$@" || status=1
wait $lint_pid || status=1
cat .cache/lint.log
.venv/bin/python -m pytest_firebase.procs "$PYTEST_FIREBASE_RUN_MARKER" || status=1
exit $status
