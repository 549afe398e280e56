"""The perturbation wrappers on a real pybullet task (InvertedPendulum): each changes
what it claims, by the amount its strength says, reached through set_state as the
curriculum reaches it, seeded per env, and nothing at strength zero."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tfagents_system import perturbations as P
from tfagents_system.curriculum import CurriculumError, check_env_accepts, parse_curriculum
from tfagents_system.domain_randomization import DynamicsRandomizer
from tfagents_system.envs import load_gym_env
from tfagents_system.params import GymTrainParams

ENV_ID = "InvertedPendulumBulletEnv-v0"
STEPS = 12


def make(seed=1, dr=False, **strengths):
    """The pendulum as the framework builds it, with every perturbation wrapper."""
    wrappers = (DynamicsRandomizer,) if dr else ()
    return load_gym_env(ENV_ID, seed=seed, max_episode_steps=1000,
                        gym_env_wrappers=(*wrappers, functools.partial(P.perturb, **strengths)))


def find(env, cls):
    """The wrapper of class `cls` in the env's gym wrapper chain."""
    node = env.gym  # TF-Agents' wrappers forward to the outermost gym env
    while not isinstance(node, cls):
        node = node.env
    return node


def actions(n=STEPS):
    return [np.array([0.8 * np.sin(0.7 * t)], np.float32) for t in range(n)]


def rollout(env, acts=None):
    """Observations and rewards after a reset and the given actions."""
    observations = [env.reset().observation]
    rewards = []
    for action in acts or actions():
        time_step = env.step(action)
        observations.append(time_step.observation)
        rewards.append(float(time_step.reward))
        if time_step.is_last():
            break
    return np.array(observations), np.array(rewards)


def run(seed=1, state=None, acts=None, **strengths):
    env = make(seed, **strengths)
    if state:
        env.set_state(state)
    result = rollout(env, acts)
    env.close()
    return result


@pytest.fixture(scope="module")
def clean():
    return run()


def test_strength_zero_changes_nothing_and_runs_are_seeded(clean):
    obs, rewards = clean
    plain = load_gym_env(ENV_ID, seed=1, max_episode_steps=1000)
    plain_obs, plain_rewards = rollout(plain)
    plain.close()
    np.testing.assert_array_equal(obs, plain_obs)
    np.testing.assert_array_equal(rewards, plain_rewards)
    noisy = dict(obs_noise_std=0.1, action_noise_std=0.2, push_force=50.0, push_probability=0.5)
    a, b, c = run(seed=1, **noisy), run(seed=1, **noisy), run(seed=2, **noisy)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0])


def test_observation_noise_has_the_asked_std_per_dimension(clean):
    scale = np.array([1.0, 0.0, 2.0, 0.0, 1.0])
    obs, _ = run(obs_noise_std=0.05, obs_noise_scale=scale)
    noise = obs - clean[0]
    assert np.all(noise[:, scale == 0] == 0)
    measured = noise[:, scale > 0].std(axis=0) / scale[scale > 0]
    assert np.all((measured > 0.02) & (measured < 0.09)), measured
    with pytest.raises(ValueError, match="one factor per observation dimension"):
        make(obs_noise_scale=[1.0, 2.0])


def test_observation_delay_shows_the_observation_of_k_steps_ago(clean):
    obs, rewards = run(obs_delay_steps=3)
    expected = np.concatenate([np.repeat(clean[0][:1], 3, axis=0), clean[0][:-3]])
    np.testing.assert_array_equal(obs, expected)
    np.testing.assert_array_equal(rewards, clean[1])  # rewards are not delayed


def test_action_latency_applies_the_action_of_k_steps_ago():
    acts = actions()
    delayed, _ = run(action_latency_steps=2, acts=acts)
    shifted = [np.zeros(1, np.float32)] * 2 + acts[:-2]
    direct, _ = run(acts=shifted)
    np.testing.assert_array_equal(delayed, direct)


def test_action_noise_perturbs_within_the_bounds(clean):
    noisy, _ = run(action_noise_std=0.3)
    assert not np.allclose(noisy, clean[0])
    env = make(action_noise_std=50.0)  # every noisy action is clipped to the bounds
    pushes = find(env, P.RandomPushes)  # inside ActionNoise: sees the noisy actions
    seen = []
    step = pushes.step
    pushes.step = lambda a: (seen.append(np.array(a)), step(a))[1]
    rollout(env)
    env.close()
    assert {float(a[0]) for a in seen} == {-1.0, 1.0}  # at the bounds, on both sides


