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

from tfagents_system import constants as C
from tfagents_system import cpu_layout, curriculum, runtime, settings, status, supervision
from tfagents_system.params import ParamsError, TrainParamsBase, load_params

EXIT_BAD_INPUT = 2
REPO_ROOT = Path(__file__).resolve().parent.parent


class LaunchError(Exception):
    """A launch cannot go ahead; the message is the one line the user sees."""


@dataclass
class Plan:
    variables: settings.TrainingVariables
    paths: runtime.ExperimentPaths
    params: TrainParamsBase
    layout: cpu_layout.CpuLayout
    port: int
    resuming: bool
    notes: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"


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


def check_environment(params: TrainParamsBase, params_file: Path, config_file: Path
                      ) -> int | None:
    """Build a collect and an eval env once; return the collect env's step limit."""
    runtime.import_quietly()
    from tfagents_system import builders, envs

    envs_built = []
    try:
        for kind in (builders.COLLECT, builders.EVAL):
            try:
                env = builders.make_env(params, kind, seed=params.seed)
            except Exception as exc:  # the user's env_ctor: report whatever it raised
                raise LaunchError(
                    f"params file {params_file}: TrainParams.env_ctor raised "
                    f"{type(exc).__name__} building the {kind} env: {exc}"
                ) from exc
            envs_built.append(env)
            curriculum.check_env_supports(curriculum.parse_curriculum(params.env_config),
                                          env, kind, f"config file {config_file}")
        spec = envs_built[0].action_spec()
        import numpy as np

        if not np.issubdtype(spec.dtype, np.floating):
            raise LaunchError(
                f"params file {params_file}: the env's action spec is {spec.dtype}; SAC needs "
                "continuous (float) actions"
            )
        return envs.max_episode_steps(envs_built[0])
    finally:
        for env in envs_built:
            env.close()


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                             capture_output=True, text=True, check=False, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def prepare(variables_file: str) -> Plan | None:
    """Validate everything and create (or reopen) the experiment; None if finished."""
    variables = settings.load_training_variables(variables_file)
    paths = runtime.ExperimentPaths(variables.exp_dir)
    resuming = paths.settings.is_file()
    notes = []
    if paths.root.exists() and not resuming and any(paths.root.iterdir()):
        raise LaunchError(
            f"experiment directory {paths.root} exists but holds no {C.SETTINGS_FILE}: it is "
            "not an experiment of this tool; choose another SAC_EXP_NAME"
        )
    if resuming:
        if paths.complete.is_file():
            return None
        for label, given, saved in (("config", variables.config, paths.config),
                                    ("params", variables.params, paths.params)):
            if given.is_file() and not filecmp.cmp(given, saved, shallow=False):
                notes.append(f"{label} file {given} differs from the experiment's copy; "
                             f"resuming with the copy {saved}")
        config_file, params_file = paths.config, paths.params
    else:
        config_file, params_file = variables.config, variables.params
    config = settings.load_config(config_file)
    curriculum.parse_curriculum(config, f"config file {config_file}")
    params = load_params(params_file, config)
    layout = cpu_layout.plan_layout(
        cpu_layout.available_cpus(), variables.num_workers, variables.reverb_cpus,
        variables.train_cpus, variables.worker_cpus,
    )
    if not resuming:
        max_steps = check_environment(params, params_file, config_file)
        from tfagents_system.builders import replay_capacity

        create_experiment(paths, variables, params, config_file, params_file, {
            "max_episode_steps": max_steps,
            "replay_capacity": replay_capacity(params, max_steps),
        })
    import portpicker

    return Plan(variables, paths, params, layout, portpicker.pick_unused_port(), resuming, notes)


def create_experiment(paths, variables, params, config_file, params_file, derived) -> None:
    """Write the experiment directory under a temporary name, then rename it into place."""
    paths.root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{paths.root.name}.", dir=paths.root.parent))
    try:
        shutil.copyfile(config_file, tmp / C.CONFIG_COPY)
        shutil.copyfile(params_file, tmp / C.PARAMS_COPY)
        runtime.write_json_atomic(tmp / C.SETTINGS_FILE, {
            "exp_name": variables.exp_name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source_config": str(config_file),
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
        raise LaunchError(f"cannot create experiment directory {paths.root}: {exc}") from exc


def lock_experiment(paths: runtime.ExperimentPaths):
    """Hold an exclusive lock on the experiment for this launch's lifetime."""
    handle = open(paths.root / ".launch.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another launch"
        raise LaunchError(
            f"experiment {paths.root} is already running ({owner}); wait for it or stop it"
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
        return "worker" if self.name.startswith("worker_") else self.name

    def thread_env(self) -> dict[str, str]:
        threads = str(len(self.cpus))
        return {C.ENV_THREADS: threads, "OMP_NUM_THREADS": threads,
                "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1"}

    def command(self, python: str) -> list[str]:
        return ["taskset", "-c", cpu_layout.format_cpus(self.cpus), python, "-u", "-m",
                *self.args]


def build_programs(plan: Plan) -> list[Program]:
    exp, logs = str(plan.paths.root), plan.paths.process_logs
    layout = plan.layout
    programs = [
        Program(C.REPLAY_SERVER, layout.replay_server,
                ["tfagents_system.replay_server", "--exp_dir", exp, "--port", str(plan.port)],
                logs / f"{C.REPLAY_SERVER}.log"),
        Program(C.LEARNER, layout.learner,
                ["tfagents_system.learner", "--exp_dir", exp, "--address", plan.address],
                logs / f"{C.LEARNER}.log"),
    ]
    for i, cpus in enumerate(layout.workers):
        programs.append(Program(
            C.worker_name(i), cpus,
            ["tfagents_system.collect_worker", "--exp_dir", exp, "--address", plan.address,
             "--worker_index", str(i), "--num_workers", str(len(layout.workers))],
            logs / f"{C.worker_name(i)}.log"))
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
        return status.progress(self._plan.paths, len(self._plan.layout.workers))

    def update(self) -> None:
        snap = self.snapshot()
        eval_text = "n/a" if snap["eval_return"] is None else f"{snap['eval_return']:.1f}"
        fields = (f"env steps {snap['env_steps']}, eval return {eval_text}, "
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


def start_supervisor(plan: Plan) -> subprocess.Popen:
    """Write this launch's supervisord.conf and start supervisord in the foreground."""
    programs = build_programs(plan)
    base_env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                            os.environ.get("PYTHONPATH")]))}
    rdir = supervision.run_dir(plan.paths.root)
    for stale in (supervision.OUTCOME_FILE, supervision.RESTARTS_FILE):
        (rdir / stale).unlink(missing_ok=True)  # per-launch state of a previous launch
    conf = supervision.write_config(plan.paths.root, programs, sys.executable, REPO_ROOT,
                                    base_env, plan.variables.hang_timeout_s,
                                    plan.variables.max_restarts)
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=runtime.die_with_parent, cwd=str(REPO_ROOT),
        env=dict(os.environ, **base_env))


