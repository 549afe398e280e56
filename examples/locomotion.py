"""Locomotion preset: any PyBullet locomotion task named by `env_id` in the config
(HalfCheetah, Hopper, Walker2D, Ant, Minitaur, ... BulletEnv-v0), one set of
settings for all of them. README.md ("The locomotion preset") says why each
value differs from the SAC paper's and what was measured; docs/learning.md has
the learning curves against RL Baselines3 Zoo.

    {"env_id": "HopperBulletEnv-v0"}
"""

from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    # RL Baselines3 Zoo's PyBullet SAC values: a shorter horizon, faster target
    # tracking and larger steps than the paper's 0.99 / 0.005 / 3e-4.
    discount = 0.98
    target_update_tau = 0.02
    actor_learning_rate = 7.3e-4
    critic_learning_rate = 7.3e-4
    alpha_learning_rate = 7.3e-4
    actor_fc_layers = (256, 256)
    critic_joint_fc_layers = (256, 256)
    batch_size = 256
    # The remaining fraction of the time limit as an extra observation.
    time_feature = True

    # One gradient step (a batch of 256) per env step after 10k uniform random steps,
    # as the zoo counts them; the learner's slack lets it train on through a worker's
    # evaluation without letting collection run far ahead.
    n_buffer_init_steps = 10_000
    min_replay_size = 10_000
    samples_per_insert = 256.0
    samples_per_insert_error_buffer = 256.0 * 2_000
    replay_capacity = 1_000_000

    # 1M env steps; evaluation (10 greedy episodes) and checkpoints every 10k steps.
    num_iter = 990
    num_steps_per_iter = 1000
    n_eval_episodes = 10
    eval_period_itrs = 10
    checkpoint_period_itrs = 10
