"""Pixels preset: SAC from camera images with DrQ's augmentation, for any env the
config names with a `"pixels"` object: dm_control suite tasks
(`"dm_control/cartpole-swingup"`) or gym, pybullet and gymnasium envs rendered to
images. README.md ("Learning from pixels") says why each value is what it is;
docs/pixels.md has the returns against DrQ.

    {"env_id": "dm_control/cartpole-swingup",
     "pixels": {"size": 84, "frame_stack": 3, "action_repeat": 8}}

Budgets count agent steps (one per action, `action_repeat` env steps each), 1250 per
iteration; the preset trains for DrQ's 100k env steps at the config's action repeat:
10 iterations at 8 (cartpole swingup), 20 at 4 (cheetah run), 40 at 2.
"""

import math

from tfagents_system.params import GymTrainParams

ENV_STEPS = 100_000  # DrQ's first mark; num_iter follows it and the action repeat


class TrainParams(GymTrainParams):
    # DrQ's (Kostrikov et al., 2020) values: learning rates 1e-3, critic targets tracked
    # with tau 0.01 every 2 steps, initial temperature 0.1, random shifts of 4 pixels.
    discount = 0.99
    actor_learning_rate = 1e-3
    critic_learning_rate = 1e-3
    alpha_learning_rate = 1e-3
    target_update_tau = 0.01
    target_update_period = 2
    initial_log_alpha = math.log(0.1)
    image_shift = 4

    # Measured on 2 CPU cores (README): three 32-channel 3x3 layers of stride 2 and a
    # batch of 128 cost 137 ms per gradient step on 84x84x9 images; DrQ's encoder (four
    # layers, strides 2, 1, 1, 1) and batch 512 would cost about 4x and 4x that.
    conv_channels = (32, 32, 32)
    conv_kernels = (3, 3, 3)
    conv_strides = (2, 2, 2)
    encoder_features = 50
    actor_fc_layers = (256, 256)
    critic_joint_fc_layers = (256, 256)
    batch_size = 128

    # One gradient step per agent step after 1000 uniform random ones (DrQ's seed
    # steps), collection at most 50 steps ahead of training, so returns at N env steps
    # come after N / action_repeat - 1000 gradient steps, as DrQ's; its buffer of 100k
    # agent steps.
    n_buffer_init_steps = 1_000
    min_replay_size = 1_000
    samples_per_insert = 128.0
    samples_per_insert_error_buffer = 128.0 * 50
    replay_capacity = 100_000

    num_iter = None  # DrQ's 100k env steps at the config's action repeat (__init__)
    num_steps_per_iter = 1_250
    n_eval_episodes = 10
    eval_period_itrs = 1
    checkpoint_period_itrs = 2

    def __init__(self, env_config=None):
        super().__init__(env_config)
        if self.num_iter is not None:  # a subclass's own budget wins
            return
        pixels = self.env_config.get("pixels")
        repeat = pixels.get("action_repeat", 1) if isinstance(pixels, dict) else 1
        if not (isinstance(repeat, int) and repeat > 0):
            repeat = 1  # the env check names a bad value before anything trains
        self.num_iter = math.ceil(ENV_STEPS / (repeat * self.num_steps_per_iter))
