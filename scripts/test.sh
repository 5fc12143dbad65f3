#!/usr/bin/env bash
# `make test`: lint, type-check, the whole suite against the real emulators, then proof
# that no process this run started is still running. Extra arguments go to pytest (both
# phases; give -m only through a phase of your own).
set -uo pipefail
cd "$(dirname "$0")/.."

# Every process started below inherits this marker, detached emulators included.
export PYTEST_FIREBASE_RUN_MARKER="run-$(date +%s)-$$-$RANDOM"

# pytest, where "no tests selected" (5: extra arguments that pick one phase only) is fine.
pytest() {
  .venv/bin/python -m pytest "$@"
  local rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 5 ]
}

status=0
./scripts/lint.sh || status=1
# Two phases. The tests that need the Functions emulator's triggers (marked e2e) run on the
# whole stack; every other test then runs on a stack without it, where no write is also
# delivered to dozens of paused triggers (see devstack.IN_PROCESS_EMULATORS): about half
# the time for the same tests.
pytest -m e2e "$@" || status=1
pytest -m "not e2e" --in-process-stack "$@" || status=1
.venv/bin/python -m pytest_firebase.procs "$PYTEST_FIREBASE_RUN_MARKER" || status=1
exit $status
