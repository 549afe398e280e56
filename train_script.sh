#!/usr/bin/env bash
# Starts one experiment's programs (replay server, learner, N workers), each
# pinned with taskset to its CPU slice, watches them and stops them together.
# Usually called by run_script.sh; SAC_PYTHON selects the interpreter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${SAC_PYTHON:-$ROOT/.venv/bin/python}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m tfagents_system.launch "$@"
