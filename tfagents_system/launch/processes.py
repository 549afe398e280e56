"""Running a launch's programs: each one supervised by supervisord (on one node in a
private network namespace where the host allows it), pinned with `taskset` to its CPU
slice with matching thread counts, logging to its own file; the workers of another node
of a SLURM job through an `srun` step there; the loop that watches them until training
completes, fails or is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tfagents_system import cpu_layout, slurm, supervisord
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import Outcome
from tfagents_system.launch import host
from tfagents_system.launch.experiment import REPO_ROOT, record_launch
from tfagents_system.launch.plan import Plan, RemoteNode
from tfagents_system.process import StopFlag, die_with_parent, thread_pools


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
        """The program's thread counts (its CPU slice), and for every program but the
        learner no GPU: TensorFlow places the learner's networks on a GPU it sees,
        while the workers' small policy calls and the replay server stay on the CPU
        (and take no GPU memory)."""
        intra, inter = thread_pools(len(self.cpus))
        env = {C.ENV_THREADS: str(len(self.cpus)), "OMP_NUM_THREADS": str(intra),
               "TF_NUM_INTRAOP_THREADS": str(intra), "TF_NUM_INTEROP_THREADS": str(inter)}
        if self.name != C.LEARNER:
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

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


def program_env() -> dict[str, str]:
    """Environment every program and helper process gets on top of ours."""
    return {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                        os.environ.get("PYTHONPATH")]))}


def supervisor_start(private_network: bool):
    """What supervisord's process runs before it starts (its `preexec_fn`): into a private
    network namespace, which its programs inherit (`host.private_network_entry`), then
    die with the launcher (set last: entering a user namespace may clear it)."""
    if not private_network:
        return die_with_parent
    enter = host.private_network_entry()

    def start() -> None:
        enter()
        die_with_parent()

    return start


def start_supervisor(exp: Path, programs: list[Program], hang_timeout_s: float,
                     max_restarts: int, node: str | None = None,
                     lock=None, private_network: bool = False) -> subprocess.Popen:
    """Write this launch's supervisord.conf and start supervisord in the foreground,
    with `private_network` in a network namespace of its own (only its programs reach
    their ports; its unix socket, a path, still reaches it).

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
    conf = supervisord.write_config(exp, programs, sys.executable, REPO_ROOT, base_env,
                                    hang_timeout_s, max_restarts, node)
    return subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        start_new_session=True, preexec_fn=supervisor_start(private_network),
        cwd=str(REPO_ROOT), env=dict(os.environ, **base_env),
        pass_fds=() if lock is None else (lock.fileno(),))


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
                                    preexec_fn=die_with_parent, cwd=str(REPO_ROOT),
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
    deadline = time.monotonic() + (supervisord.COMPLETION_GRACE_S / 6 if complete else 60.0)
    while time.monotonic() < deadline and any(s.proc.poll() is None for s in steps):
        time.sleep(0.5)
    for step in steps:
        stop_process(step.proc, f"the srun step on {step.node.name}", 10.0)


def run(plan: Plan, progress, lock=None) -> int:
    """Run the programs under supervisord until done, failed or stopped; the exit code.
    `progress` shows their progress (`console.Progress`); `lock` is the experiment's
    launch lock (`experiment.lock_experiment`)."""
    stop = StopFlag().install()
    record_launch(plan)
    supervisor = start_supervisor(plan.paths.root, build_programs(plan),
                                  plan.variables.hang_timeout_s, plan.variables.max_restarts,
                                  lock=lock,
                                  private_network=plan.placement.exposure.private)
    steps: list[NodeStep] = []
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
    outcome = Outcome.read(outcome_file) if outcome_file.is_file() else None
    return _exit_code(plan, stop, outcome, broken, supervisor)


def _exit_code(plan: Plan, stop: StopFlag, outcome: Outcome | None,
               broken: NodeStep | None, supervisor: subprocess.Popen) -> int:
    """The launch's exit code, with the lines saying how the run ended."""
    if stop() and (outcome is None or not outcome.complete):
        print(f"stopped by {stop.signal_name}; the experiment is resumable: "
              f"rerun the same command to continue from its last checkpoint")
        return 130 if stop.signal_name == "SIGINT" else 143
    if broken is not None:
        print(f"error: the workers on node {broken.node.name} stopped (srun exit code "
              f"{broken.proc.returncode}) before training was complete; every program was "
              f"stopped. Log {broken.log_path}, last lines:\n"
              f"{supervisord.tail(broken.log_path)}", file=sys.stderr)
        print("fix the cause, then resubmit the same job to resume", file=sys.stderr)
        return 1
    if outcome is None:
        print(f"error: supervisord exited unexpectedly (code {supervisor.returncode}); see "
              f"{plan.paths.process_log(C.SUPERVISORD)}", file=sys.stderr)
        return 1
    if not outcome.complete:
        print(f"error: {outcome.reason}; every program was stopped. Log "
              f"{outcome.log}, last lines:\n{outcome.log_tail}", file=sys.stderr)
        print("fix the cause, then rerun the same command to resume", file=sys.stderr)
        return 1
    return 0


