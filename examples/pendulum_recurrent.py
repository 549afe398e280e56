"""The partially observed pendulum (config/pendulum_po.json: the cart's position and
the pole's angle only, no velocities, and one step of action latency) with an LSTM
actor and critic. README, "Recurrent networks", gives the measured comparison with
the feed-forward agent (examples/inverted_pendulum.py on the same config)."""

from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    # The default example's SAC settings (examples/inverted_pendulum.py).
    target_update_tau = 0.02
    actor_learning_rate = 7.3e-4
    critic_learning_rate = 7.3e-4
    alpha_learning_rate = 7.3e-4

    # The recurrent defaults (agents/settings.py, measured in docs/recurrent.md): 32
    # windows of 10 burn-in + 20 trained steps per gradient step (each trained step gets
    # 10 steps or more of history), 64-unit layers around an LSTM of 40, which keep a
    # gradient step about 4x the feed-forward agent's cost.
    recurrent = True

    num_iter = 20
    num_steps_per_iter = 1000
    min_replay_size = 1000
    n_buffer_init_episodes = 20
    n_eval_episodes = 5
    eval_period_itrs = 2
    checkpoint_period_itrs = 5
