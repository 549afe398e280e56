"""The user surface: `TrainParamsBase`, and loading a user's params file.

A params file defines `class TrainParams(TrainParamsBase)` and implements
`env_ctor`. Hyperparameters are class attributes; their defaults follow the
SAC paper (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and
Applications", table 1).
"""

from __future__ import annotations

import abc
import functools
import importlib.util
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ParamsError(ValueError):
    """A params file or a hyperparameter is unusable; the message says the fix."""


class TrainParamsBase(abc.ABC):
    """Subclass as `TrainParams` in your params file; override what you need."""

    # --- SAC (published defaults) ---
    discount: float = 0.99
    actor_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    alpha_learning_rate: float = 3e-4
    target_update_tau: float = 0.005
    target_update_period: int = 1
    initial_log_alpha: float = 0.0
    target_entropy: float | None = None  # None: -dim(action space)
    reward_scale_factor: float = 1.0
    actor_fc_layers: tuple[int, ...] = (256, 256)
    critic_joint_fc_layers: tuple[int, ...] = (256, 256)
    # Fixed normalization (x - mean) / std of observation leaves in the default
    # networks' combiner (README, "Structured observations"): {leaf path: (mean, std)},
    # each a number or one per element, e.g. {"velocity": (0.0, 2.0)}. A dict
    # observation's leaf path is its key ("sensors/imu" when nested); a flat one's is
    # "observation". None: no normalization.
    observation_normalization: dict[str, tuple] | None = None
    batch_size: int = 256

    # --- Training length: done when train step == num_iter * num_steps_per_iter ---
    num_iter: int = 1000
    num_steps_per_iter: int = 1000

    # --- Replay buffer ---
    # Capacity in transitions. If n_episodes_in_buffer is set it wins:
    # capacity = n_episodes_in_buffer * max_episode_steps of the collect env.
    replay_capacity: int = 1_000_000
    n_episodes_in_buffer: int | None = None
    # Transitions in the table before the learner may sample.
    min_replay_size: int = 1000
    # Optional replay ratio: items sampled per item inserted (batch_size x
    # gradient steps per env step). None lets collection and training run free.
    samples_per_insert: float | None = None
    # Slack of the samples-per-insert limiter, in sampled items.
    # None: 10 batches' worth plus the warm-up (min_replay_size x samples_per_insert).
    samples_per_insert_error_buffer: float | None = None
    # True: the learner keeps the replay buffer in its own RAM and Reverb only
    # carries new transitions to it (SAC on float32 vectors, when capacity x
    # transition size fits in a quarter of the available RAM; else as False).
    # False: Reverb keeps and samples the buffer. Chosen at an experiment's first
    # start and kept for its life (replay_layout.json).
    learner_keeps_replay: bool = True

    # n-step returns (README, "n-step returns"): the workers write n-step transitions
    # (the discounted sum of n rewards, bootstrapped from the n-th next state; fewer
    # steps at an episode's end, a time-limit truncation still bootstrapping). 1: SAC's
    # one-step transitions. Recorded at an experiment's creation and kept for its life.
    n_step: int = 1

    # --- Demonstrations (README, "Learning from prior data") ---
    # Files of recorded episodes (tfagents_system.demonstrations; relative paths: to
    # this params file; a config's "demonstrations" list, relative to the config file,
    # wins), loaded into the replay data at an experiment's first start and kept with
    # it, never evicted by the FIFO buffer.
    demonstrations: tuple[str, ...] = ()
    # The share of each batch drawn from the demonstrations: a number in [0, 1], or a
    # schedule ((train step, share), ...) interpolated linearly between its points and
    # constant beyond them. None: their share of all rows (demonstrations + buffer).
    demo_ratio: float | tuple[tuple[int, float], ...] | None = None
    # Behaviour-cloning gradient steps of the actor on the demonstrations before SAC's
    # first step (once, at the first start). 0: none.
    bc_warm_start_steps: int = 0

    # --- Collection and evaluation (per worker) ---
    n_buffer_init_episodes: int = 10  # uniform random episodes, split across workers
    # Uniform random env steps instead (split across workers; the episode in progress
    # then goes on with the collect policy), as most SAC implementations count their
    # warm-up. None: n_buffer_init_episodes decides.
    n_buffer_init_steps: int | None = None
    n_train_episodes_per_iter: int = 1  # episodes a worker collects between weight refreshes
    # Collect envs per worker, stepped in lockstep with one policy call for all of
    # them (batched inference). Each env has its own seed and gets the curriculum;
    # weights are refreshed after n_train_episodes_per_iter episodes per env, so
    # more envs mean more env steps per refresh. More envs amortize the policy call
    # (most with custom actor networks, which run in TensorFlow) and raise a
    # worker's env steps/s (docs/performance.md). 1: one env, as published.
    num_envs_per_worker: int = 1
    n_eval_episodes: int = 5
    eval_period_itrs: int = 10
    log_period_itrs: int = 1
    checkpoint_period_itrs: int = 10
    checkpoints_to_keep: int = 5

    seed: int = 0

    # --- Fine-tuning from another experiment (README, "Fine-tuning") ---
    # A new experiment starts from another's learner checkpoint: its networks
    # always, the parts below on request; its train step still starts at 0. The
    # source experiment's directory (relative: to this params file; the training
    # variable SAC_INIT_FROM wins over it). Ignored when an experiment resumes.
    init_from: str | None = None
    init_from_step: int | None = None  # the source checkpoint's train step; None: latest
    init_from_optimizers: bool = False  # Adam's moments and step count (not its rates)
    init_from_alpha: bool = False  # the entropy temperature (else initial_log_alpha)
    init_from_replay: bool = False  # the source's replay buffer (packed_blocks layouts)

    # --- Recurrent networks (README, "Recurrent networks") ---
    # True: an LSTM actor and critic (actor_fc_layers -> lstm_size ->
    # recurrent_output_fc_layers; critic_joint_fc_layers -> lstm_size -> the same),
    # trained on windows of recurrent_burn_in + recurrent_sequence_length consecutive
    # steps of one episode, as TF-Agents' recurrent SAC example (sequences of 20, LSTM
    # of 40, output layer of 100); the burn-in steps only warm the LSTM's state. The
    # replay buffer then holds windows: batch_size and samples_per_insert count
    # windows, replay_capacity and min_replay_size still count transitions.
    recurrent: bool = False
    recurrent_sequence_length: int = 20
    recurrent_burn_in: int = 0
    lstm_size: tuple[int, ...] = (40,)
    recurrent_output_fc_layers: tuple[int, ...] = (100,)

    # --- Prior-regularized SAC (README, "Prior-regularized SAC") ---
    # As SPiRL (Pertsch et al., 2020): the entropy bonus becomes a penalty on the
    # divergence log pi(a|s) - log p(a|s) from a prior policy p, in the actor's loss and
    # the critic's target, and alpha is tuned toward target_divergence instead of
    # target_entropy. The prior: a SavedModel policy exported by TF-Agents' PolicySaver,
    # e.g. another experiment's policies/final/collect_policy (relative: to this params
    # file). The launch checks it and copies it into the experiment. None: plain SAC.
    prior_policy: str | None = None
    # Nats the policy may diverge from the prior (a one-sample estimate of KL(pi || p)).
    # None: 0.5 per action dimension, scaled with the action space as SAC's default
    # target entropy (-1 per dimension) is: the policy stays close to the prior yet can
    # improve on it. SPiRL tunes this per task; so may you.
    target_divergence: float | None = None
    # A greedy prior (a deterministic action, no density) is read as an independent
    # normal of this scale per action dimension around its action.
    prior_std: float = 0.1

    def __init__(self, env_config: dict[str, Any] | None = None):
        self.env_config: dict[str, Any] = dict(env_config or {})

    # --- Environment ---
    @abc.abstractmethod
    def env_ctor(self, seed: int | None = None, *args, **kwargs):
        """Return a TF-Agents PyEnvironment, seeded with `seed`.

        Name `worker_index` and/or `env_role` as parameters to be told which env this
        is: `worker_index` is the worker's index (None for the envs built outside a
        worker: the launch checks, the learner's spec probe, tfagents_system.run) and
        `env_role` is "collect" or "eval". They are passed only to parameters named so,
        never through **kwargs (which GymTrainParams forwards to gym's constructor); a
        value of the same name from *_env_args_kwargs() wins.
        """

    def collect_env_args_kwargs(self) -> tuple[tuple, dict]:
        """Extra (args, kwargs) for `env_ctor` when building a collect env."""
        return (), {}

    def eval_env_args_kwargs(self) -> tuple[tuple, dict]:
        """Extra (args, kwargs) for `env_ctor` when building an eval env."""
        return (), {}

    # --- Task metrics: each episode is judged once, from its final step's info ---
    # `info` is the env's get_info() after the episode's last step (gym's info dict
    # through load_gym_env); episodes of envs without one (get_info not implemented,
    # or None) report nothing. Logged as collect/<name> (mean over each worker's last
    # 100 episodes reporting it) and eval/<name> (mean over an evaluation's episodes).
    def episode_success(self, info) -> bool | None:
        """Whether the episode succeeded: logged as collect/ and eval/success_rate.
        None: the episode reports no success and does not count. Default: the final
        step's `info["is_success"]`, the gym robotics convention, when info has it."""
        if isinstance(info, Mapping) and "is_success" in info:
            return bool(info["is_success"])
        return None

    def episode_metrics(self, info) -> dict[str, float | None]:
        """Named scalars of the episode (energy used, distance, falls), averaged and
        logged as collect/<name> and eval/<name>; a None value is skipped. The final
        info must hold episode totals: accumulate them in the env (a gym.Wrapper).
        Default: none."""
        return {}

    # --- Networks and agent (override to change architectures) ---
    def actor_net_ctor(self, observation_spec, action_spec):
        if self.recurrent:
            from tfagents_system import recurrent

            return recurrent.actor_network(self, observation_spec, action_spec)
        from tf_agents.agents.sac import tanh_normal_projection_network
        from tf_agents.networks import actor_distribution_network

        from tfagents_system import observations

        return actor_distribution_network.ActorDistributionNetwork(
            observation_spec,
            action_spec,
            fc_layer_params=tuple(self.actor_fc_layers),
            continuous_projection_net=(
                tanh_normal_projection_network.TanhNormalProjectionNetwork
            ),
            **observations.actor_combiner_kwargs(observation_spec,
                                                 self.observation_normalization),
        )

    def critic_net_ctor(self, observation_spec, action_spec):
        if self.recurrent:
            from tfagents_system import recurrent

            return recurrent.critic_network(self, observation_spec, action_spec)
        from tf_agents.agents.ddpg import critic_network

        from tfagents_system import observations

        combined = observations.combined_critic(observation_spec, action_spec,
                                                tuple(self.critic_joint_fc_layers),
                                                self.observation_normalization)
        if combined is not None:  # a dict, nested or non-float observation
            return combined
        return critic_network.CriticNetwork(
            (observation_spec, action_spec),
            joint_fc_layer_params=tuple(self.critic_joint_fc_layers),
            kernel_initializer="glorot_uniform",
            last_kernel_initializer="glorot_uniform",
        )

    def agent_ctor(self, time_step_spec, action_spec, actor_net, critic_net, train_step):
        if self.recurrent:
            from tfagents_system import recurrent

            return recurrent.make_agent(self, time_step_spec, action_spec, actor_net,
                                        critic_net, train_step)
        import tensorflow as tf
        from tf_agents.agents.sac import sac_agent

        sac_settings = dict(
            actor_network=actor_net,
            critic_network=critic_net,
            actor_optimizer=tf.keras.optimizers.Adam(self.actor_learning_rate),
            critic_optimizer=tf.keras.optimizers.Adam(self.critic_learning_rate),
            alpha_optimizer=tf.keras.optimizers.Adam(self.alpha_learning_rate),
            target_update_tau=self.target_update_tau,
            target_update_period=self.target_update_period,
            td_errors_loss_fn=tf.math.squared_difference,
            gamma=self.discount,
            reward_scale_factor=self.reward_scale_factor,
            initial_log_alpha=self.initial_log_alpha,
            target_entropy=self.target_entropy,
            train_step_counter=train_step,
        )
        if self.prior_policy is not None:
            from tfagents_system import prior

            return prior.make_agent(self, time_step_spec, action_spec, **sac_settings)
        return sac_agent.SacAgent(time_step_spec, action_spec, **sac_settings)

    # --- Derived values ---
    @property
    def total_train_steps(self) -> int:
        return int(self.num_iter) * int(self.num_steps_per_iter)

    @property
    def sequence(self) -> tuple[int, int] | None:
        """(trained steps, burn-in steps) of a replay window; None without recurrence."""
        if not self.recurrent:
            return None
        return int(self.recurrent_sequence_length), int(self.recurrent_burn_in)

    @property
    def n_step_returns(self) -> tuple[int, float] | None:
        """(n, discount) of the workers' n-step transitions; None for one-step ones."""
        n = int(self.n_step)
        return None if n == 1 else (n, float(self.discount))

    def validate(self) -> list[str]:
        """All problems with the hyperparameters, each naming the field and the fix."""
        problems = [f"{name}={getattr(self, name)!r}: {what}"
                    for names, valid, what in _RULES for name in names
                    if not valid(getattr(self, name))]
        if (isinstance(self.min_replay_size, int) and isinstance(self.replay_capacity, int)
                and self.min_replay_size > self.replay_capacity):
            problems.append(
                f"min_replay_size={self.min_replay_size} exceeds replay_capacity="
                f"{self.replay_capacity}: lower min_replay_size or raise the capacity"
            )
        problems += self._demonstration_problems() + self._recurrence_problems()
        spi, slack = self.samples_per_insert, self.samples_per_insert_error_buffer
        if is_number(spi) and is_number(slack) and slack < max(1.0, spi):
            problems.append(
                f"samples_per_insert_error_buffer={slack!r} is below max(1, "
                f"samples_per_insert={spi!r}), the least Reverb's limiter takes: raise it "
                "(it is in sampled items: a few batches' worth) or set it to None")
        return problems

    def _recurrence_problems(self) -> list[str]:
        """Prior-data settings recurrent training does not take."""
        if self.recurrent is not True:
            return []
        problems = []
        if self.n_step != 1:
            problems.append(f"n_step={self.n_step!r} with recurrent = True: replay windows "
                            "train on one-step transitions; set n_step = 1 or recurrent = False")
        if self.prior_policy is not None:
            problems.append(
                f"prior_policy={self.prior_policy!r} with recurrent=True: a prior policy is "
                "not supported with recurrent networks; set prior_policy = None or "
                "recurrent = False")
        if self.bc_warm_start_steps:
            problems.append(f"bc_warm_start_steps={self.bc_warm_start_steps!r} with recurrent "
                            "= True: the warm start clones feed-forward actors only; set it to 0")
        return problems

    def _demonstration_problems(self) -> list[str]:
        """Settings that need demonstrations, given none."""
        given = self.env_config.get("demonstrations") or self.demonstrations
        problems = []
        for name, default in (("demo_ratio", None), ("bc_warm_start_steps", 0)):
            if not given and getattr(self, name) != default:
                problems.append(f"{name}={getattr(self, name)!r} without demonstrations: "
                                f"list the files in demonstrations, or set {name} = {default}")
        return problems


