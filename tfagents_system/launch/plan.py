"""Planning a launch: everything validated, the experiment created or reopened, and
where each program runs. A new experiment and a resumed one are two paths
(`prepare_new`, `prepare_resumed`); `prepare` picks one.
"""

from __future__ import annotations

import dataclasses
import filecmp
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import portpicker

from tfagents_system import (
    cpu_layout,
    curriculum,
    experiment,
    finetune,
    settings,
    slurm,
    supervisord,
    sweep,
)
from tfagents_system.builder import Builder
from tfagents_system.core import constants as C
from tfagents_system.core.errors import CheckError, ParamsError
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import ExperimentSettings, VariantRecord
from tfagents_system.launch import checks, host
from tfagents_system.launch.errors import AlreadyFinished, LaunchError
from tfagents_system.launch.experiment import (
    NewExperiment,
    check_resumable,
    create_experiment,
    hyperparameters,
    recorded_format,
    reopen,
)
from tfagents_system.launch.host import Exposure
from tfagents_system.params import TrainParamsBase, load_params
from tfagents_system.replay.format import ReplayFormat

# What `prepare` raises for bad input: one `error:` line, exit code 2.
BAD_INPUT = (LaunchError, settings.SettingsError, ParamsError, cpu_layout.LayoutError,
             curriculum.CurriculumError, slurm.SlurmError, sweep.SweepError, CheckError)


@dataclass
class RemoteNode:
    """Another node of a multi-node SLURM job: it runs workers under its own supervisord."""

    name: str
    cpus: int
    worker_indices: list[int]


@dataclass
class Placement:
    """Where this launch's programs run: this node's CPU layout and workers, the
    replay server's host, and the other nodes of a SLURM job."""

    layout: cpu_layout.CpuLayout
    worker_indices: list[int]  # the workers this node runs (all of them on one node)
    host: str = "localhost"  # where the replay server is reached: the head node's name
    remote: list[RemoteNode] = field(default_factory=list)
    exposure: Exposure = Exposure(False)  # who reaches the replay port


