"""The user surface: `TrainParamsBase`, and loading a user's params file.

A params file defines `class TrainParams(TrainParamsBase)` and implements
`env_ctor`. Settings are class attributes; SAC's follow the SAC paper (Haarnoja et
al., 2018, "Soft Actor-Critic Algorithms and Applications", table 1). Those whose
default depends on the kind of networks (`recurrent`) take it from
`agents.settings` when the params leave them alone. The hooks `actor_net_ctor`,
`critic_net_ctor` and `agent_ctor` build the agent's parts; their defaults are the
agent's own (`agents.networks`, `agents.sac`), given `agent_settings()`.
"""

from __future__ import annotations

import abc
import ast
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfagents_system import config_env, pixels
from tfagents_system.agents.settings import (
    AgentOptions,
    AgentSettings,
    ConvSettings,
    NetworkDefault,
    NetworkSettings,
    PriorSettings,
)
from tfagents_system.core.errors import ParamsError
from tfagents_system.envs import EnvError, load_gym_env
from tfagents_system.replay.format import NStep, Window
from tfagents_system.replay.limits import ReplaySettings
from tfagents_system.validation import hyperparameter_problems

__all__ = ["GymTrainParams", "ParamsError", "TrainParamsBase", "load_params",
           "load_params_class"]


