#!/usr/bin/env bash
# ruff (lint + format check) and mypy (strict on the core and the harness).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python rules/build.py --check
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy functions/firekit functions/marketplace functions/api functions/main.py \
  pytest_firebase seed scripts/devstack.py scripts/dev.py