@dataclass
class Inputs:
    """What an experiment trains with: its config and params files, the config as
    trained, a sweep variant's overrides and record, and notes for the user."""

    config_file: Path
    params_file: Path
    config: dict
    overrides: dict
    source: str
    variant_record: VariantRecord | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """A validated launch: the experiment, its params, where its programs run, and the
    lines to show."""

    variables: settings.TrainingVariables
    paths: ExperimentPaths
    params: TrainParamsBase
    placement: Placement
    port: int
    resuming: bool
    inputs: Inputs  # what it trains with: its variant, and the notes and warnings to show
    replay_line: str = ""  # the replay format and why
    # A resumed experiment's format derived now (it has no record yet), written once the
    # launch holds the experiment's lock.
    derived_format: ReplayFormat | None = None

    @property
    def layout(self) -> cpu_layout.CpuLayout:
        """This node's CPU layout."""
        return self.placement.layout

    @property
    def worker_indices(self) -> list[int]:
        """The workers this node runs."""
        return self.placement.worker_indices

    @property
    def remote(self) -> list[RemoteNode]:
        """The other nodes of a SLURM job."""
        return self.placement.remote

    @property
    def address(self) -> str:
        """Where the programs reach the replay server."""
        return f"{self.placement.host}:{self.port}"

    @property
    def num_workers(self) -> int:
        """Workers of the whole launch, on every node."""
        return len(self.worker_indices) + sum(len(n.worker_indices) for n in self.remote)


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
    """Where this launch's programs run.

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
        return Placement(layout, list(range(len(layout.workers))))
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
    return Placement(layout, per_node[0], job.head, remote)


def placement_checked(variables: settings.TrainingVariables, supervised: bool) -> Placement:
    """The placement, and who will reach its replay port: on one node, only the run
    itself where it can be (`host.replay_exposure`)."""
    placement = plan_placement(variables)
    placement.exposure = host.replay_exposure(variables, placement.host, supervised)
    return placement


def resumed_inputs(paths: ExperimentPaths, variables: settings.TrainingVariables) -> Inputs:
    """A resumed experiment trains with its own copies (and its recorded variant), whatever
    the files named by the training variables say now; differences are noted."""
    inputs = Inputs(paths.config, paths.params, settings.load_config(paths.config),
                    experiment.params_overrides(paths), str(paths.variant),
                    experiment.variant(paths))
    if variables.config.is_file():
        given = settings.load_config(variables.config)
        if inputs.variant_record is not None:
            given = sweep.apply_config_overrides(given, inputs.variant_record.config_overrides)
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
    sweep.check_sweep_config_keys(config, variant.config, variables.sweep, variables.config)
    inputs.config = sweep.apply_config_overrides(config, variant.config)
    if variant.seed is None:
        base_seed = load_params(variables.params, inputs.config).seed
        variant = dataclasses.replace(variant, seed=base_seed + variant.task_id)
    inputs.overrides = variant.params_overrides()
    inputs.variant_record = variant.record(variables.sweep)
    return inputs


def prepare(variables_file: str, supervised: bool = False) -> Plan:
    """Validate everything and create (or reopen) the experiment; `supervised`: for a
    launch whose programs are processes (they can have a private network namespace),
    not threads of this process (serial mode)."""
    variables = settings.load_training_variables(variables_file)
    task_id = slurm.array_task_id()
    paths = ExperimentPaths(experiment_dir(variables, task_id))
    if supervised:
        supervisord.socket_path(paths.root)  # its private directory made, or refused, now
    if paths.settings.is_file():
        return prepare_resumed(variables, paths, task_id, supervised)
    return prepare_new(variables, paths, task_id, supervised)


def _load(inputs: Inputs, recorded: dict | None = None) -> TrainParamsBase:
    curriculum.parse_curriculum(inputs.config, f"config file {inputs.config_file}")
    return load_params(inputs.params_file, inputs.config, inputs.overrides, inputs.source,
                       recorded)


def prepare_new(variables: settings.TrainingVariables, paths: ExperimentPaths,
                task_id: int | None, supervised: bool = False) -> Plan:
    """A new experiment: every check, then the experiment directory written whole."""
    variant = choose_variant(variables, task_id)
    if paths.root.exists() and any(paths.root.iterdir()):
        raise LaunchError(
            f"experiment directory {paths.root} exists but holds no {C.SETTINGS_FILE}: it is "
            "not an experiment of this tool; choose another SAC_EXP_NAME")
    with checks.LaunchTimeout(variables.launch_timeout_s) as timeout:
        timeout.stage(f"importing params file {variables.params}")
        inputs = new_inputs(variables, variant)
        params = _load(inputs)
        placement = placement_checked(variables, supervised)
        new, seconds = _new_experiment(variables, paths, params, inputs, timeout)
    create_experiment(new)
    line = (f"experience items: {new.replay_format.layout} ({new.replay_format.reason}; "
            f"chosen now; building the agent took {seconds:.1f} s)")
    return Plan(variables, paths, params, placement, portpicker.pick_unused_port(), False,
                inputs, line)


def _new_experiment(variables: settings.TrainingVariables, paths: ExperimentPaths,
                    params: TrainParamsBase, inputs: Inputs, timeout: checks.LaunchTimeout
                    ) -> tuple[NewExperiment, float]:
    """(what the new experiment is created with, seconds building its agent took): its
    env checked, its agent built once, the replay format chosen for it, and what it
    starts from (prior, fine-tuning source, demonstrations) checked against it."""
    builder = Builder(params)
    where = f"params file {inputs.params_file}"
    max_steps, warnings, specs = checks.check_environment(builder, inputs.params_file,
                                                          inputs.config_file, timeout)
    capacity = checks.check_capacity(params, max_steps, where)
    prior_source, prior_warnings = checks.check_prior(params, inputs.params_file, specs, timeout)
    inputs.warnings += warnings + prior_warnings
    if prior_source is not None:
        inputs.notes.append(f"regularized toward the prior policy {prior_source} (copied "
                            f"into the experiment's {C.PRIOR_POLICY_DIR}/, which its learner "
                            "loads)")
    start = time.monotonic()
    agent = checks.build_agent(builder, specs, inputs.params_file, timeout)
    replay_format = checks.choose_replay_format(builder, agent, capacity, inputs.params_file)
    seconds = time.monotonic() - start
    init = checks.check_fine_tuning(params, *_init_source(variables, params, inputs), specs,
                                    agent, replay_format, capacity, timeout)
    if init is not None:
        inputs.notes.append(init.describe())
    demos = checks.read_demonstrations(params, inputs.params_file, inputs.config_file,
                                       replay_format, timeout)
    if demos is not None:
        inputs.notes.append(checks.demonstrations_note(params, demos[0], demos[1].files))
    record = ExperimentSettings(
        paths.root.name, time.strftime("%Y-%m-%dT%H:%M:%S%z"), str(variables.config),
        str(inputs.params_file), params.total_train_steps, hyperparameters(params),
        params.env_config, max_steps, capacity)
    return NewExperiment(paths, variables.config, inputs.params_file, inputs.config, record,
                         replay_format, inputs.variant_record, init, prior_source,
                         demos), seconds


def _init_source(variables: settings.TrainingVariables, params: TrainParamsBase,
                 inputs: Inputs) -> tuple[Path | None, str]:
    """(the fine-tuning source: SAC_INIT_FROM or params.init_from, where it was named)."""
    source = finetune.requested_source(params, variables.init_from, inputs.params_file)
    where = (f"training variables file {variables.source}: SAC_INIT_FROM"
             if variables.init_from is not None else f"params file {inputs.params_file}: "
             "init_from")
    return source, where


def prepare_resumed(variables: settings.TrainingVariables, paths: ExperimentPaths,
                    task_id: int | None, supervised: bool = False) -> Plan:
    """A resumed experiment: refused if someone else could have changed what its programs
    trust; else it trains with its own copies and records, checked against its env; an
    experiment from before replay formats were recorded gets its record."""
    if variables.sweep is not None and task_id is None:
        choose_variant(variables, task_id)  # the one line saying a task id is needed
    trust_notes = check_resumable(paths)  # before anything in it is read
    if paths.complete.is_file():
        raise AlreadyFinished(paths.root)
    host.check_free_space(paths.root)
    recorded = reopen(paths)
    with checks.LaunchTimeout(variables.launch_timeout_s) as timeout:
        timeout.stage(f"importing params file {variables.params}")
        inputs = resumed_inputs(paths, variables)
        inputs.notes = trust_notes + inputs.notes
        params = _load(inputs, recorded.hyperparameters)
        placement = placement_checked(variables, supervised)
        builder = Builder(params, paths, recorded)

        def choose() -> ReplayFormat:  # for an experiment that never trained
            specs = checks.collect_env_specs(builder, paths.params, timeout)
            agent = checks.build_agent(builder, specs, paths.params, timeout)
            return checks.choose_replay_format(builder, agent, recorded.replay_capacity,
                                               paths.params)

        replay_format, derived = recorded_format(paths, choose)
        checks.check_resumed(builder, replay_format, timeout)
    line = (f"experience items: {replay_format.layout} ({replay_format.reason}; "
            f"{'derived now' if derived else 'recorded'} in {paths.layout})")
    return Plan(variables, paths, params, placement, portpicker.pick_unused_port(), True,
                inputs, line, replay_format if derived else None)
