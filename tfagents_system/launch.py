"""Validate a launch, prepare the experiment directory, and run the N+2 programs.

    python -m tfagents_system.launch TRAINING_VARIABLES.sh

(`train_script.sh` calls this.) Everything is checked before the first program
starts: a bad variable, config, params file or environment gives one line and
exit code 2, and no existing experiment is touched. Each program runs under
supervisord (see `supervision.py`), pinned with `taskset` to its CPU slice,
with matching thread counts, logging to its own file in the experiment
directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import fcntl
import filecmp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tfagents_system import (
    checks,
    cpu_layout,
    curriculum,
    finetune,
    runtime,
    settings,
    slurm,
    status,
    supervision,
    sweep,
)
from tfagents_system import constants as C
from tfagents_system.params import ParamsError, TrainParamsBase, load_params
from tfagents_system.paths import ExperimentPaths
from tfagents_system.replay import auth

REPO_ROOT = Path(__file__).resolve().parent.parent


class LaunchError(Exception):
    """A launch cannot go ahead; the message is the one line the user sees."""


class AlreadyFinished(Exception):
    """The experiment holds TRAINING_COMPLETE.json: nothing to run."""

    def __init__(self, exp_dir: Path):
        super().__init__(str(exp_dir))
        self.exp_dir = exp_dir


@dataclass
class RemoteNode:
    """Another node of a multi-node SLURM job: it runs workers under its own supervisord."""

    name: str
    cpus: int
    worker_indices: list[int]


@dataclass
class Plan:
    """A validated launch: the experiment, its params, the CPU layout and the nodes."""

    variables: settings.TrainingVariables
    paths: ExperimentPaths
    params: TrainParamsBase
    layout: cpu_layout.CpuLayout
    port: int
    resuming: bool
    worker_indices: list[int]  # the workers this node runs (all of them on one node)
    host: str = "localhost"  # where the replay server is reached: the head node's name
    remote: list[RemoteNode] = field(default_factory=list)
    variant: dict | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    replay_layout: str = ""  # the line saying the experience-item layout and why

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def num_workers(self) -> int:
        return len(self.worker_indices) + sum(len(n.worker_indices) for n in self.remote)


def hyperparameters(params: TrainParamsBase) -> dict:
    """Every public, non-callable attribute of the params object, JSON-safe."""
    out = {}
    for name in sorted(dir(params)):
        if name.startswith("_") or name == "env_config":
            continue
        value = getattr(type(params), name, None)
        if callable(value) or isinstance(value, property):
            continue
        value = getattr(params, name)
        out[name] = value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)
    return out


def check_environment(params: TrainParamsBase, params_file: Path, config_file: Path,
                      timeout: checks.LaunchTimeout | None = None
                      ) -> tuple[int | None, list, tuple]:
    """Build a collect and an eval env once and step the collect env: specs, values and
    bounds as SAC needs them. (The collect env's step limit, warnings, (time step spec,
    action spec).)"""
    runtime.import_quietly()
    from tfagents_system import builders, envs

    stage = timeout.stage if timeout is not None else (lambda what: None)
    where = f"params file {params_file}"
    envs_built = []
    try:
        for kind in (builders.COLLECT, builders.EVAL):
            stage(f"TrainParams.env_ctor building the {kind} env ({params_file})")
            try:
                env = builders.make_env(params, kind, seed=params.seed)
            except Exception as exc:  # the user's env_ctor: report whatever it raised
                raise LaunchError(
                    f"{where}: TrainParams.env_ctor raised "
                    f"{type(exc).__name__} building the {kind} env: {exc}"
                ) from exc
            envs_built.append(env)
        checks.check_same_specs(*envs_built, where)
        stage(f"the collect env's first reset() and step() ({params_file})")
        checks.check_env_steps(envs_built[0], params.seed, where)
        # Last: it leaves the envs at the curriculum's final values.
        for env, kind in zip(envs_built, (builders.COLLECT, builders.EVAL)):
            curriculum.check_env_accepts(curriculum.parse_curriculum(params.env_config),
                                         env, kind, f"config file {config_file}")
        max_steps = envs.max_episode_steps(envs_built[0])
        warnings = [] if max_steps else [
            f"{where}: the collect env has no step limit the framework can see (no TF-Agents "
            "TimeLimit): if its episodes never end, workers never refresh their weights; set "
            "max_episode_steps in the config (gym ids) or wrap your env in TimeLimit"]
        return max_steps, warnings, (envs_built[0].time_step_spec(),
                                     envs_built[0].action_spec())
    finally:
        for env in envs_built:
            env.close()


def choose_replay_layout(params: TrainParamsBase, specs: tuple, capacity: int,
                         params_file: Path, timeout: checks.LaunchTimeout) -> tuple[dict, float]:
    """(replay_layout.json's record, seconds it took) for a new experiment: the layout
    `choose_layout` gives for the agent the params build, as the learner would build
    it. An observation the packed layouts cannot hold exactly is refused here, never
    left to the slow 2-step layout."""
    import tensorflow as tf
    from tf_agents.agents.sac import sac_agent
    from tf_agents.utils import common

    from tfagents_system import builders
    from tfagents_system.replay import layouts, packing

    where = f"params file {params_file}"
    timeout.stage(f"building TrainParams' agent to choose the replay layout ({params_file})")
    start = time.monotonic()
    try:
        agent = builders.make_agent(params, *specs, common.create_variable(
            "launch_layout_step", 0, dtype=tf.int64))
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc}") from exc
    except Exception as exc:  # the user's network and agent constructors
        raise LaunchError(f"{where}: building the agent (actor_net_ctor, critic_net_ctor, "
                          f"agent_ctor) raised {type(exc).__name__}: {exc}") from exc
    try:
        record = layouts.layout_record(agent, capacity, params.learner_keeps_replay,
                                       params.sequence, params.n_step_returns)
    except layouts.LayoutError as exc:  # a configuration SAC cannot train
        raise checks.CheckError(f"{where}: {exc}") from exc
    problem = packing.observation_problem(agent.collect_data_spec.observation)
    if problem and isinstance(agent, sac_agent.SacAgent):
        raise checks.CheckError(
            f"{where}: the env's {problem} (the fast replay layouts store observations as "
            "float32 vectors; the 2-step TF-Agents layout is several times slower); cast "
            "that leaf in env_ctor to float32, or to int32/int16/uint8/bool for a counter "
            "or flag (exact up to 2**24)")
    return record, time.monotonic() - start


def read_demonstrations(params: TrainParamsBase, inputs: Inputs, specs: tuple, record: dict,
                        timeout: checks.LaunchTimeout) -> tuple | None:
    """(rows, meta) of a new experiment's demonstrations (None without any), as the
    workers would write them in its layout; one line naming a file that cannot be
    used."""
    from tfagents_system import demonstrations
    from tfagents_system.replay import demo_store, layouts

    where = (f"config file {inputs.config_file}" if "demonstrations" in params.env_config
             else f"params file {inputs.params_file}")
    try:
        files = demo_store.requested_files(params, inputs.params_file, inputs.config_file)
    except demonstrations.DemonstrationError as exc:
        raise checks.CheckError(f"{where}: demonstrations: {exc}") from exc
    if not files:
        return None
    if record["layout"] == layouts.LAYOUT_STEPS:
        raise checks.CheckError(f"{where}: demonstrations go into the packed replay layouts "
                                f"only, but this agent needs {record['layout']} "
                                f"({record['reason']}); remove the demonstrations")
    timeout.stage(f"reading the demonstrations ({where})")
    try:
        rows, meta = demo_store.build_rows(files, *specs, params.sequence,
                                           params.n_step_returns)
    except demonstrations.DemonstrationError as exc:
        raise checks.CheckError(f"{where}: demonstrations: {exc}") from exc
    share = "their share of all rows" if params.demo_ratio is None else params.demo_ratio
    inputs.notes.append(f"demonstrations: {len(rows)} replay rows from {len(files)} file(s), "
                        f"stored in the experiment ({C.DEMONSTRATIONS_DIR}/); share of each "
                        f"batch: {share}")
    return rows, meta


def describe_replay_layout(paths: ExperimentPaths, chosen_in_s: float | None = None) -> str:
    """The launcher's line saying which experience-item layout the run uses and why."""
    record = runtime.read_json_or_none(paths.layout)
    if not isinstance(record, dict) or "layout" not in record:
        return ("experience items: chosen by the learner at its first start (an "
                f"experiment created before launches recorded {C.LAYOUT_FILE})")
    when = (f"chosen now; building the agent took {chosen_in_s:.1f} s"
            if chosen_in_s is not None else f"recorded in {paths.layout}")
    return f"experience items: {record['layout']} ({record.get('reason', '?')}; {when})"


def check_resumed_observation(params: TrainParamsBase, paths: ExperimentPaths,
                              timeout: checks.LaunchTimeout) -> None:
    """A resumed experiment's env must give the observation structure it recorded."""
    from tfagents_system import builders
    from tfagents_system.replay import layouts

    record = runtime.read_json_or_none(paths.layout)
    if not isinstance(record, dict) or record.get("observation") is None:
        return  # no record yet, or one from before structures were recorded
    timeout.stage(f"TrainParams.env_ctor building the collect env ({paths.params})")
    runtime.import_quietly()
    try:
        time_step_spec, _ = builders.env_specs(params)
    except Exception as exc:  # the user's env_ctor: report whatever it raised
        raise LaunchError(f"params file {paths.params}: TrainParams.env_ctor raised "
                          f"{type(exc).__name__} building the collect env: {exc}") from exc
    mismatch = layouts.structure_mismatch(record, time_step_spec.observation,
                                          f"params file {paths.params}")
    if mismatch:
        raise checks.CheckError(mismatch)


def git_revision() -> str | None:
    """The repository's commit, recorded with every launch (None outside git)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, check=False, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def experiment_dir(variables: settings.TrainingVariables, task_id: int | None) -> Path:
    """logs/<name>, or logs/<name>_task_<id> for an array task (or SAC_TASK_ID)."""
    if task_id is None:
        return variables.exp_dir
    return variables.logs_dir / C.task_experiment_name(variables.exp_name, task_id)


def choose_variant(variables: settings.TrainingVariables,
                   task_id: int | None) -> sweep.Variant | None:
    """The sweep variant of this task; a task without a sweep only changes the seed."""
    if variables.sweep is not None:
        sweep.load_sweep(variables.sweep)  # a broken sweep file is reported first
    if variables.sweep is not None and task_id is None:
        raise LaunchError(
            f"training variables file {variables.source}: SAC_SWEEP is set but this launch has "
            f"no task id; submit an array job (python -m tfagents_system.sweep "
            f"{variables.sweep} prints the --array range) or set SAC_TASK_ID=<n> to run one "
            "variant here"
        )
    if variables.sweep is not None:
        return sweep.variant_for_task(variables.sweep, task_id)
    return None if task_id is None else sweep.Variant(task_id)


def plan_placement(variables: settings.TrainingVariables):
    """(head layout, head worker indices, replay host, other nodes) for this launch.

    On a workstation or a one-node SLURM job everything runs here, addressed as
    localhost. In a multi-node job this is the first node: it runs the replay
    server, the learner and its share of the workers; the other nodes run the
    rest of the workers and reach the replay server by this node's name.
    """
    available = cpu_layout.available_cpus()
    job = slurm.allocation()
    if job is None or len(job.nodes) == 1:
        layout = cpu_layout.plan_layout(available, variables.num_workers, variables.reverb_cpus,
                                        variables.train_cpus, variables.worker_cpus)
        return layout, list(range(len(layout.workers))), "localhost", []
    if job.this_node != job.head:
        raise LaunchError(
            f"SLURM job {job.job_id} spans nodes {','.join(job.nodes)}: start the launch on "
            f"its first node {job.head} (slurm/train.sbatch does), not on {job.this_node}"
        )
    head_fit = cpu_layout.plan_layout(available, None, variables.reverb_cpus,
                                      variables.train_cpus, variables.worker_cpus)
    per_node = cpu_layout.spread_workers(len(head_fit.workers), list(job.cpus[1:]),
                                         variables.num_workers, variables.worker_cpus)
    layout = cpu_layout.plan_layout(available, len(per_node[0]), variables.reverb_cpus,
                                    variables.train_cpus, variables.worker_cpus)
    try:
        socket.getaddrinfo(job.head, None)
    except OSError as exc:
        raise LaunchError(f"the job's first node name {job.head!r} does not resolve ({exc}); "
                          "the other nodes reach the replay server by it") from exc
    remote = [RemoteNode(name, cpus, indices) for name, cpus, indices
              in zip(job.nodes[1:], job.cpus[1:], per_node[1:]) if indices]
    if remote and shutil.which("srun") is None:
        raise LaunchError(f"SLURM job {job.job_id} spans several nodes but srun is not on PATH "
                          "(inside a container?); launch where the SLURM client tools are, or "
                          "bind them into the container")
    return layout, per_node[0], job.head, remote


# What `prepare` raises for bad input: one `error:` line, exit code 2.
BAD_INPUT = (LaunchError, settings.SettingsError, ParamsError, cpu_layout.LayoutError,
             curriculum.CurriculumError, slurm.SlurmError, sweep.SweepError,
             checks.CheckError)


def prepare(variables_file: str) -> Plan:
    """Validate everything and create (or reopen) the experiment."""
    variables = settings.load_training_variables(variables_file)
    task_id = slurm.array_task_id()
    paths = ExperimentPaths(experiment_dir(variables, task_id))
    resuming = paths.settings.is_file()
    variant = None  # a resumed task keeps the variant it recorded, whatever the sweep says now
    if (variables.sweep is not None and task_id is None) or not resuming:
        variant = choose_variant(variables, task_id)
    if paths.root.exists() and not resuming and any(paths.root.iterdir()):
        raise LaunchError(
            f"experiment directory {paths.root} exists but holds no {C.SETTINGS_FILE}: it is "
            "not an experiment of this tool; choose another SAC_EXP_NAME"
        )
    if resuming and paths.complete.is_file():
        raise AlreadyFinished(paths.root)
    if resuming:  # a new experiment on a full disk fails to be created, naming the error
        checks.check_free_space(paths.root)
    if resuming:  # experiments from before keys existed get one now
        try:
            runtime.read_json(paths.settings)
        except (OSError, ValueError) as exc:
            raise LaunchError(f"{paths.settings} is damaged ({exc}): the experiment cannot "
                              "resume; restore the file from a backup, or start a new "
                              "experiment") from exc
        auth.create_key(paths.replay_key)
    with checks.LaunchTimeout(variables.launch_timeout_s) as timeout:
        timeout.stage(f"importing params file {variables.params}")
        inputs = resumed_inputs(paths, variables) if resuming else new_inputs(variables, variant)
        curriculum.parse_curriculum(inputs.config, f"config file {inputs.config_file}")
        params = load_params(inputs.params_file, inputs.config, inputs.overrides, inputs.source)
        layout, worker_indices, host, remote = plan_placement(variables)
        if host == "localhost":  # one node: nothing but this host needs to reach the server
            checks.check_exposure(variables.allow_public_replay, variables.source)
        if not resuming:
            max_steps, warnings, specs = check_environment(params, inputs.params_file,
                                                           inputs.config_file, timeout)
            capacity = checks.check_capacity(params, max_steps,
                                             f"params file {inputs.params_file}")
            inputs.warnings += warnings
            prior_source = check_prior(params, inputs, specs, timeout)  # agents load it
            init = check_fine_tuning(variables, params, inputs, specs, capacity, timeout)
            record, chosen_in_s = choose_replay_layout(params, specs, capacity,
                                                       inputs.params_file, timeout)
            demos = read_demonstrations(params, inputs, specs, record, timeout)
        else:
            check_resumed_observation(params, paths, timeout)
    if not resuming:
        create_experiment(paths, variables, params, inputs.config, inputs.params_file, {
            "max_episode_steps": max_steps, "replay_capacity": capacity,
        }, inputs.variant_record, init, record, demos, prior_source)
    import portpicker

    return Plan(variables, paths, params, layout, portpicker.pick_unused_port(), resuming,
                worker_indices, host, remote, inputs.variant_record, inputs.notes,
                inputs.warnings,
                describe_replay_layout(paths, None if resuming else chosen_in_s))


@dataclass
class Inputs:
    """What an experiment trains with: its config and params files, the config as
    trained, a sweep variant's overrides and record, and notes for the user."""

    config_file: Path
    params_file: Path
    config: dict
    overrides: dict
    source: str
    variant_record: dict | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_fine_tuning(variables: settings.TrainingVariables, params: TrainParamsBase,
                      inputs: Inputs, specs: tuple, capacity: int,
                      timeout: checks.LaunchTimeout) -> finetune.InitFrom | None:
    """The source a new experiment starts from (SAC_INIT_FROM or params.init_from),
    checked against it; None when it starts from scratch. Adds the line saying what
    is loaded to the launch's notes."""
    source = finetune.requested_source(params, variables.init_from, inputs.params_file)
    if source is None:
        return None
    where = (f"training variables file {variables.source}: SAC_INIT_FROM"
             if variables.init_from is not None else f"params file {inputs.params_file}: "
             "init_from")
    timeout.stage(f"checking the fine-tuning source {source} against TrainParams' agent "
                  f"({inputs.params_file})")
    init = finetune.plan_init(source, params, specs, capacity, where)
    inputs.notes.append(init.describe())
    return init


def check_prior(params: TrainParamsBase, inputs: Inputs, specs: tuple,
                timeout: checks.LaunchTimeout) -> Path | None:
    """The prior policy a new experiment is regularized toward, checked against its env;
    None without one. params.prior_policy then names it by its absolute path: the agent
    built to choose the replay layout loads the prior that was checked."""
    from tfagents_system import prior

    source = prior.requested(params, inputs.params_file)
    if source is None:
        return None
    timeout.stage(f"checking the prior policy {source} ({inputs.params_file})")
    warning = prior.check_policy(source, specs, f"params file {inputs.params_file}: "
                                                "prior_policy")
    inputs.warnings += [warning] if warning else []
    params.prior_policy = str(source)
    inputs.notes.append(f"regularized toward the prior policy {source} (copied into the "
                        f"experiment's {C.PRIOR_POLICY_DIR}/, which its learner loads)")
    return source


def resumed_inputs(paths: ExperimentPaths, variables: settings.TrainingVariables) -> Inputs:
    """A resumed experiment trains with its own copies (and its recorded variant), whatever
    the files named by the training variables say now; differences are noted."""
    inputs = Inputs(paths.config, paths.params, settings.load_config(paths.config),
                    runtime.params_overrides(paths), str(paths.variant),
                    runtime.read_json(paths.variant) if paths.variant.is_file() else None)
    if variables.config.is_file():
        given = settings.load_config(variables.config)
        if inputs.variant_record is not None:
            given = sweep.apply_config_overrides(given, inputs.variant_record["config_overrides"])
        if given != inputs.config:
            inputs.notes.append(f"config file {variables.config} differs from the experiment's "
                                f"copy; resuming with the copy {paths.config}")
    if variables.params.is_file() and not filecmp.cmp(variables.params, paths.params,
                                                      shallow=False):
        inputs.notes.append(f"params file {variables.params} differs from the experiment's "
                            f"copy; resuming with the copy {paths.params}")
    if variables.init_from is not None:
        inputs.notes.append(f"SAC_INIT_FROM={variables.init_from} is ignored: a resumed "
                            "experiment goes on from its own checkpoints")
    return inputs


def new_inputs(variables: settings.TrainingVariables,
               variant: sweep.Variant | None) -> Inputs:
    """A new experiment trains with the given files, a sweep variant's overrides applied
    (every task gets its own seed)."""
    config = settings.load_config(variables.config)
    inputs = Inputs(variables.config, variables.params, config, {},
                    f"sweep file {variables.sweep}")
    if variant is None:
        return inputs
    checks.check_sweep_config_keys(config, variant.config, variables.sweep, variables.config)
    inputs.config = sweep.apply_config_overrides(config, variant.config)
    if variant.seed is None:
        base_seed = load_params(variables.params, inputs.config).seed
        variant = dataclasses.replace(variant, seed=base_seed + variant.task_id)
    inputs.overrides = variant.params_overrides()
    inputs.variant_record = {**variant.as_dict(), "sweep_file": None if variables.sweep is None
                             else str(variables.sweep)}
    return inputs


def copy_prior_data(tmp: Path, init: finetune.InitFrom | None, prior_source: Path | None,
                    demos: tuple | None) -> None:
    """What a new experiment starts from, copied into it so that it is self-contained:
    a fine-tuning checkpoint, a prior policy, the demonstrations' rows."""
    if init is not None:
        finetune.copy_into(init, tmp)
    if prior_source is not None:
        from tfagents_system import prior

        prior.copy_into(prior_source, tmp)
    if demos is not None:
        from tfagents_system.replay import demo_store

        demo_store.store(tmp / C.DEMONSTRATIONS_DIR, *demos)


def create_experiment(paths, variables, params, config, params_file, derived,
                      variant: dict | None = None,
                      init: finetune.InitFrom | None = None,
                      layout_record: dict | None = None, demos: tuple | None = None,
                      prior_source: Path | None = None) -> None:
    """Write the experiment directory under a temporary name, then rename it into place.

    `config` is the config as trained (a sweep variant's overrides applied); `init`, the
    checkpoint a fine-tuned experiment starts from (copied in, and recorded);
    `layout_record`, the experience-item layout chosen at launch (None: the learner
    chooses it at its first start); `demos`, the demonstrations' (rows, meta);
    `prior_source`, the prior policy to copy in.
    """
    try:
        paths.root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{paths.root.name}.", dir=paths.root.parent))
    except OSError as exc:
        raise LaunchError(f"cannot create experiment directory {paths.root}: {exc}; set "
                          "SAC_LOGS_DIR to a directory you can write") from exc
    try:
        if variant is None or not variant["config_overrides"]:
            shutil.copyfile(variables.config, tmp / C.CONFIG_COPY)
        else:
            runtime.write_json_atomic(tmp / C.CONFIG_COPY, config)
        shutil.copyfile(params_file, tmp / C.PARAMS_COPY)
        auth.create_key(tmp / C.REPLAY_KEY_FILE)
        if variant is not None:
            runtime.write_json_atomic(tmp / C.VARIANT_FILE, variant, durable=True)
        copy_prior_data(tmp, init, prior_source, demos)
        if layout_record is not None:
            runtime.write_json_atomic(tmp / C.LAYOUT_FILE, layout_record, durable=True)
        runtime.write_json_atomic(tmp / C.SETTINGS_FILE, durable=True, data={
            "exp_name": paths.root.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source_config": str(variables.config),
            "source_params": str(params_file),
            "total_train_steps": params.total_train_steps,
            "hyperparameters": hyperparameters(params),
            "env_config": params.env_config,
            **derived,
        })
        if paths.root.exists():  # an empty directory left by the user
            paths.root.rmdir()
        os.rename(tmp, paths.root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and paths.settings.is_file():
            raise LaunchError(f"experiment {paths.root} was just created by another launch, "
                              "which runs it; rerun later to resume it, or choose another "
                              "SAC_EXP_NAME") from None
        raise LaunchError(f"cannot create experiment directory {paths.root}: {exc}") from exc


def lock_experiment(paths: ExperimentPaths):
    """Hold an exclusive lock on the experiment for this launch's lifetime."""
    try:
        handle = open(paths.launch_lock, "a+")
    except OSError as exc:
        raise LaunchError(f"cannot open {paths.launch_lock} to run experiment {paths.root}: "
                          f"{exc}; run it as its owner, or fix the directory's permissions"
                          ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another launch"
        raise LaunchError(
            f"experiment {paths.root} is already running (launched by {owner}; its programs "
            "may still be stopping); wait for it or stop it, then rerun"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    return handle


# --- Running the programs ---

@dataclass
class Program:
    """One supervised program: its CPU slice, module arguments and log file."""

    name: str
    cpus: tuple[int, ...]
    args: list[str]
    log_path: Path

    @property
    def group(self) -> str:
        return C.WORKER_PREFIX if C.is_worker(self.name) else self.name

    def thread_env(self) -> dict[str, str]:
        intra, inter = runtime.thread_pools(len(self.cpus))
        return {C.ENV_THREADS: str(len(self.cpus)), "OMP_NUM_THREADS": str(intra),
                "TF_NUM_INTRAOP_THREADS": str(intra), "TF_NUM_INTEROP_THREADS": str(inter)}

    def command(self, python: str) -> list[str]:
        return ["taskset", "-c", cpu_layout.format_cpus(self.cpus), python, "-u", "-m",
                *self.args]


def worker_program(exp: Path, address: str, index: int, num_workers: int,
                   cpus: tuple[int, ...]) -> Program:
    """The supervised program of worker `index`."""
    name = C.worker_name(index)
    return Program(name, cpus,
                   ["tfagents_system.collect_worker", "--exp_dir", str(exp), "--address",
                    address, "--worker_index", str(index), "--num_workers", str(num_workers)],
                   ExperimentPaths(exp).process_log(name))


def build_programs(plan: Plan) -> list[Program]:
    """This node's programs: the replay server, the learner and its workers."""
    exp = str(plan.paths.root)
    layout = plan.layout
    programs = [
        Program(C.REPLAY_SERVER, layout.replay_server,
                ["tfagents_system.replay_server", "--exp_dir", exp, "--port", str(plan.port)],
                plan.paths.process_log(C.REPLAY_SERVER)),
        Program(C.LEARNER, layout.learner,
                ["tfagents_system.learner", "--exp_dir", exp, "--address", plan.address],
                plan.paths.process_log(C.LEARNER)),
    ]
    programs += [worker_program(plan.paths.root, plan.address, index, plan.num_workers, cpus)
                 for index, cpus in zip(plan.worker_indices, layout.workers)]
    return programs


class Progress:
    """The live progress line, fed from the programs' status files."""

    def __init__(self, plan: Plan, interactive: bool):
        self._plan = plan
        self._interactive = interactive
        self._last_print = 0.0
        self._bar = None
        if interactive:
            self._bar = runtime.progress_bar(total=plan.params.total_train_steps, unit="step",
                                             desc="train steps")

    def snapshot(self) -> dict:
        return status.progress(self._plan.paths, self._plan.num_workers)

    def update(self) -> None:
        snap = self.snapshot()
        eval_text = "n/a" if snap["eval_return"] is None else f"{snap['eval_return']:.1f}"
        success = status.success_text(snap)
        success_field = "" if success is None else f"success {success}, "
        fields = (f"env steps {snap['env_steps']}, eval return {eval_text}, {success_field}"
                  f"{snap['grad_steps_per_sec']:.0f} grad steps/s, "
                  f"{snap['env_steps_per_sec']:.0f} env steps/s")
        if self._bar is not None:
            self._bar.n = snap["train_step"]
            self._bar.set_postfix_str(fields, refresh=True)
        elif time.monotonic() - self._last_print > 30:
            self._last_print = time.monotonic()
            print(f"train step {snap['train_step']}/{self._plan.params.total_train_steps}, "
                  f"{fields}", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self.update()
            self._bar.close()


def program_env() -> dict[str, str]:
    """Environment every program and helper process gets on top of ours."""
    return {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                        os.environ.get("PYTHONPATH")]))}


def start_supervisor(exp: Path, programs: list[Program], hang_timeout_s: float,
                     max_restarts: int, node: str | None = None,
                     lock=None) -> subprocess.Popen:
    """Write this launch's supervisord.conf and start supervisord in the foreground.

    supervisord inherits the experiment's `lock` and holds it until its last program
    has stopped: a launcher killed with SIGKILL releases nothing while its programs
    are still winding down, so a relaunch in that window is refused.
    """
    base_env = program_env()
    rdir = ExperimentPaths(exp).run_dir(node)
    for stale in (C.OUTCOME_FILE, C.RESTARTS_FILE):
        (rdir / stale).unlink(missing_ok=True)  # per-launch state of a previous launch
    for stale in rdir.glob(f"*{C.FATAL_SUFFIX}"):
        stale.unlink(missing_ok=True)
    conf = supervision.write_config(exp, programs, sys.executable, REPO_ROOT, base_env,
                                    hang_timeout_s, max_restarts, node)
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=runtime.die_with_parent, cwd=str(REPO_ROOT),
        env=dict(os.environ, **base_env), pass_fds=() if lock is None else (lock.fileno(),))


def stop_process(proc: subprocess.Popen, what: str, timeout_s: float = 90.0) -> None:
    """SIGTERM, then SIGKILL to its process group after `timeout_s`.

    For supervisord this stops the programs in reverse start order (learner
    first); for an srun step SIGTERM is forwarded to the node's agent.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        print(f"{what} did not stop within {timeout_s:.0f}s: killing it", file=sys.stderr)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def stop_supervisor(proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    """Stop supervisord, which stops every program in priority order."""
    stop_process(proc, "supervisord", timeout_s)


@dataclass
class NodeStep:
    """The srun step running one other node's workers under that node's supervisord."""

    node: RemoteNode
    proc: subprocess.Popen
    log_path: Path


def start_node_steps(plan: Plan) -> list[NodeStep]:
    """One srun step per other node of a SLURM job, running its workers."""
    steps = []
    for node in plan.remote:
        command = slurm.step_command(node.name, node.cpus, [
            sys.executable, "-u", "-m", "tfagents_system.node_agent",
            "--exp_dir", str(plan.paths.root), "--address", plan.address,
            "--workers", ",".join(map(str, node.worker_indices)),
            "--num_workers", str(plan.num_workers),
            "--worker_cpus", str(plan.variables.worker_cpus or 1),
            "--hang_timeout", str(plan.variables.hang_timeout_s),
            "--max_restarts", str(plan.variables.max_restarts)])
        log_path = plan.paths.process_log(f"{C.RUN_NODE_PREFIX}{node.name}")
        with open(log_path, "a") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=runtime.die_with_parent, cwd=str(REPO_ROOT),
                                    env=dict(os.environ, **program_env()))
        steps.append(NodeStep(node, proc, log_path))
    return steps


def failed_step(steps: list[NodeStep], paths: ExperimentPaths) -> NodeStep | None:
    """A node step that ended before training was complete (its workers are gone)."""
    for step in steps:
        code = step.proc.poll()
        if code is not None and not (code == 0 and paths.complete.is_file()):
            return step
    return None


def stop_node_steps(steps: list[NodeStep], complete: bool) -> None:
    """After completion the node agents end by themselves once their workers finish;
    otherwise (or if they take too long) they are stopped."""
    deadline = time.monotonic() + (supervision.COMPLETION_GRACE_S / 6 if complete else 60.0)
    while time.monotonic() < deadline and any(s.proc.poll() is None for s in steps):
        time.sleep(0.5)
    for step in steps:
        stop_process(step.proc, f"the srun step on {step.node.name}", 10.0)


def record_launch(plan: Plan, **extra) -> None:
    """One line per launch in launches.jsonl: when, where, how, what."""
    with open(plan.paths.launches, "a") as fh:
        fh.write(json.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
            "host": socket.gethostname(), "port": plan.port, "address": plan.address,
            "resumed": plan.resuming, "cpu_layout": plan.layout.as_dict(),
            "num_workers": plan.num_workers, "workers_here": plan.worker_indices,
            "other_nodes": [dataclasses.asdict(n) for n in plan.remote],
            "slurm_job": os.environ.get("SLURM_JOB_ID"),
            "slurm_restart_count": os.environ.get("SLURM_RESTART_COUNT"),
            "variant": plan.variant, "git_revision": git_revision(),
            "command": sys.argv, "training_variables": plan.variables.as_dict(), **extra,
        }) + "\n")


def run(plan: Plan, lock=None) -> int:
    """Run the programs under supervisord until done, failed or stopped; the exit code.

    `lock` is the experiment's launch lock (see `lock_experiment`)."""
    stop = runtime.StopFlag().install()
    record_launch(plan)
    supervisor = start_supervisor(plan.paths.root, build_programs(plan),
                                  plan.variables.hang_timeout_s, plan.variables.max_restarts,
                                  lock=lock)
    steps: list[NodeStep] = []
    progress = Progress(plan, interactive=sys.stdout.isatty())
    broken = None
    try:
        steps = start_node_steps(plan)
        while supervisor.poll() is None and not stop():
            time.sleep(0.5)
            progress.update()
            broken = failed_step(steps, plan.paths)
            if broken is not None:
                break
    finally:
        progress.close()
        complete = plan.paths.complete.is_file() and not stop()
        if not complete:  # every node winds down at once: a time limit is near
            for step in steps:
                if step.proc.poll() is None:
                    step.proc.send_signal(signal.SIGTERM)
        stop_supervisor(supervisor)
        stop_node_steps(steps, complete)
    outcome_file = plan.paths.run_dir() / C.OUTCOME_FILE
    outcome = runtime.read_json(outcome_file) if outcome_file.is_file() else None
    if stop() and (outcome is None or outcome["result"] != "complete"):
        print(f"stopped by {stop.signal_name}; the experiment is resumable: "
              f"rerun the same command to continue from its last checkpoint")
        return 130 if stop.signal_name == "SIGINT" else 143
    if broken is not None:
        print(f"error: the workers on node {broken.node.name} stopped (srun exit code "
              f"{broken.proc.returncode}) before training was complete; every program was "
              f"stopped. Log {broken.log_path}, last lines:\n"
              f"{supervision.tail(broken.log_path)}", file=sys.stderr)
        print("fix the cause, then resubmit the same job to resume", file=sys.stderr)
        return 1
    if outcome is None:
        print(f"error: supervisord exited unexpectedly (code {supervisor.returncode}); see "
              f"{plan.paths.process_log(C.SUPERVISORD)}", file=sys.stderr)
        return 1
    if outcome["result"] != "complete":
        print(f"error: {outcome['reason']}; every program was stopped. Log "
              f"{outcome['log']}, last lines:\n{outcome['log_tail']}", file=sys.stderr)
        print("fix the cause, then rerun the same command to resume", file=sys.stderr)
        return 1
    return 0


def summary(plan: Plan) -> str:
    """What a finished run leaves behind, for the user's terminal."""
    paths = plan.paths
    snap = Progress(plan, interactive=False).snapshot()
    eval_text = "n/a" if snap["eval_return"] is None else f"{snap['eval_return']:.1f}"
    if snap["eval_success_rate"] is not None:
        eval_text += f", success rate {100 * snap['eval_success_rate']:.0f}%"
    return "\n".join([
        f"training complete: {snap['train_step']} train steps, {snap['env_steps']} env steps, "
        f"final eval return {eval_text}",
        f"  experiment   {paths.root}",
        f"  checkpoints  {paths.checkpoints}",
        f"  policies     {paths.policies / C.FINAL_POLICY_DIR} "
        f"({C.GREEDY_POLICY}, {C.COLLECT_POLICY})",
        f"  tensorboard  tensorboard --logdir {paths.root}",
        f"  process logs {paths.process_logs}",
    ])


def render_results(plan: Plan, env: dict | None = None) -> list[str]:
    """After training: one video of the final greedy policy and the learning curves.

    Returns the lines to print last. A failure here does not fail the run (the
    training itself succeeded); it is reported instead.
    """
    exp = str(plan.paths.root)
    env = env or dict(os.environ, **program_env())
    lines = []
    video_dir = plan.paths.evaluation(C.FINAL_EVALUATION, 0)
    curves = plan.paths.learning_curves
    jobs = [("video", ["tfagents_system.run", "--exp_dir", exp, "--num_episodes", "1",
                       "--output", str(video_dir)]),
            ("learning curves", ["tfagents_system.plot", exp, "--output", str(curves)])]
    for label, args in jobs:
        result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                                env=env, cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL,
                                check=False)
        if result.returncode != 0:
            error = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
            lines.append(f"  {label:<15} not made: {error}")
        elif label == "video":
            summary = runtime.read_json(video_dir / C.EVAL_SUMMARY_FILE)
            lines.append(f"  {label:<15} {summary['videos'][0]} "
                         f"(return {summary['returns'][0]:.1f})")
        else:
            lines.append(f"  {label:<15} {curves}")
    return lines


