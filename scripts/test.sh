#!/usr/bin/env bash
# Set up .venv (if needed) with the pinned requirements and run the whole test suite.
#   bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
export PIP_CONSTRAINT="$PWD/constraints.txt"
# OpenMP threads that sleep instead of spinning while they wait: on a busy or shared machine
# the default busy-waiting made the suite many times slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
# The house format and lint (ruff is pinned in requirements-dev.txt, so both mean the same
# everywhere); a failure names the files: `ruff format .` rewrites them.
.venv/bin/ruff format --check --quiet . || { echo "error: files above are not ruff-formatted: run .venv/bin/ruff format ." >&2; exit 1; }
.venv/bin/ruff check --quiet .
.venv/bin/python -m pytest -q "$@"