class TrainParamsBase(AgentOptions, abc.ABC):
    """Subclass as `TrainParams` in your params file; override what you need (the agent's
    options, CrossQ's and gSDE's settings, are `agents.settings.AgentOptions`')."""

    # --- SAC (published defaults) ---
    discount: float = 0.99
    actor_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    alpha_learning_rate: float = 3e-4
    target_update_tau: float = 0.005
    target_update_period: int = 1
    initial_log_alpha: float = 0.0
    target_entropy: float | None = None  # None: TF-Agents' default, -dim(action space) / 2
    reward_scale_factor: float = 1.0
    # Hidden layers (feed-forward default (256, 256); recurrent: (64,), before the LSTM).
    actor_fc_layers = NetworkDefault()
    critic_joint_fc_layers = NetworkDefault()
    # Fixed normalization (x - mean) / std of observation leaves in the default
    # networks' combiner (README, "Structured observations"): {leaf path: (mean, std)},
    # each a number or one per element, e.g. {"velocity": (0.0, 2.0)}. A dict
    # observation's leaf path is its key ("sensors/imu" when nested); a flat one's is
    # "observation". None: no normalization.
    observation_normalization: dict[str, tuple] | None = None
    # Items per gradient step: transitions (default 256), or replay windows of recurrent
    # training (default 32).
    batch_size = NetworkDefault()

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
    # steps of one episode; the burn-in steps only warm the LSTM's state. The replay
    # buffer then holds windows: batch_size and samples_per_insert count windows,
    # replay_capacity and min_replay_size still count transitions. Defaults (measured,
    # agents.settings): 32 windows of 10 burn-in + 20 trained steps, 64 -> LSTM 40 -> 64.
    recurrent: bool = False
    recurrent_sequence_length = NetworkDefault()
    recurrent_burn_in = NetworkDefault()
    lstm_size = NetworkDefault()
    recurrent_output_fc_layers = NetworkDefault()

    # --- Prior-regularized SAC (README, "Prior-regularized SAC") ---
    # As SPiRL (Pertsch et al., 2020): the entropy bonus becomes a penalty on the
    # divergence log pi(a|s) - log p(a|s) from a prior policy p, in the actor's loss and
    # the critic's target, and alpha is tuned toward target_divergence instead of
    # target_entropy. The prior: a SavedModel policy exported by TF-Agents' PolicySaver,
    # e.g. another experiment's policies/final/collect_policy (relative: to this params
    # file). The launch checks it and copies it into the experiment. None: plain SAC.
    prior_policy: str | None = None
    # Nats the policy may diverge from the prior (a one-sample estimate of KL(pi || p)).
    # None: 0.5 per action dimension, scaled with the action space as the default
    # target entropy is (-0.5 per dimension): the policy stays close to the prior yet can
    # improve on it. SPiRL tunes this per task; so may you.
    target_divergence: float | None = None
    # A greedy prior (a deterministic action, no density) is read as an independent
    # normal of this scale per action dimension around its action.
    prior_std: float = 0.1

    # --- Pixels (README, "Learning from pixels"): a conv encoder for image leaves,
    # one layer per entry, then encoder_features units (defaults: DrQ's encoder).
    conv_channels: tuple[int, ...] = ConvSettings.channels
    conv_kernels: tuple[int, ...] = ConvSettings.kernels
    conv_strides: tuple[int, ...] = ConvSettings.strides
    encoder_features: int = ConvSettings.features
    # DrQ's random shift of a batch's images by up to this many pixels. 0: none.
    image_shift: int = 4

    # --- Hindsight experience replay (README, "Goal-conditioned tasks and HER") ---
    # For goal-conditioned envs (dict observations with observation, achieved_goal and
    # desired_goal, and a compute_reward): "future", "final" or "episode" relabels
    # every transition with her_goals_per_transition other goals at its episode's end,
    # rewards recomputed by the env's compute_reward (tfagents_system.hindsight). The
    # replay sizes and samples_per_insert stay per env step. None: no HER.
    her_strategy: str | None = None
    her_goals_per_transition: int = 4

    def __init__(self, env_config: dict[str, Any] | None = None):
        self.env_config: dict[str, Any] = dict(env_config or {})
        if "agent" in self.env_config:  # the config's "agent" ("sac", "crossq") wins
            self.agent = self.env_config["agent"]

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
        """The actor network (default: `agents.networks.actor_network`)."""
        from tfagents_system.agents import networks

        return networks.actor_network(self.agent_settings().networks, observation_spec,
                                      action_spec)

    def critic_net_ctor(self, observation_spec, action_spec):
        """The critic network (default: `agents.networks.critic_network`)."""
        from tfagents_system.agents import networks

        return networks.critic_network(self.agent_settings().networks, observation_spec,
                                       action_spec)

    def agent_ctor(self, time_step_spec, action_spec, actor_net, critic_net, train_step):
        """The agent (default: `agents.sac.make_agent`, SAC built from the settings, or
        `agents.crossq.make_agent` for agent = "crossq")."""
        from tfagents_system.agents import crossq, sac

        settings = self.agent_settings()
        make = sac.make_agent if settings.crossq is None else crossq.make_agent
        return make(settings, time_step_spec, action_spec, actor_net, critic_net, train_step)

    # --- What the parts are built from ---
    def agent_settings(self) -> AgentSettings:
        """The agent's settings (`agents.settings`); the prior policy's directory made
        absolute (relative paths: to the file defining the params class)."""
        networks = NetworkSettings(
            tuple(self.actor_fc_layers), tuple(self.critic_joint_fc_layers),
            self.observation_normalization,
            tuple(self.lstm_size) if self.recurrent else None,
            tuple(self.recurrent_output_fc_layers) if self.recurrent else (),
            self.conv_settings(), self.sde_settings(), self.crossq_settings())
        prior = None if self.prior_policy is None else PriorSettings(
            str(self.relative_to_file(self.prior_policy)), self.target_divergence,
            self.prior_std)
        return AgentSettings(
            networks, self.discount, self.actor_learning_rate, self.critic_learning_rate,
            self.alpha_learning_rate, self.target_update_tau, self.target_update_period,
            self.initial_log_alpha, self.target_entropy, self.reward_scale_factor, prior,
            int(self.image_shift), self.crossq_settings())

    def conv_settings(self) -> ConvSettings:
        """The image encoder's settings (`conv_*`, `encoder_features`)."""
        return ConvSettings(tuple(self.conv_channels), tuple(self.conv_kernels),
                            tuple(self.conv_strides), int(self.encoder_features))

    @property
    def rows_per_env_step(self) -> int:
        """Transitions the replay buffer gets per env step: 1, and HER's relabeled copies."""
        return 1 if self.her_strategy is None else 1 + int(self.her_goals_per_transition)

    @property
    def frame_stack(self) -> int:
        """Frames an image observation stacks: the config's "pixels" frame_stack, or 1."""
        settings = pixels.PixelSettings.from_config(self.env_config)
        return 1 if settings is None else settings.frame_stack

    def replay_settings(self, capacity: int) -> ReplaySettings:
        """The replay buffer's and the learner's sampling settings (`replay.limits`).
        `capacity` is in transitions as stored (relabeled copies included, as the launch
        records it); min_replay_size and samples_per_insert count env steps, so with HER
        they are scaled to the rows each env step brings."""
        rows = self.rows_per_env_step
        spi = None if self.samples_per_insert is None else self.samples_per_insert / rows
        return ReplaySettings(int(capacity), int(self.min_replay_size) * rows,
                              int(self.batch_size), spi, self.samples_per_insert_error_buffer)

    def relative_to_file(self, path: str, params_file: Path | None = None) -> Path:
        """A path of the params (~ expanded) made absolute, so the process's working
        directory never matters: relative to `params_file` (the launch's params file),
        else to the file defining the params class."""
        path = Path(os.path.expanduser(path))
        base = Path(params_file) if params_file is not None else Path(inspect.getfile(type(self)))
        return (path if path.is_absolute() else base.parent / path).resolve()

    @property
    def total_train_steps(self) -> int:
        """The train step at which training is complete."""
        return int(self.num_iter) * int(self.num_steps_per_iter)

    @property
    def window(self) -> Window | None:
        """The replay window of recurrent training; None without recurrence."""
        if not self.recurrent:
            return None
        return Window(int(self.recurrent_sequence_length), int(self.recurrent_burn_in))

    @property
    def n_step_returns(self) -> NStep | None:
        """(n, discount) of the workers' n-step rows; None for one-step ones."""
        n = int(self.n_step)
        return None if n == 1 else NStep(n, float(self.discount))

    def validate(self) -> list[str]:
        """All problems with the settings, each naming the field and the fix."""
        return hyperparameter_problems(self)

    def keep_recorded_defaults(self, hyperparameters: Mapping) -> None:
        """A resumed experiment keeps the network-dependent defaults it was created with
        (`settings.json`'s hyperparameters), whatever the framework's defaults are now:
        its networks, batches and replay windows do not change under it."""
        for name, value in hyperparameters.items():
            # Still the framework's default: no params class or instance has set it.
            if isinstance(getattr(type(self), name, None), NetworkDefault) and (
                    name not in vars(self)):
                setattr(self, name, ast.literal_eval(value) if isinstance(value, str) else value)