def main(argv=None) -> int:
    """The launcher: validate, start the programs under supervisord, watch them."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training_variables", help="training variables .sh file")
    args = parser.parse_args(argv)
    try:
        plan = prepare(args.training_variables)
        lock = lock_experiment(plan.paths)
    except AlreadyFinished as done:
        print(f"experiment {done.exp_dir} is already finished "
              f"(see {done.exp_dir / C.COMPLETE_FILE}); nothing to do")
        return 0
    except BAD_INPUT as exc:
        print(f"error: {exc}", file=sys.stderr)
        return C.EXIT_BAD_INPUT
    print(f"{'resuming' if plan.resuming else 'starting'} experiment {plan.paths.root}")
    if plan.variant is not None:
        print(f"task {plan.variant['task_id']}: {plan.variant['label']}")
    for note in plan.notes:
        print(f"note: {note}")
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(plan.replay_layout)
    print(plan.layout.describe(plan.worker_indices))
    for node in plan.remote:
        print(f"  node {node.name} ({node.cpus} CPUs): "
              + ", ".join(C.worker_name(i) for i in node.worker_indices))
    print(f"replay server {plan.address}; process logs in {plan.paths.process_logs}",
          flush=True)
    try:
        code = run(plan, lock)
    finally:
        lock.close()
    if code == 0:
        print(summary(plan), flush=True)
        if plan.variables.final_video:
            print("rendering a video of the final greedy policy and the learning curves...",
                  flush=True)
            print("\n".join(render_results(plan)))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
