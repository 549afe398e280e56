"""Learning from prior data on the default pendulum (README, "Learning from prior
data"): the default example's SAC settings at a fixed replay ratio of one gradient
step per env step, so that runs compare at equal env steps whatever the machine's
load. The sweeps in examples/prior_data_*.json switch n-step returns,
demonstrations and the prior policy on; docs/prior_data.md gives the curves."""

from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    # The default example's SAC settings (examples/inverted_pendulum.py).
    target_update_tau = 0.02
    actor_learning_rate = 7.3e-4
    critic_learning_rate = 7.3e-4
    alpha_learning_rate = 7.3e-4

    num_iter = 20
    num_steps_per_iter = 1000
    min_replay_size = 1000
    n_buffer_init_episodes = 20
    # One gradient step per env step (256 sampled transitions per inserted one), as
    # the SAC paper trains.
    samples_per_insert = 256.0
    n_eval_episodes = 5
    eval_period_itrs = 1
    checkpoint_period_itrs = 2