def stop_supervisor(proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    """SIGTERM: supervisord stops the programs in reverse start order (learner first)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        print(f"supervisord did not stop within {timeout_s:.0f}s: killing it", file=sys.stderr)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run(plan: Plan) -> int:
    """Run the programs under supervisord until done, failed or stopped; the exit code."""
    stop = runtime.StopFlag().install()
    with open(plan.paths.root / C.LAUNCHES_FILE, "a") as fh:
        fh.write(json.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(),
            "host": socket.gethostname(), "port": plan.port, "resumed": plan.resuming,
            "cpu_layout": plan.layout.as_dict(), "git_revision": git_revision(),
            "command": sys.argv, "training_variables": plan.variables.as_dict(),
        }) + "\n")
    supervisor = start_supervisor(plan)
    progress = Progress(plan, interactive=sys.stdout.isatty())
    try:
        while supervisor.poll() is None and not stop():
            time.sleep(0.5)
            progress.update()
    finally:
        progress.close()
        stop_supervisor(supervisor)
    outcome_file = supervision.run_dir(plan.paths.root) / supervision.OUTCOME_FILE
    outcome = runtime.read_json(outcome_file) if outcome_file.is_file() else None
    if stop() and (outcome is None or outcome["result"] != "complete"):
        print(f"stopped by {stop.signal_name}; the experiment is resumable: "
              f"rerun the same command to continue from its last checkpoint")
        return 130 if stop.signal_name == "SIGINT" else 143
    if outcome is None:
        print(f"error: supervisord exited unexpectedly (code {supervisor.returncode}); see "
              f"{plan.paths.process_logs / 'supervisord.log'}", file=sys.stderr)
        return 1
    if outcome["result"] != "complete":
        print(f"error: {outcome['reason']}; every program was stopped. Log "
              f"{outcome['log']}, last lines:\n{outcome['log_tail']}", file=sys.stderr)
        print("fix the cause, then rerun the same command to resume", file=sys.stderr)
        return 1
    return 0


def summary(plan: Plan) -> str:
    paths = plan.paths
    snap = Progress(plan, interactive=False).snapshot()
    eval_text = "n/a" if snap["eval_return"] is None else f"{snap['eval_return']:.1f}"
    return "\n".join([
        f"training complete: {snap['train_step']} train steps, {snap['env_steps']} env steps, "
        f"final eval return {eval_text}",
        f"  experiment   {paths.root}",
        f"  checkpoints  {paths.checkpoints}",
        f"  policies     {paths.policies / 'final'} (greedy_policy, collect_policy)",
        f"  tensorboard  tensorboard --logdir {paths.root}",
        f"  process logs {paths.process_logs}",
    ])


def render_results(plan: Plan, env: dict | None = None) -> list[str]:
    """After training: one video of the final greedy policy and the learning curves.

    Returns the lines to print last. A failure here does not fail the run (the
    training itself succeeded); it is reported instead.
    """
    exp = str(plan.paths.root)
    env = env or dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore",
                      PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                               os.environ.get("PYTHONPATH")])))
    lines = []
    video_dir = plan.paths.root / "evaluations" / "final_seed0"
    curves = plan.paths.root / "learning_curves.png"
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
            summary = runtime.read_json(video_dir / "summary.json")
            lines.append(f"  {label:<15} {summary['videos'][0]} "
                         f"(return {summary['returns'][0]:.1f})")
        else:
            lines.append(f"  {label:<15} {curves}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training_variables", help="training variables .sh file")
    args = parser.parse_args(argv)
    try:
        plan = prepare(args.training_variables)
        if plan is None:
            variables = settings.load_training_variables(args.training_variables)
            print(f"experiment {variables.exp_dir} is already finished "
                  f"(see {variables.exp_dir / C.COMPLETE_FILE}); nothing to do")
            return 0
        lock = lock_experiment(plan.paths)
    except (LaunchError, settings.SettingsError, ParamsError, cpu_layout.LayoutError,
            curriculum.CurriculumError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{'resuming' if plan.resuming else 'starting'} experiment {plan.paths.root}")
    for note in plan.notes:
        print(f"note: {note}")
    print(plan.layout.describe())
    print(f"replay server port {plan.port}; process logs in {plan.paths.process_logs}",
          flush=True)
    try:
        code = run(plan)
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
