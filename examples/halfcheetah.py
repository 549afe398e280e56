"""HalfCheetahBulletEnv-v0 with the published SAC settings (Haarnoja et al.,
2018, table 1): 256x256 networks, batch 256, learning rates 3e-4, discount
0.99, tau 0.005, target entropy -dim(A), 1M replay, 10k random warm-up steps,
one gradient step per environment step (held by the replay ratio), 1M steps."""

from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    num_iter = 1000
    num_steps_per_iter = 1000
    replay_capacity = 1_000_000
    min_replay_size = 10_000
    n_buffer_init_episodes = 10  # 10 x 1000 steps of uniform random actions
    # One gradient step (a batch of 256) per environment step.
    samples_per_insert = 256.0
    n_eval_episodes = 5
    eval_period_itrs = 10
    checkpoint_period_itrs = 10
