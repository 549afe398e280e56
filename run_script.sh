#!/usr/bin/env bash
# Train SAC on one machine: ./run_script.sh TRAINING_VARIABLES.sh
# On first use this creates the project's Python environment (pinned versions),
# then hands over to train_script.sh, which starts and watches every program.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<USAGE
usage: ./run_script.sh TRAINING_VARIABLES.sh
       ./run_script.sh --status EXPERIMENT_DIR

Trains SAC as separate processes (replay server, learner, collect/eval workers)
as described by the training variables file, e.g. ./run_script.sh training_variables.sh
Relaunching the same experiment resumes it from its checkpoints.
--status prints the state of a running or finished experiment.
See README.md for every variable.
USAGE
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --status)
    if [ $# -ne 2 ]; then usage >&2; exit 2; fi
    source "$ROOT/scripts/ensure_env.sh"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    exec "$SAC_PYTHON" -m tfagents_system.status "$2" ;;
esac
if [ $# -ne 1 ]; then usage >&2; exit 2; fi
if [ ! -f "$1" ]; then
  echo "error: training variables file $1: not found; pass an existing file, e.g. ./run_script.sh training_variables.sh" >&2
  exit 2
fi
source "$ROOT/scripts/ensure_env.sh"
exec "$ROOT/train_script.sh" "$1"