class GymTrainParams(TrainParamsBase):
    """Params whose env is a registered gym/pybullet or gymnasium id taken from the
    config (gymnasium ids: MuJoCo's HalfCheetah-v4, panda-gym's PandaReach-v3, or
    any package's as "package.module:EnvId"; `envs.load_gym_env`):

        {"env_id": "HalfCheetahBulletEnv-v0",
         "env_api": "gymnasium",         (optional; "gym" or "gymnasium": which
                                          registry the id is from; default: gym's
                                          if gym has it, else gymnasium's)
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
        """The base class's problems, and time_feature's."""
        problems = super().validate()
        if not isinstance(self.time_feature, bool):
            problems.append(f"time_feature={self.time_feature!r}: must be True or False")
        return problems

    def gym_wrappers(self) -> tuple:
        """The gym wrappers the config switches on, inner first (`config_env.wrappers`)."""
        return config_env.wrappers(self.env_config)

    def env_ctor(self, seed=None, *args, **kwargs):
        """The config's gym/pybullet or gymnasium env (`envs.load_gym_env`), wrapped as
        configured."""
        if "env_id" not in self.env_config:
            raise EnvError('the config has no "env_id"; add e.g. '
                           '"env_id": "InvertedPendulumBulletEnv-v0"')
        env_id = self.env_config["env_id"]
        if isinstance(env_id, str) and env_id.startswith(pixels.DM_CONTROL_PREFIX):
            return pixels.dm_control_env(self.env_config, seed)
        env = load_gym_env(
            env_id,
            seed=seed,
            max_episode_steps=self.env_config.get("max_episode_steps"),
            gym_kwargs={**self.env_config.get("gym_kwargs", {}), **kwargs},
            gym_env_wrappers=self.gym_wrappers(),
            env_api=self.env_config.get("env_api"),
        )
        if pixels.PixelSettings.from_config(self.env_config) is not None:
            return pixels.rendered_env(env, self.env_config, self.time_feature)
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
                overrides_source: str = "overrides",
                recorded: Mapping | None = None) -> TrainParamsBase:
    """Instantiate the user's `TrainParams` with the config dict.

    `overrides` (a sweep variant's hyperparameters) replace class attributes on
    the instance; each must name an existing hyperparameter. `recorded`: a resumed
    experiment's hyperparameters as created (`keep_recorded_defaults`).
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
        default = attr.default if isinstance(attr, NetworkDefault) else attr
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)  # JSON has no tuples: layer sizes arrive as lists
        setattr(params, name, value)
    if recorded:
        params.keep_recorded_defaults(recorded)
    problems = params.validate()
    if problems:
        source = f"params file {path}" + (f" with {overrides_source}" if overrides else "")
        raise ParamsError(f"{source}: " + "; ".join(problems))
    return params
