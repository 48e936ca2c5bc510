#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv (CPU PyTorch first), installs the package, runs a job.
#   bash run.sh example [args]   the main job on the embedded example (see README)
#   bash run.sh test [args]      the test suite (what CI runs)
set -euo pipefail
cd "$(dirname "$0")"
VENV="${TRANSVERT_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.transvert-installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # the CPU build of torch first: a plain `torch` requirement would pull a multi-GB CUDA build
  "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
  "$VENV/bin/python" -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
job="${1:-}"
shift || true
case "$job" in
  example) exec "$VENV/bin/transvert-example" "$@" ;;
  test) exec "$VENV/bin/python" -m pytest "$@" ;;
  *) echo "usage: bash run.sh example|test [args]" >&2; exit 2 ;;
esac
