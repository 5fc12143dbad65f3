#!/usr/bin/env bash
# Static checks: rules and client-contract freshness (and the contract's TypeScript),
# ruff (lint + format), mypy (strict on the core and the harness). Runs them all and fails if any failed, so one run shows every problem.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
.venv/bin/python rules/build.py --check || status=1
.venv/bin/python rules/matrix.py --check || status=1
.venv/bin/python contract/build.py --check || status=1
node_modules/.bin/tsc -p contract || status=1
node_modules/.bin/tsc -p console || status=1
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1
.venv/bin/mypy functions/firekit functions/marketplace functions/api functions/main.py \
  pytest-firebase/src/pytest_firebase seed scripts/devstack.py scripts/dev.py rules/generator.py \
  rules/build.py rules/matrix.py contract/build.py contract/docs.py bench || status=1
exit $status