def is_number(value) -> bool:
    """A finite int or float, not a bool (JSON and Python settings alike): NaN and
    infinity would only show up later, as a learner crash-looping on NaN losses."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _layer_sizes(value) -> bool:
    return isinstance(value, (tuple, list)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)


def _int_at_least(minimum: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _number_above(bound: float):
    return lambda v: is_number(v) and v > bound


def _normalization(value) -> bool:
    """{leaf path: (mean, std)} with numbers or lists of numbers, every std > 0."""
    def numbers(v, positive=False):
        items = v if isinstance(v, (list, tuple)) else [v]
        return len(items) > 0 and all(is_number(x) and (x > 0 or not positive) for x in items)

    return isinstance(value, Mapping) and all(
        isinstance(key, str) and isinstance(pair, (list, tuple)) and len(pair) == 2
        and numbers(pair[0]) and numbers(pair[1], positive=True)
        for key, pair in value.items())


def _share(value) -> bool:
    return is_number(value) and 0 <= value <= 1


def _demo_ratio(value) -> bool:
    """None, a share in [0, 1], or ((train step, share), ...) with increasing steps."""
    if value is None or _share(value):
        return True
    if not isinstance(value, (tuple, list)) or not value:
        return False
    points = [p for p in value if isinstance(p, (tuple, list)) and len(p) == 2
              and _int_at_least(0)(p[0]) and _share(p[1])]
    return len(points) == len(value) and all(
        a[0] < b[0] for a, b in zip(points, points[1:]))


def _files(value) -> bool:
    return isinstance(value, (tuple, list)) and all(
        isinstance(v, str) and v.strip() for v in value)


def _or_none(valid):
    return lambda v: v is None or valid(v)


# (hyperparameters, valid(value), what a valid value is), in the order reported.
_RULES = (
    (("batch_size", "num_iter", "num_steps_per_iter", "replay_capacity", "min_replay_size",
      "n_train_episodes_per_iter", "num_envs_per_worker", "eval_period_itrs",
      "log_period_itrs", "checkpoint_period_itrs", "checkpoints_to_keep",
      "target_update_period", "recurrent_sequence_length", "n_step"), _int_at_least(1),
     "must be a positive integer"),
    (("n_buffer_init_episodes", "n_eval_episodes", "seed", "recurrent_burn_in"),
     _int_at_least(0),
     "must be an integer >= 0"),
    (("n_buffer_init_steps",), _or_none(_int_at_least(0)), "must be an integer >= 0 or None"),
    (("n_episodes_in_buffer",), _or_none(_int_at_least(1)),
     "must be a positive integer or None"),
    (("actor_learning_rate", "critic_learning_rate", "alpha_learning_rate",
      "target_update_tau", "reward_scale_factor"), _number_above(0),
     "must be a positive number"),
    (("discount",), lambda v: is_number(v) and 0 < v <= 1, "must be a number in (0, 1]"),
    (("samples_per_insert", "samples_per_insert_error_buffer"), _or_none(_number_above(0)),
     "must be a number > 0 or None"),
    (("initial_log_alpha",), is_number, "must be a finite number"),
    (("target_entropy",), _or_none(is_number),
     "must be a finite number or None (None: -dim(action space))"),
    (("actor_fc_layers", "critic_joint_fc_layers", "lstm_size", "recurrent_output_fc_layers"),
     _layer_sizes,
     "must be a tuple of positive integers (hidden layer sizes), e.g. (256, 256)"),
    (("learner_keeps_replay", "recurrent", "init_from_optimizers", "init_from_alpha",
      "init_from_replay"),
     lambda v: isinstance(v, bool), "must be True or False"),
    (("init_from",), _or_none(lambda v: isinstance(v, str) and v.strip() != ""),
     "must be None or a source experiment's directory, e.g. 'logs/pendulum'"),
    (("observation_normalization",), _or_none(_normalization),
     "must be None or a dict {leaf path: (mean, std)}, each a number or a list of numbers "
     "with every std > 0, e.g. {'velocity': (0.0, 2.0)}"),
    (("demonstrations",), _files,
     "must be a tuple of demonstration files, e.g. ('demos/pendulum.npz',), or ()"),
    (("demo_ratio",), _demo_ratio,
     "must be None, a share in [0, 1], or a schedule ((train step, share), ...) with "
     "increasing train steps, e.g. ((0, 0.5), (10000, 0.1))"),
    (("bc_warm_start_steps",), _int_at_least(0), "must be an integer >= 0"),
    (("prior_policy",), _or_none(lambda v: isinstance(v, str) and v.strip() != ""),
     "must be None or a SavedModel policy's directory, e.g. "
     "'../logs/pendulum/policies/final/collect_policy'"),
    (("target_divergence",), _or_none(is_number),
     "must be a finite number or None (None: 0.5 per action dimension)"),
    (("prior_std",), _number_above(0), "must be a positive number"),
    (("init_from_step",), _or_none(_int_at_least(0)),
     "must be None (the latest checkpoint) or a train step of the source's checkpoints"),
)


class GymTrainParams(TrainParamsBase):
    """Params whose env is a registered gym/pybullet id taken from the config:

        {"env_id": "HalfCheetahBulletEnv-v0",
         "max_episode_steps": 1000,      (optional; default: the registered limit)
         "gym_kwargs": {...},            (optional; passed to the env's constructor)
         "domain_randomization": true,   (optional; pybullet dynamics randomization
                                          whose spreads a curriculum sets)
         "perturbations": true,          (optional; every `perturbations` wrapper, or
                                          an object of their initial strengths)
         "observation_indices": [0, 2]}  (optional; observe only these entries of a
                                          flat observation, e.g. to hide velocities)

    `time_feature = True` appends the remaining fraction of the episode's time
    limit to the observation (`tfagents_system.time_feature.TimeFeature`).
    """

    time_feature: bool = False

    def validate(self) -> list[str]:
        problems = super().validate()
        if not isinstance(self.time_feature, bool):
            problems.append(f"time_feature={self.time_feature!r}: must be True or False")
        return problems

    def gym_wrappers(self) -> tuple:
        """The gym wrappers the config switches on, inner first."""
        from tfagents_system.envs import EnvError

        wrappers = []
        if self.env_config.get("domain_randomization"):
            from tfagents_system.domain_randomization import DynamicsRandomizer

            wrappers.append(DynamicsRandomizer)
        chosen = self.env_config.get("perturbations", False)
        if chosen is not False:
            from tfagents_system import perturbations

            known = ", ".join([*perturbations.PARAMETERS, *perturbations.OPTIONS])
            chosen = {} if chosen is True else chosen
            if not isinstance(chosen, dict):
                raise EnvError(f'config "perturbations": {chosen!r} must be true, false or an '
                               f"object of initial strengths ({known})")
            unknown = sorted(set(chosen) - set(perturbations.PARAMETERS)
                             - perturbations.OPTIONS)
            if unknown:
                raise EnvError(f'config "perturbations": unknown key(s) {", ".join(unknown)}; '
                               f"known: {known}")
            wrappers.append(functools.partial(perturbations.perturb, **chosen))
        if "observation_indices" in self.env_config:  # outermost: perturbations see all
            from tfagents_system.envs import keep_observation_entries

            wrappers.append(keep_observation_entries(self.env_config["observation_indices"]))
        return tuple(wrappers)

    def env_ctor(self, seed=None, *args, **kwargs):
        from tfagents_system.envs import EnvError, load_gym_env

        if "env_id" not in self.env_config:
            raise EnvError('the config has no "env_id"; add e.g. '
                           '"env_id": "InvertedPendulumBulletEnv-v0"')
        env = load_gym_env(
            self.env_config["env_id"],
            seed=seed,
            max_episode_steps=self.env_config.get("max_episode_steps"),
            gym_kwargs={**self.env_config.get("gym_kwargs", {}), **kwargs},
            gym_env_wrappers=self.gym_wrappers(),
        )
        if self.time_feature:
            from tfagents_system.time_feature import TimeFeature

            env = TimeFeature(env)
        return env


def load_params_class(path: str | Path) -> type[TrainParamsBase]:
    """Import a params file and return its `TrainParams` class."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path}: not found; set SAC_PARAMS to an existing .py file")
    module_name = f"sac_user_params_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ParamsError(f"params file {path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report whatever it raised
        del sys.modules[module_name]
        raise ParamsError(
            f"params file {path}: importing it raised {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, "TrainParams", None)
    if cls is None:
        raise ParamsError(
            f"params file {path}: defines no class TrainParams; "
            "add `class TrainParams(TrainParamsBase)`"
        )
    if not (isinstance(cls, type) and issubclass(cls, TrainParamsBase)):
        raise ParamsError(
            f"params file {path}: TrainParams must subclass "
            "tfagents_system.params.TrainParamsBase"
        )
    return cls


def load_params(path: str | Path, env_config: dict[str, Any],
                overrides: dict[str, Any] | None = None,
                overrides_source: str = "overrides") -> TrainParamsBase:
    """Instantiate the user's `TrainParams` with the config dict.

    `overrides` (a sweep variant's hyperparameters) replace class attributes on
    the instance; each must name an existing hyperparameter.
    """
    cls = load_params_class(path)
    try:
        params = cls(env_config)
    except TypeError as exc:
        raise ParamsError(f"params file {path}: TrainParams(env_config) failed: {exc}") from exc
    for name, value in (overrides or {}).items():
        attr = getattr(cls, name, None)
        known = hasattr(cls, name) and not name.startswith("_")
        if not known or callable(attr) or isinstance(attr, property):
            raise ParamsError(f"{overrides_source}: params.{name} is not a hyperparameter of "
                              f"TrainParams in {path}; use a class attribute such as "
                              "params.actor_learning_rate")
        if isinstance(attr, tuple) and isinstance(value, list):
            value = tuple(value)  # JSON has no tuples: layer sizes arrive as lists
        setattr(params, name, value)
    problems = params.validate()
    if problems:
        source = f"params file {path}" + (f" with {overrides_source}" if overrides else "")
        raise ParamsError(f"{source}: " + "; ".join(problems))
    return params
