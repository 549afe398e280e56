"""The SAC agent, built from parts.

- `settings`: the agent's settings (`AgentSettings`) and the defaults of each kind of
  network (feed-forward, recurrent).
- `encoders`: what turns an observation into the networks' input (the default
  combiner of structured observations; the place for image encoders).
- `networks`: the actor and critic networks (MLP and LSTM).
- `losses`: the terms SAC's losses are assembled from: the TD target, the policy's
  penalty (entropy, or divergence from a prior policy), the reduction over a batch or
  over replay windows' masked steps, and behaviour cloning.
- `prior`: a prior policy's log-density, loaded from a SavedModel, and its checks.
- `sac`: `SacAgent`, one SAC whose losses are built from those terms, and `make_agent`.
- `gsde`: generalized state-dependent exploration's actor head (`use_sde`).
- `batch_renorm`, `crossq`: batch renormalization and CrossQ's networks, and
  `CrossQAgent`, SAC's parts without target networks (`agent = "crossq"`).
- `behaviour_cloning`: the warm start that clones demonstrations into the actor.
- `export`: the policy savers and the exported policies the workers and tools load.
"""
