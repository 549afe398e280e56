"""Prior-regularized SAC (agents.prior, agents.losses.PriorDivergence) on a tiny
point-mass agent: the divergence, the alpha loss's direction, the critic's target and
the actor's loss against hand computations (and TF-Agents' own SAC losses with log pi
replaced by log pi - log p), a greedy prior read through prior_std, gradient steps, the
prior on replay windows, and the one-line refusals of a prior that does not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.agents.sac import sac_agent
from tf_agents.policies import greedy_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from tfagents_system import testing_envs
from tfagents_system.agents import losses, prior, sac
from tfagents_system.agents.export import export_policy
from tfagents_system.builder import Builder, env_specs
from tfagents_system.core.errors import CheckError
from tfagents_system.params import TrainParamsBase

BATCH = 8


class PointMass(TrainParamsBase):
    """Plain SAC on the flat point mass, with tiny networks."""

    actor_fc_layers = (16, 16)
    critic_joint_fc_layers = (16, 16)

    def env_ctor(self, seed=None, *args, **kwargs):
        return testing_envs.point_mass_reach(seed, flat=True)


def _agent(params, action_spec=None):
    time_step_spec, env_action_spec = env_specs(params)
    step = common.create_variable("train_step", 0, dtype=tf.int64)
    return Builder(params).agent(step, (time_step_spec, action_spec or env_action_spec))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """A plain SAC agent's collect and greedy policies, and a policy with 3-d actions."""
    root = tmp_path_factory.mktemp("priors")
    agent = _agent(PointMass())
    step = agent.train_step_counter
    export_policy(agent.collect_policy, step, root / "collect")
    export_policy(agent.collect_policy, step, root / "policies" / "collect_policy")
    export_policy(greedy_policy.GreedyPolicy(agent.policy), step, root / "greedy")
    wide = _agent(PointMass(), tensor_spec.BoundedTensorSpec([3], tf.float32, -1.0, 1.0))
    export_policy(wide.collect_policy, step, root / "wide")
    return {"collect": root / "collect", "greedy": root / "greedy", "wide": root / "wide",
            "first_export": root / "policies" / "collect_policy"}


def _prior_agent(prior_dir: Path, **settings) -> sac.SacAgent:
    params = PointMass()
    params.prior_policy = str(prior_dir)
    for name, value in settings.items():
        setattr(params, name, value)
    agent = _agent(params)
    agent._log_alpha.assign(0.4)  # alpha != 1: its factor shows in every loss
    return agent


def _time_steps(seed: int):
    """A fixed batch of mid-episode time steps with finite observations."""
    rng = np.random.default_rng(seed)
    return ts.TimeStep(step_type=tf.ones([BATCH], tf.int32),
                       reward=tf.constant(rng.normal(size=BATCH), tf.float32),
                       discount=tf.constant(rng.uniform(0.5, 1.0, BATCH), tf.float32),
                       observation=tf.constant(rng.normal(size=(BATCH, 6)), tf.float32))


ACTIONS = tf.constant(np.random.default_rng(7).uniform(-0.9, 0.9, (BATCH, 2)), tf.float32)
LOG_PI = tf.constant(np.random.default_rng(8).normal(size=BATCH), tf.float32)


def _fixed_sampling(agent, log_pi, monkeypatch):
    """The agent's policy sampling replaced by fixed actions and log-probs."""
    monkeypatch.setattr(agent, "_actions_and_log_probs",
                        lambda time_steps, training=False: (ACTIONS, log_pi(time_steps)))


def _hand_log_p(prior_dir: Path, time_steps) -> tf.Tensor:
    """log p(ACTIONS | s) straight from the SavedModel's distribution."""
    loaded = tf.saved_model.load(str(prior_dir))
    return loaded.distribution(time_steps, ()).action.log_prob(ACTIONS)


def test_the_divergence_is_the_mean_of_log_pi_minus_log_p(exported, monkeypatch):
    agent = _prior_agent(exported["collect"])
    time_steps = _time_steps(0)
    _fixed_sampling(agent, lambda _: LOG_PI, monkeypatch)
    agent.alpha_loss(time_steps)
    expected = np.mean(LOG_PI.numpy() - _hand_log_p(exported["collect"], time_steps).numpy())
    assert float(agent._divergence) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("offset", [-3.0, 3.0])
def test_alpha_rises_above_the_target_divergence_and_falls_below(exported, offset):
    agent = _prior_agent(exported["collect"])
    time_steps = _time_steps(1)
    tf.random.set_seed(3)
    agent.alpha_loss(time_steps)  # the divergence of this seed's actions
    agent._penalty.budget = float(agent._divergence) + offset
    tf.random.set_seed(3)
    with tf.GradientTape() as tape:
        loss = agent.alpha_loss(time_steps)
    gradient = float(tape.gradient(loss, agent._log_alpha))
    assert loss.numpy() == pytest.approx(0.4 * offset, rel=1e-4)  # -log_alpha (div - target)
    # Gradient descent moves log alpha by -gradient: up when the divergence is above target.
    assert (gradient < 0) == (offset < 0)


def _sac_with(agent, log_pi, monkeypatch, loss: str, *args, **kwargs):
    """TF-Agents' own SAC loss of the same agent when its sampling gives `log_pi`."""
    _fixed_sampling(agent, log_pi, monkeypatch)
    return getattr(sac_agent.SacAgent, loss)(agent, *args, **kwargs)


