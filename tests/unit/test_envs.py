"""Unit tests for tfagents_system.envs: time limits are truncation, not termination."""

import numpy as np
import pytest

from tfagents_system.envs import EnvError, load_gym_env, max_episode_steps

BULLET_ID = "InvertedPendulumBulletEnv-v0"
PENDULUM_ID = "Pendulum-v1"  # never terminates on its own


def _constant_action(env, value):
    spec = env.action_spec()
    return np.full(spec.shape, value, dtype=spec.dtype)


def _run_episode(env, action):
    """Step with a constant action until a LAST step; return (steps, last time step)."""
    time_step = env.reset()
    assert time_step.is_first()
    steps = 0
    while not time_step.is_last():
        time_step = env.step(action)
        steps += 1
        assert steps <= 10_000, "episode never ended"
    return steps, time_step


@pytest.fixture
def closing():
    """Collects envs made by a test and closes them afterwards (pybullet holds a client)."""
    envs = []
    yield envs.append
    for env in envs:
        env.close()


# --- time limit: LAST with discount 1 ---

def test_pendulum_time_limit_is_not_terminal(closing):
    """Pendulum-v1 cut at 5 steps: LAST step with discount 1.0, then a new episode."""
    env = load_gym_env(PENDULUM_ID, seed=0, max_episode_steps=5)
    closing(env)
    steps, last = _run_episode(env, _constant_action(env, 0.0))
    assert steps == 5
    assert last.is_last()
    assert float(last.discount) == 1.0
    assert env.step(_constant_action(env, 0.0)).is_first()  # auto-reset after LAST


def test_bullet_time_limit_is_not_terminal(closing):
    """InvertedPendulumBullet cut at 5 steps (pole still up): LAST with discount 1.0."""
    env = load_gym_env(BULLET_ID, seed=0, max_episode_steps=5)
    closing(env)
    steps, last = _run_episode(env, _constant_action(env, 0.0))
    assert steps == 5
    assert float(last.discount) == 1.0


def test_bullet_real_terminal_has_discount_zero(closing):
    """Pushing the cart at full force makes the pole fall before the limit: discount 0."""
    env = load_gym_env(BULLET_ID, seed=0, max_episode_steps=200)
    closing(env)
    action = _constant_action(env, env.action_spec().maximum)
    steps, last = _run_episode(env, action)
    assert steps < 200
    assert last.is_last()
    assert float(last.discount) == 0.0


# --- reading the limit back ---

@pytest.mark.parametrize(("env_id", "limit"), [(PENDULUM_ID, 5), (BULLET_ID, 7)])
def test_max_episode_steps_reads_limit(closing, env_id, limit):
    """max_episode_steps() returns the limit the env was built with."""
    env = load_gym_env(env_id, max_episode_steps=limit)
    closing(env)
    assert max_episode_steps(env) == limit


@pytest.mark.parametrize(("env_id", "registered"), [(PENDULUM_ID, 200), (BULLET_ID, 1000)])
def test_registered_limit_kept_by_default(closing, env_id, registered):
    """max_episode_steps=None keeps gym's registered limit (now as TF-Agents' wrapper)."""
    env = load_gym_env(env_id)
    closing(env)
    assert max_episode_steps(env) == registered


def test_zero_means_no_limit(closing):
    """max_episode_steps=0 builds an env without a time limit."""
    env = load_gym_env(PENDULUM_ID, max_episode_steps=0)
    closing(env)
    assert max_episode_steps(env) is None
    env.reset()
    for _ in range(250):  # past the registered 200
        assert not env.step(_constant_action(env, 0.0)).is_last()


def test_seed_makes_reset_reproducible(closing):
    """The same seed gives the same first observation; another seed a different one."""
    first = []
    for seed in (3, 3, 4):
        env = load_gym_env(PENDULUM_ID, seed=seed, max_episode_steps=5)
        closing(env)
        first.append(np.asarray(env.reset().observation))
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], first[2])


def test_unknown_gym_id():
    """An unknown id raises EnvError naming it."""
    with pytest.raises(EnvError, match="'NoSuchEnvBullet-v0'"):
        load_gym_env("NoSuchEnvBullet-v0")


# --- why gym's own TimeLimit is stripped ---

def test_plain_suite_gym_truncation_looks_terminal(closing):
    """Plain suite_gym.load ends Pendulum-v1 at gym's 200-step TimeLimit with discount 0.

    This is the bias load_gym_env removes: the same episode end gets discount 1 there.
    """
    from tf_agents.environments import suite_gym

    plain = suite_gym.load(PENDULUM_ID)
    closing(plain)
    steps, last = _run_episode(plain, _constant_action(plain, 0.0))
    assert steps == 200
    assert float(last.discount) == 0.0

    ours = load_gym_env(PENDULUM_ID)
    closing(ours)
    steps, last = _run_episode(ours, _constant_action(ours, 0.0))
    assert steps == 200
    assert float(last.discount) == 1.0


def test_observation_indices_keep_only_those_entries():
    from tfagents_system.params import GymTrainParams

    full = GymTrainParams({"env_id": PENDULUM_ID}).env_ctor(seed=3)
    kept = GymTrainParams({"env_id": PENDULUM_ID, "observation_indices": [2, 0]}).env_ctor(seed=3)
    try:
        assert kept.observation_spec().shape == (2,)
        first_full, first_kept = full.reset(), kept.reset()
        np.testing.assert_array_equal(first_kept.observation, first_full.observation[[2, 0]])
        action = _constant_action(full, 0.5)
        np.testing.assert_array_equal(kept.step(action).observation,
                                      full.step(action).observation[[2, 0]])
    finally:
        full.close()
        kept.close()


@pytest.mark.parametrize("indices", [[], [3], [0, "1"], [True], 2, "02"])
def test_observation_indices_out_of_range_name_the_key(indices):
    from tfagents_system.params import GymTrainParams

    with pytest.raises(EnvError, match='"observation_indices"'):
        GymTrainParams({"env_id": PENDULUM_ID, "observation_indices": indices}).env_ctor(seed=0)
