"""The user's environment and settings as the experiment will run them, checked at
launch: the env as `env_ctor` builds it (specs, values, bounds, the curriculum), the
replay capacity it implies, a prior policy, the agent and the replay format it needs,
a fine-tuning source and the demonstrations. Each problem is one `CheckError` (or
`LaunchError` for what the user's code raised) naming the file or field and the fix,
raised before any program starts or any file is written; `LaunchTimeout` bounds how
long the user's code may take.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

from tfagents_system import curriculum, envs, finetune, gymnasium_bridge, hindsight
from tfagents_system.builder import COLLECT, EVAL, Builder
from tfagents_system.cli import import_quietly
from tfagents_system.core import constants as C
from tfagents_system.core.errors import CheckError, ParamsError
from tfagents_system.demonstrations import DemonstrationError
from tfagents_system.launch.errors import LaunchError
from tfagents_system.replay import demo_store
from tfagents_system.replay.format import LAYOUT_STEPS, FormatError, ReplayFormat
from tfagents_system.replay.packing import observation_problem


class LaunchTimeout:
    """Bounds the launch's own run of the user's code (the params import, `env_ctor`,
    the first env steps): past `seconds`, one `error:` line says what hung and the
    launcher exits 2. Nothing has been written by then (the experiment directory is
    created after the checks)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.what = "the launch checks"
        self._timer: threading.Timer | None = None

    def stage(self, what: str) -> None:
        """Name what runs now, for the message if it hangs."""
        self.what = what

    def _expire(self) -> None:
        print(f"error: {self.what} did not finish within {self.seconds:.0f} s "
              "(SAC_LAUNCH_TIMEOUT): it hangs, or needs more time; fix it or raise "
              "SAC_LAUNCH_TIMEOUT", file=sys.stderr, flush=True)
        os._exit(C.EXIT_BAD_INPUT)

    def __enter__(self) -> LaunchTimeout:
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _leaves(nest) -> list:
    import tensorflow as tf

    return tf.nest.flatten(nest)


def check_action_bounds(spec, where: str) -> None:
    """SAC squashes actions into the spec's bounds: they must be float, finite and
    ordered."""
    for leaf in _leaves(spec):
        if not np.issubdtype(leaf.dtype, np.floating):
            raise CheckError(f"{where}: the env's action spec is {leaf.dtype}; SAC needs "
                             "continuous (float) actions")
        low = np.broadcast_to(np.asarray(getattr(leaf, "minimum", -np.inf)), leaf.shape)
        high = np.broadcast_to(np.asarray(getattr(leaf, "maximum", np.inf)), leaf.shape)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise CheckError(f"{where}: the env's action spec {leaf} has unbounded actions; "
                             "SAC needs finite bounds (a BoundedArraySpec with finite "
                             "minimum and maximum)")
        if np.any(low >= high):
            raise CheckError(f"{where}: the env's action spec {leaf} has a minimum not "
                             "below its maximum; fix the bounds")


def _check_time_step(env, time_step, what: str, where: str) -> None:
    from tf_agents.specs import array_spec

    for name in ("observation", "reward"):
        values = [np.asarray(x) for x in _leaves(getattr(time_step, name))]
        if any(np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v))
               for v in values):
            raise CheckError(f"{where}: the env's {what} returned a non-finite {name} (NaN "
                             "or infinity); the learner would train on it")
    spec = env.time_step_spec()
    got = [(np.shape(x), np.asarray(x).dtype.name) for x in _leaves(time_step)]
    want = [(tuple(s.shape), np.dtype(s.dtype).name) for s in _leaves(spec)]
    if got != want:
        raise CheckError(f"{where}: the env's {what} returned arrays of shapes and dtypes "
                         f"{got}, its time_step_spec says {want}; make them agree")
    if not array_spec.check_arrays_nest(time_step, spec):
        raise CheckError(f"{where}: the env's {what} returned values outside the bounds of "
                         f"its time_step_spec {spec}; widen the bounds or fix the env")


