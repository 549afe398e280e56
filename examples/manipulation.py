"""Manipulation preset: any goal-conditioned panda-gym 3 task named by `env_id` in the
config (PandaReach-v3, PandaPush-v3, PandaSlide-v3, PandaPickAndPlace-v3, ... and
their Dense/Joints variants), trained with hindsight experience replay. README.md
("The manipulation preset") says why each value is what it is and what was measured;
docs/manipulation.md has the success rates against RL Baselines3 Zoo.

    {"env_id": "PandaPush-v3"}
"""

from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    # RL Baselines3 Zoo's panda-gym SAC + HER values: a short horizon for 50-step
    # episodes, fast target tracking and large steps.
    discount = 0.95
    target_update_tau = 0.05
    actor_learning_rate = 1e-3
    critic_learning_rate = 1e-3
    alpha_learning_rate = 1e-3
    actor_fc_layers = (256, 256)
    critic_joint_fc_layers = (256, 256)
    batch_size = 256
    # The remaining fraction of the 50-step limit, in the "observation" entry.
    time_feature = True

    # Four goals achieved later in the episode per transition (the zoo's "future", 4).
    her_strategy = "future"
    her_goals_per_transition = 4

    # One gradient step per env step after 1000 uniform random steps, as the zoo's.
    n_buffer_init_steps = 1_000
    min_replay_size = 1_000
    samples_per_insert = 256.0
    samples_per_insert_error_buffer = 256.0 * 2_000
    replay_capacity = 1_000_000

    # 1M env steps; evaluation (20 greedy episodes: the success rate) and checkpoints
    # every 5k steps. The learning benchmark sets the budget (params.num_iter).
    num_iter = 1000
    num_steps_per_iter = 1000
    n_eval_episodes = 20
    eval_period_itrs = 5
    checkpoint_period_itrs = 10
