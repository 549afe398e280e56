#!/usr/bin/env bash
# Throughput benchmark: ./benchmarks/run.sh [--quick] [--output FILE]
# Learning with the learner's replay memory vs Reverb's buffer, at equal env steps:
#   ./benchmarks/run.sh layout_ab [--seeds 0 1 2]   (writes docs/layout_ab.md)
# Learning of the locomotion preset against RL Baselines3 Zoo (and SB3 on this machine):
#   ./benchmarks/run.sh learning [--tasks ...] [--env_steps N] [--seeds K] [--with-sb3]
#   (writes docs/learning.md and docs/learning.png; hours: see docs/learning.md)
# Hindsight relabeling's cost on a worker against the learner (docs/manipulation.md):
#   ./benchmarks/run.sh her_cost [--seconds S]
# Pixels: the worker, learner and replay memory of the pixel layout (docs/pixels.md):
#   ./benchmarks/run.sh pixels [--task dm_control/cartpole-swingup] [--seconds S]
# What a gradient step of each learning variant costs (CrossQ's critic widths against SAC):
#   ./benchmarks/run.sh agent_cost [--task T] [--variants sac crossq_w256 crossq_w512 crossq]
# One part (worker or learner) against another checkout, alternating (docs/architecture.md):
#   ./benchmarks/run.sh ab --part worker --before /path/to/old/checkout [--pairs 2]
# Whether the default SAC path computes the same numbers as another checkout's:
#   ./benchmarks/run.sh same_numbers --before /path/to/old/checkout [--steps 20]
# Measures the learner, a worker, N workers and weight staleness against their
# baselines side by side, prints the table and writes docs/performance.md.
# Uses the project's Python environment (created on first use, as run_script.sh
# does; SAC_PYTHON=/path/to/python uses that interpreter as is).
# A full run takes about 9 minutes on an idle 2-CPU machine; --quick about 2.
# Run it on an otherwise idle machine: the document records the load average.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/ensure_env.sh"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
case "${1:-}" in
  layout_ab|ab|her_cost|pixels|learning|agent_cost|same_numbers)
    module="$1"
    shift
    exec "$SAC_PYTHON" -m "benchmarks.$module" "$@" ;;
esac
exec "$SAC_PYTHON" -m benchmarks.run "$@"
