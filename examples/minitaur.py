"""MinitaurBulletEnv-v0, the quadruped of "Learning to Walk via Deep
Reinforcement Learning" (Haarnoja et al., 2018), with the published SAC
settings: 256x256 networks, batch 256, learning rates 3e-4, discount 0.99,
tau 0.005, 1M replay, 1M gradient steps."""

from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    num_iter = 1000
    num_steps_per_iter = 1000
    replay_capacity = 1_000_000
    min_replay_size = 10_000
    n_buffer_init_episodes = 10
    n_train_episodes_per_iter = 1
    n_eval_episodes = 3
    eval_period_itrs = 20
    checkpoint_period_itrs = 20
