"""Domain randomization really changes pybullet's dynamics, reached through set_state."""

import numpy as np
import pytest

from tfagents_system.curriculum import (
    CurriculumError,
    check_env_supports,
    parse_curriculum,
    supports_set_state,
)
from tfagents_system.domain_randomization import DynamicsRandomizer
from tfagents_system.envs import load_gym_env

ENV_ID = "InvertedPendulumBulletEnv-v0"


def randomized_env(seed=1):
    return load_gym_env(ENV_ID, seed=seed, gym_env_wrappers=(DynamicsRandomizer,))


def masses(env):
    randomizer = env.gym  # TF-Agents wrappers forward to GymWrapper.gym: our wrapper
    p = randomizer.bullet_client()
    return {key: p.getDynamicsInfo(*key)[0] for key in randomizer.links()}


def test_set_state_through_every_wrapper_changes_masses_read_back_from_pybullet():
    env = randomized_env()
    env.reset()
    nominal = masses(env)
    moving = {k: m for k, m in nominal.items() if m > 0}
    assert moving, "the pendulum has links with mass"

    env.set_state({"mass_scale_spread": 0.5})  # through TimeLimit and GymWrapper
    draws = []
    for _ in range(4):
        env.reset()
        now = masses(env)
        for key, mass in moving.items():
            assert 0.5 * mass - 1e-9 <= now[key] <= 1.5 * mass + 1e-9
        draws.append([now[k] for k in moving])
    assert len({tuple(np.round(d, 6)) for d in draws}) == 4, "masses are resampled per reset"
    assert any(abs(d - m) / m > 0.05 for d, m in zip(draws[0], moving.values()))

    env.set_state({"mass_scale_spread": 0.0})
    env.reset()
    assert masses(env) == pytest.approx(nominal)
    env.close()


def test_heavier_pole_changes_the_trajectory():
    def rollout(spread):
        env = randomized_env(seed=3)
        env.set_state({"mass_scale_spread": spread, "joint_damping": 2.0 * spread})
        env.reset()
        observations = [env.step(np.array([0.3], np.float32)).observation for _ in range(20)]
        env.close()
        return np.array(observations)

    assert not np.allclose(rollout(0.0), rollout(0.9))


def test_unknown_or_out_of_range_parameter_is_rejected():
    env = randomized_env()
    with pytest.raises(KeyError, match="unknown parameter 'gravity'"):
        env.set_state({"gravity": 1.0})
    with pytest.raises(ValueError, match="outside"):
        env.set_state({"mass_scale_spread": 3.0})
    env.close()


def test_curriculum_needs_set_state_at_start_up():
    curriculum = parse_curriculum(
        {"curriculum": {"mass_scale_spread": {"iters": [0, 5], "range": [0.0, 0.3]}}})
    plain = load_gym_env(ENV_ID)
    wrapped = randomized_env()
    assert not supports_set_state(plain)
    assert supports_set_state(wrapped)
    check_env_supports(curriculum, wrapped, "collect", "c.json")
    check_env_supports(curriculum, plain, "eval", "c.json")  # eval untouched: fine
    with pytest.raises(CurriculumError, match="has no set_state"):
        check_env_supports(curriculum, plain, "collect", "c.json")
    plain.close()
    wrapped.close()
