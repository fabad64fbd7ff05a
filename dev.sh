#!/usr/bin/env bash
# Set up a virtual environment in .venv (once) and run the demo or the test suite.
#   bash dev.sh demo   set up, then run TSPG on the built-in synthetic atlas (outputs in tspg-demo/)
#   bash dev.sh test   set up with the test tools, then run the whole test suite (slow tests included) in a random
#                      order; it prints the order's seed, and TSPG_TEST_SEED=N bash dev.sh test repeats that order
# The fast part alone (the slow real-data and end-to-end tests left out, as pyproject's addopts say):
#   .venv/bin/python -m pytest -q       (add -p no:randomly for the file order, --randomly-seed=N for one order)
set -euo pipefail
cd "$(dirname "$0")"
what="${1:-demo}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# Install PyTorch's CPU build pin only where no torch is present (users with a GPU keep theirs).
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  "$VPY" -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
  "$VPY" -W ignore -c "import torch" || { echo "dev.sh: installing torch failed" >&2; exit 1; }
fi
case "$what" in
  demo)
    "$VPY" -m pip install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/tspg demo --out tspg-demo --force
    ;;
  test)
    "$VPY" -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/ruff check src tests benchmarks
    seed="${TSPG_TEST_SEED:-$(( $(date +%s) % 100000 ))}"
    echo "dev.sh: whole suite in random order, seed $seed (TSPG_TEST_SEED=$seed bash dev.sh test repeats it)"
    # -m "slow or not slow" overrides pyproject's -m "not slow": every test runs
    .venv/bin/python -m pytest -q -m "slow or not slow" -p randomly --randomly-seed="$seed"
    ;;
  *)
    echo "usage: bash dev.sh demo|test" >&2
    exit 2
    ;;
esac