def check_env_steps(env, seed: int, where: str) -> None:
    """The env's first reset() and a step with a uniform random action agree with its
    specs and give finite observations and rewards."""
    from tf_agents.specs import array_spec

    check_action_bounds(env.action_spec(), where)
    _check_time_step(env, env.reset(), "reset()", where)
    action = array_spec.sample_spec_nest(env.action_spec(), np.random.RandomState(seed))
    _check_time_step(env, env.step(action), "step()", where)


def check_goal_env(params, env, where: str) -> None:
    """An env HER is asked for must be goal-conditioned with its own compute_reward."""
    if params.her_strategy is None:
        return
    problem = hindsight.env_problem(env.observation_spec(), gymnasium_bridge.goal_env(env))
    if problem:
        raise CheckError(f"{where}: her_strategy={params.her_strategy!r}: {problem}; use a "
                         "goal-conditioned env or set her_strategy = None")


def check_same_specs(collect_env, eval_env, where: str) -> None:
    """The eval env must take and give what the collect env does (one policy serves both)."""
    for what in ("time_step_spec", "action_spec"):
        collect, evaluate = getattr(collect_env, what)(), getattr(eval_env, what)()
        if collect != evaluate:
            raise CheckError(f"{where}: the collect and eval envs differ in {what} "
                             f"({collect} against {evaluate}); eval_env_args_kwargs() must "
                             "build the same kind of env")


def replay_capacity(params, max_episode_steps: int | None) -> int:
    """Transitions the replay buffer keeps: n_episodes_in_buffer episodes if set and
    the env has a step limit, else replay_capacity; with HER, each env step's
    relabeled copies too (`TrainParamsBase.rows_per_env_step`)."""
    if params.n_episodes_in_buffer is not None and max_episode_steps:
        steps = int(params.n_episodes_in_buffer * max_episode_steps)
    else:
        steps = int(params.replay_capacity)
    return steps * params.rows_per_env_step


def check_capacity(params, max_steps: int | None, where: str) -> int:
    """The replay capacity the learner will use; CheckError if it cannot be known or
    holds less than min_replay_size (the learner would wait forever)."""
    if params.n_episodes_in_buffer is not None and not max_steps:
        raise CheckError(f"{where}: n_episodes_in_buffer={params.n_episodes_in_buffer} needs the "
                         "env's step limit, and this env has none the framework can see (no "
                         "TF-Agents TimeLimit wrapper); set replay_capacity instead, or give "
                         "the env a step limit (max_episode_steps in the config)")
    capacity = replay_capacity(params, max_steps)
    if capacity < params.min_replay_size * params.rows_per_env_step:
        source = (f"n_episodes_in_buffer={params.n_episodes_in_buffer} x {max_steps} steps"
                  if params.n_episodes_in_buffer is not None
                  else f"replay_capacity={params.replay_capacity}")
        raise CheckError(f"{where}: the replay buffer would hold {capacity} transitions "
                         f"({source}), fewer than min_replay_size={params.min_replay_size}: "
                         "the learner would wait forever; raise the capacity or lower "
                         "min_replay_size")
    return capacity


def _build_envs(builder: Builder, params_file: Path, timeout: LaunchTimeout) -> list:
    """A collect and an eval env as the workers build them (LaunchError naming what the
    user's env_ctor raised)."""
    built = []
    for kind in (COLLECT, EVAL):
        timeout.stage(f"TrainParams.env_ctor building the {kind} env ({params_file})")
        try:
            built.append(builder.env(kind, seed=builder.params.seed))
        except Exception as exc:  # the user's env_ctor: report whatever it raised
            for env in built:
                env.close()
            raise LaunchError(f"params file {params_file}: TrainParams.env_ctor raised "
                              f"{type(exc).__name__} building the {kind} env: {exc}") from exc
    return built


