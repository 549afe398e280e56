"""The settings the tests' small experiments share: Pendulum-sized networks and batches
that train for real in seconds. Params files written by a test build on it after
`launch_helpers.TINY_BASE`, which puts this folder on their path."""

from tfagents_system.params import TrainParamsBase


class TinyParams(TrainParamsBase):
    batch_size = 32
    min_replay_size = 64
    actor_fc_layers = (16,)
    critic_joint_fc_layers = (16,)
    n_buffer_init_episodes = 2
    n_eval_episodes = 1
    # One gradient step per env step: the learner waits for collection, so what the
    # workers do (curricula, restarts, metrics) happens while it trains.
    samples_per_insert = 32.0
