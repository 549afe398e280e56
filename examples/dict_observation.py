"""Example: a structured (dict) observation, trained without flattening it by hand.

`PointMassReach` (tfagents_system/testing_envs.py) gives {"position", "velocity",
"goal"} float32 vectors and, with "counter_dtype" in the config, an integer
`steps_left` counter and a bool `near_goal` flag. The default networks combine the
leaves (README, "Structured observations"); the replay packs them exactly; the
workers run the actor in numpy. Config keys: "episode_steps" (default 50),
"counter_dtype" (e.g. "int32"; absent: no counter or flag), "flat" (true: the same
six numbers as one vector, for comparison).
"""

from tfagents_system.params import TrainParamsBase


class TrainParams(TrainParamsBase):
    # A 2-D reach task learns in a few thousand gradient steps with small networks.
    actor_fc_layers = (64, 64)
    critic_joint_fc_layers = (64, 64)
    target_update_tau = 0.01
    num_iter = 10
    num_steps_per_iter = 500
    min_replay_size = 500
    replay_capacity = 100_000
    n_buffer_init_episodes = 10
    eval_period_itrs = 2
    checkpoint_period_itrs = 5

    def __init__(self, env_config=None):
        super().__init__(env_config)
        counter = self.env_config.get("counter_dtype") and not self.env_config.get("flat")
        if counter and self.observation_normalization is None:  # unless a subclass sets it
            # The counter runs from episode_steps to 0: centre and scale it to [-1, 1].
            half = self.env_config.get("episode_steps", 50) / 2
            self.observation_normalization = {"steps_left": (half, half)}

    def env_ctor(self, seed=None, *args, **kwargs):
        # Imported here: the launcher imports params files before TensorFlow (quietly).
        from tfagents_system.testing_envs import point_mass_reach

        return point_mass_reach(seed, flat=bool(self.env_config.get("flat", False)),
                                episode_steps=int(self.env_config.get("episode_steps", 50)),
                                counter_dtype=self.env_config.get("counter_dtype"))