def check_environment(builder: Builder, params_file: Path, config_file: Path,
                      timeout: LaunchTimeout) -> tuple[int | None, list, tuple]:
    """Build a collect and an eval env once and step the collect env: specs, values and
    bounds as SAC needs them. (The collect env's step limit, warnings, (time step spec,
    action spec).)"""
    import_quietly()
    params, where = builder.params, f"params file {params_file}"
    built = _build_envs(builder, params_file, timeout)
    try:
        check_same_specs(*built, where)
        timeout.stage(f"the collect env's first reset() and step() ({params_file})")
        check_env_steps(built[0], params.seed, where)
        check_goal_env(params, built[0], where)
        # Last: it leaves the envs at the curriculum's final values.
        for env, kind in zip(built, (COLLECT, EVAL)):
            curriculum.check_env_accepts(curriculum.parse_curriculum(params.env_config),
                                         env, kind, f"config file {config_file}")
        max_steps = envs.max_episode_steps(built[0])
        warnings = [] if max_steps else [
            f"{where}: the collect env has no step limit the framework can see (no TF-Agents "
            "TimeLimit): if its episodes never end, workers never refresh their weights; set "
            "max_episode_steps in the config (gym ids) or wrap your env in TimeLimit"]
        return max_steps, warnings, (built[0].time_step_spec(), built[0].action_spec())
    finally:
        for env in built:
            env.close()


def check_prior(params, params_file: Path, specs: tuple, timeout: LaunchTimeout
                ) -> tuple[Path | None, list[str]]:
    """(the prior policy a new experiment is regularized toward, checked against its env
    (None without one), warnings). params.prior_policy then names it by its absolute
    path: the agent built next loads the prior that was checked."""
    from tfagents_system.agents.prior import check_policy

    if params.prior_policy is None:
        return None, []
    source = params.relative_to_file(params.prior_policy, params_file)
    timeout.stage(f"checking the prior policy {source} ({params_file})")
    warning = check_policy(source, specs, f"params file {params_file}: prior_policy")
    params.prior_policy = str(source)
    return source, [warning] if warning else []


def build_agent(builder: Builder, specs: tuple, params_file: Path, timeout: LaunchTimeout):
    """The agent the params build, as the learner will build it (a throwaway one)."""
    import tensorflow as tf
    from tf_agents.utils import common

    where = f"params file {params_file}"
    timeout.stage(f"building TrainParams' agent to choose the replay format ({params_file})")
    try:
        return builder.agent(common.create_variable("launch_agent_step", 0, dtype=tf.int64),
                             specs)
    except FormatError as exc:  # a configuration SAC cannot train
        raise CheckError(f"{where}: {exc}") from exc
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc}") from exc
    except Exception as exc:  # the user's network and agent constructors
        raise LaunchError(f"{where}: building the agent (actor_net_ctor, critic_net_ctor, "
                          f"agent_ctor) raised {type(exc).__name__}: {exc}") from exc


def choose_replay_format(builder: Builder, agent, capacity: int, params_file: Path
                         ) -> ReplayFormat:
    """A new experiment's replay format, for the agent the params build. An observation
    the packed layouts cannot hold exactly is refused here, never left to the slow
    2-step layout."""
    from tf_agents.agents.sac import sac_agent

    where = f"params file {params_file}"
    try:
        replay_format = builder.choose_replay_format(agent, capacity)
    except FormatError as exc:
        raise CheckError(f"{where}: {exc}") from exc
    problem = observation_problem(agent.collect_data_spec.observation)
    if problem and isinstance(agent, sac_agent.SacAgent):
        raise CheckError(
            f"{where}: the env's {problem} (the fast replay layouts store observations as "
            "float32 vectors; the 2-step TF-Agents layout is several times slower); cast "
            "that leaf in env_ctor to float32, or to int32/int16/uint8/bool for a counter "
            "or flag (exact up to 2**24)")
    if builder.params.her_strategy is not None and replay_format.layout == LAYOUT_STEPS:
        raise CheckError(f"{where}: her_strategy={builder.params.her_strategy!r} writes "
                         "relabeled transitions, which the 2-step TF-Agents layout of a "
                         "custom agent_ctor cannot take; use the SAC agent the framework "
                         "builds, or her_strategy = None")
    return replay_format


