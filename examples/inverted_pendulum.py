"""Default example: InvertedPendulumBulletEnv-v0 (pybullet).

Tuned to reach a greedy return of 1000 within minutes on a 2-core machine;
README.md ("The default example") says why each value differs from the SAC
defaults and what was measured."""

from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    # Faster target tracking and larger steps than the paper's defaults (as in
    # the pybullet settings of the rl-baselines3-zoo SAC tuning): with tau 0.005
    # and 3e-4 the greedy return stalled near 200 for 10k+ steps.
    target_update_tau = 0.02
    actor_learning_rate = 7.3e-4
    critic_learning_rate = 7.3e-4
    alpha_learning_rate = 7.3e-4

    num_iter = 20  # 20k gradient steps; 1000 was first reached near 12k-14k
    num_steps_per_iter = 1000
    min_replay_size = 1000
    n_buffer_init_episodes = 20  # ~500 random steps
    n_eval_episodes = 5
    eval_period_itrs = 2
    checkpoint_period_itrs = 5