def test_the_critic_target_and_actor_loss_use_the_divergence(exported, monkeypatch):
    agent = _prior_agent(exported["collect"])
    now, nxt = _time_steps(2), _time_steps(3)
    critic_args = (now, ACTIONS, nxt, tf.math.squared_difference)
    critic_kwargs = {"gamma": 0.9, "reward_scale_factor": 2.0}
    log_p = {id(t): _hand_log_p(exported["collect"], t) for t in (now, nxt)}
    with_prior = lambda t: LOG_PI - log_p[id(t)]  # noqa: E731
    expected_critic = _sac_with(agent, with_prior, monkeypatch, "critic_loss", *critic_args,
                                **critic_kwargs)
    expected_actor = _sac_with(agent, with_prior, monkeypatch, "actor_loss", now)
    plain_critic = _sac_with(agent, lambda _: LOG_PI, monkeypatch, "critic_loss",
                             *critic_args, **critic_kwargs)

    _fixed_sampling(agent, lambda _: LOG_PI, monkeypatch)
    critic = agent.critic_loss(*critic_args, **critic_kwargs)
    assert critic.numpy() == pytest.approx(expected_critic.numpy(), rel=1e-5)
    assert critic.numpy() != pytest.approx(plain_critic.numpy(), rel=1e-3)
    assert agent.actor_loss(now).numpy() == pytest.approx(expected_actor.numpy(), rel=1e-5)


def test_a_greedy_prior_is_a_normal_of_prior_std(exported):
    agent = _prior_agent(exported["greedy"], prior_std=0.3)
    time_steps = _time_steps(4)
    loaded = tf.saved_model.load(str(exported["greedy"]))
    mode = loaded.action(time_steps, ()).action.numpy()
    normal = (-0.5 * ((ACTIONS.numpy() - mode) / 0.3) ** 2 - np.log(0.3)
              - 0.5 * np.log(2 * np.pi)).sum(axis=1)
    np.testing.assert_allclose(agent._penalty._prior.log_prob(time_steps, ACTIONS).numpy(), normal,
                               rtol=1e-5)


def test_gradient_steps_report_finite_losses_and_divergence(exported):
    agent = _prior_agent(exported["collect"], target_divergence=None)
    assert agent._penalty.budget == 1.0  # 0.5 nats per action dimension
    batch = tensor_spec.sample_spec_nest(agent.collect_data_spec, outer_dims=(BATCH, 2))
    batch = tf.nest.map_structure(
        lambda x: tf.random.uniform(x.shape, -1, 1, x.dtype) if x.dtype.is_floating else x,
        batch)
    train = tf.function(agent.train)  # compiled, as the learner's loop runs it
    before = [v.numpy() for v in agent._actor_network.trainable_variables]
    for _ in range(3):
        info = train(batch)
    assert isinstance(info.extra, losses.PriorLossInfo)
    assert all(np.isfinite(float(value)) for value in info.extra)
    assert float(info.extra.divergence) != 0.0
    after = agent._actor_network.trainable_variables
    assert any(not np.array_equal(b, a.numpy()) for b, a in zip(before, after))
    assert int(agent.train_step_counter) == 3


def test_a_plain_params_builds_sac_with_its_entropy_penalty():
    agent = _agent(PointMass())
    assert type(agent._penalty) is losses.Entropy and agent._divergence is None
    assert agent._penalty.budget == -agent._target_entropy == 1.0  # -dim(actions) / 2


# --- Refusals ---

def _check(directory: Path):
    specs = env_specs(PointMass())
    return prior.check_policy(directory, specs, "params file p.py: prior_policy")


def test_the_launch_check_accepts_a_fitting_prior_and_warns_of_an_untrained_one(exported):
    # An experiment's policies/collect_policy keeps its learner's first weights: warned.
    warning = _check(exported["first_export"])
    assert "was exported at train step 0" in warning
    assert "use policies/final/collect_policy" in warning
    for kind in ("collect", "greedy"):  # other policies of step 0 (e.g. bc_policy): fine
        assert _check(exported[kind]) is None


@pytest.mark.parametrize("case, message", [
    ("absent", "does not exist: point it at a SavedModel policy"),
    ("not_a_saved_model", "is not a SavedModel (it holds no saved_model.pb)"),
    ("wide", "gives actions [((3,), 'float32')], this experiment's env takes "
             "[((2,), 'float32')]: use a prior trained on an env with the same actions"),
])
def test_a_prior_that_does_not_fit_is_refused_in_one_line(exported, tmp_path, case, message):
    directory = {"absent": tmp_path / "absent", "wide": exported["wide"],
                 "not_a_saved_model": tmp_path}[case]
    (tmp_path / "notes.txt").write_text("not a policy")
    with pytest.raises(CheckError) as info:
        _check(directory)
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"params file p.py: prior_policy {directory}")
    assert message in line


def test_the_prior_scores_each_step_of_replay_windows(exported):
    """With recurrent networks the penalty is taken per step of a window: the feed-forward
    prior scores each step's observation on its own."""
    agent = _prior_agent(exported["collect"])
    windows = tf.nest.map_structure(lambda *steps: tf.stack(steps, axis=1),
                                    _time_steps(5), _time_steps(6), _time_steps(7))
    actions = tf.stack([ACTIONS, ACTIONS[::-1], ACTIONS * 0.5], axis=1)
    per_step = agent._penalty._prior.log_prob(windows, actions).numpy()
    assert per_step.shape == (BATCH, 3)
    for t, seed in enumerate((5, 6, 7)):
        np.testing.assert_allclose(per_step[:, t], agent._penalty._prior.log_prob(
            _time_steps(seed), actions[:, t]).numpy(), rtol=1e-6)


def test_a_relative_prior_is_found_next_to_the_params_file():
    params = PointMass()
    params.prior_policy = "../other/policies/final/collect_policy"
    here = Path(__file__).resolve().parent
    assert Path(params.agent_settings().prior.directory) == (
        here.parent / "other" / "policies" / "final" / "collect_policy")