def test_action_repeat_applies_each_action_n_times(clean):
    repeated, rewards = run(action_repeat=3, acts=actions(4))
    direct, direct_rewards = run(acts=[a for a in actions(4) for _ in range(3)])
    np.testing.assert_array_equal(repeated, direct[::3])
    np.testing.assert_allclose(rewards, direct_rewards.reshape(4, 3).sum(axis=1))


def test_pushes_move_the_cart_and_follow_their_duration(clean):
    env = make(push_force=300.0, push_probability=1.0, push_duration_steps=4)
    pushed, _ = rollout(env)
    pushes = find(env, P.RandomPushes)
    assert pushes.pushes == -(-(len(pushed) - 1) // 4)  # back-to-back pushes of 4 steps
    assert P.root_link(pushes.env.unwrapped._p)[1] == 1  # the cart, not the rail
    env.close()
    # The cart's position and velocity (observation dims 0-1) change.
    n = min(len(pushed), len(clean[0]))  # the pushed pole may fall early
    assert np.abs(pushed[1:n, :2] - clean[0][1:n, :2]).max() > 0.01


def test_set_state_reaches_every_wrapper_from_the_next_reset_and_names_unknown_keys(clean):
    env = make(dr=True)
    env.set_state({"obs_noise_std": 0.2, "mass_scale_spread": 0.5, "action_repeat": 2})
    state = env.gym.get_state()  # (TF-Agents' GymWrapper.get_state is broken)
    assert state["obs_noise_std"] == 0.2 and state["mass_scale_spread"] == 0.5
    outer = env.gym
    assert outer.strength["action_repeat"] == 1  # pending until the reset
    env.reset()
    assert outer.strength["action_repeat"] == 2
    with pytest.raises(KeyError, match="unknown parameter 'obs_noise'; known through this "
                                       "env's wrappers: action_repeat, obs_delay_steps"):
        env.set_state({"obs_noise": 0.1})
    with pytest.raises(KeyError, match="mass_scale_spread"):  # the list runs to the innermost
        env.set_state({"gravity": 1.0})
    with pytest.raises(ValueError, match="push_probability=2.0 outside"):
        env.set_state({"push_probability": 2.0})
    with pytest.raises(ValueError, match="whole number"):
        env.set_state({"obs_delay_steps": 1.5})
    env.close()


def test_pushes_on_an_env_without_pybullet_are_refused_when_set():
    env = load_gym_env("Pendulum-v1", seed=0, gym_env_wrappers=(P.perturb,))
    env.set_state({"obs_noise_std": 0.1, "push_force": 0.0})  # no push: fine
    with pytest.raises(TypeError, match="push_force needs a pybullet environment"):
        env.set_state({"push_force": 5.0})
    env.close()


def test_the_config_switches_them_on_and_the_launch_check_refuses_a_bad_curriculum():
    params = GymTrainParams(env_config={"env_id": ENV_ID, "perturbations": {
        "obs_noise_std": 0.01}})
    env = params.env_ctor(seed=0)
    assert env.gym.get_state()["obs_noise_std"] == 0.01
    good = parse_curriculum({"curriculum": {"push_force": {"iters": [0, 5], "range": [0, 40]}}})
    check_env_accepts(good, env, "collect", "c.json")
    misspelt = parse_curriculum({"curriculum": {"push_forse": {"iters": [0], "range": [0, 1]}}})
    with pytest.raises(CurriculumError, match='c.json: curriculum parameter "push_forse"'):
        check_env_accepts(misspelt, env, "collect", "c.json")
    too_far = parse_curriculum({"curriculum": {"push_probability": {"iters": [0, 9],
                                                                    "range": [0.5, 1.5]}}})
    with pytest.raises(CurriculumError, match="value 1.5.*outside"):
        check_env_accepts(too_far, env, "collect", "c.json")
    env.close()
    with pytest.raises(ValueError, match='config "perturbations".*push_strength'):
        GymTrainParams(env_config={"env_id": ENV_ID,
                                   "perturbations": {"push_strength": 1}}).env_ctor(seed=0)
