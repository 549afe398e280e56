"""The offline tools, apart from the programs: they read an experiment's files and
its exported policies, never a running program's state.

- `evaluation`: evaluate a trained policy (a checkpoint, or an ensemble) and render
  its episodes to MP4 videos (`python -m tfagents_system.run`).
- `ensemble`: several greedy policies acting as one, and its export.
- `condition_sweep`: evaluation across environment conditions.
- `plots`: learning curves from TensorBoard events (`python -m tfagents_system.plot`).
- `status`: an experiment's state (`python -m tfagents_system.status`).
"""