def check_fine_tuning(params, source: Path | None, where: str, specs: tuple, agent,
                      replay_format: ReplayFormat, capacity: int, timeout: LaunchTimeout
                      ) -> finetune.InitFrom | None:
    """The source a new experiment starts from (None: from scratch), checked against it
    with the agent the params build (restored into it: a throwaway agent)."""
    if source is None:
        return None
    timeout.stage(f"checking the fine-tuning source {source} against TrainParams' agent")
    return finetune.plan_init(source, params, specs, agent, replay_format, capacity, where)


def read_demonstrations(params, params_file: Path, config_file: Path,
                        replay_format: ReplayFormat, timeout: LaunchTimeout) -> tuple | None:
    """(rows, meta) of a new experiment's demonstrations (None without any), as the
    workers would write them in its replay format; one line naming a file that cannot
    be used."""
    from tf_agents.trajectories import time_step as ts

    where = (f"config file {config_file}" if "demonstrations" in params.env_config
             else f"params file {params_file}")
    try:
        files = demo_store.requested_files(params, params_file, config_file)
    except DemonstrationError as exc:
        raise CheckError(f"{where}: demonstrations: {exc}") from exc
    if not files:
        return None
    if replay_format.layout == LAYOUT_STEPS:
        raise CheckError(f"{where}: demonstrations go into the packed replay layouts only, "
                         f"but this agent needs {replay_format.layout} "
                         f"({replay_format.reason}); remove the demonstrations")
    if replay_format.frames is not None:
        raise CheckError(f"{where}: demonstrations of image observations are not supported "
                         "yet (their frames would need the frame layout's blocks); remove "
                         "the demonstrations")
    timeout.stage(f"reading the demonstrations ({where})")
    try:
        return demo_store.build_rows(files, replay_format,
                                     ts.time_step_spec(replay_format.observation_spec))
    except DemonstrationError as exc:
        raise CheckError(f"{where}: demonstrations: {exc}") from exc


def demonstrations_note(params, rows, files: list) -> str:
    """The launch's line about a new experiment's demonstrations."""
    share = "their share of all rows" if params.demo_ratio is None else params.demo_ratio
    return (f"demonstrations: {len(rows)} replay rows from {len(files)} file(s), stored in "
            f"the experiment ({C.DEMONSTRATIONS_DIR}/); share of each batch: {share}")


def collect_env_specs(builder: Builder, params_file: Path, timeout: LaunchTimeout) -> tuple:
    """(time step spec, action spec) of the collect env the params build; whatever the
    user's env_ctor raises is one LaunchError line."""
    timeout.stage(f"TrainParams.env_ctor building the collect env ({params_file})")
    import_quietly()
    try:
        return builder.specs()
    except Exception as exc:  # the user's env_ctor: report whatever it raised
        raise LaunchError(f"params file {params_file}: TrainParams.env_ctor raised "
                          f"{type(exc).__name__} building the collect env: {exc}") from exc


def check_resumed(builder: Builder, recorded: ReplayFormat, timeout: LaunchTimeout) -> None:
    """A resumed experiment's env and params must match its recorded replay format (the
    observation's and the action's structure, the replay window and the n-step rows)."""
    paths = builder.paths
    if recorded.observation is None and recorded.action is None and (
            builder.params.window == recorded.window) and (
            builder.params.n_step_returns == recorded.n_step):
        return  # a record from before structures were recorded: nothing to build the env for
    time_step_spec, action_spec = collect_env_specs(builder, paths.params, timeout)
    problem = recorded.mismatch(time_step_spec.observation, action_spec, builder.params.window,
                                builder.params.n_step_returns, f"params file {paths.params}")
    if problem:
        raise CheckError(problem)
