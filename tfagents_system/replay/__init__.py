"""The replay data path: how experience travels from the workers to the learner's
batches, and weights back.

- `layouts`: the experience-item layout of an experiment (chosen once, recorded).
- `packing`: one transition <-> one float32 vector.
- `writers`: the workers' side, one writer per layout.
- `tables`: the replay server's tables and rate limiters.
- `client`: reaching the server, the weights exchange, reconnecting.
- `memory`: the learner's own replay buffer (packed_blocks) and its log.
- `datasets`: batches sampled from Reverb (the Reverb-sampled layouts).
- `sources`: the learner's one interface over both, `DataSource`.
"""
