"""The replay data path: how experience travels from the workers to the learner's
batches, and weights back.

- `format`: the experiment's replay format (`ReplayFormat`: layout, window, n-step,
  structure), decided once at launch and recorded; every part below takes it.
- `packing`: a transition (or an n-step transition, or a replay window) <-> one
  float32 row, and the workers' row builders.
- `writers`: the workers' side, one writer per layout.
- `limits`: the replay settings and rate limits (`ReplaySettings`, `RatioLimit`).
- `tables`: the replay server's tables and rate limiters.
- `client`: reaching the server, the weights exchange, reconnecting.
- `auth`: the experiment's key; signing and checking blocks and weights.
- `memory`: the learner's own replay buffer (packed_blocks) and its log.
- `datasets`: batches sampled from Reverb (the Reverb-sampled layouts).
- `sources`: the learner's one interface over all of them, `DataSource`.
- `demo_store`: demonstrations stored with the experiment and mixed into batches.
- `checkpoints`: Reverb's checkpoints kept safe from kills and concurrent saves.
- `budget`: how much RAM the learner's replay memory may take.
"""
