"""Run one node's share of the workers of a multi-node SLURM job, supervised.

The launcher on the job's first node starts this on every other node as an
`srun` step (see `launch.start_node_steps`); users do not run it themselves.
It runs its workers under this node's own supervisord, with the same crash,
hang and crash-loop handling as the first node, pinned to the CPUs the step
was given, and ends when training is complete, when the step is signalled
(SIGTERM: the workers stop cleanly) or when its workers cannot be kept alive.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

from tfagents_system import cpu_layout, process
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import Outcome
from tfagents_system.launch.processes import start_supervisor, stop_supervisor, worker_program


def node_name() -> str:
    """This node's name, as SLURM knows it."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]


def run_node(exp: Path, address: str, indices: list[int], num_workers: int, worker_cpus: int,
             hang_timeout_s: float, max_restarts: int, should_stop) -> int:
    """Run this node's workers under their own supervisord until the head stops."""
    node = node_name()
    slices = cpu_layout.worker_slices(cpu_layout.available_cpus(), len(indices), worker_cpus)
    programs = [worker_program(exp, address, index, num_workers, cpus)
                for index, cpus in zip(indices, slices)]
    print(f"node {node} (host {socket.gethostname()}, pid {os.getpid()}): "
          f"{len(programs)} worker(s), replay server {address}", flush=True)
    for program in programs:
        print(f"node {node}: {program.name} on CPUs {cpu_layout.format_cpus(program.cpus)}",
              flush=True)
    supervisor = start_supervisor(exp, programs, hang_timeout_s, max_restarts, node)
    try:
        while supervisor.poll() is None and not should_stop():
            time.sleep(0.5)
    finally:
        stop_supervisor(supervisor)
    outcome_file = ExperimentPaths(exp).run_dir(node) / C.OUTCOME_FILE
    outcome = Outcome.read(outcome_file) if outcome_file.is_file() else None
    if outcome is not None and outcome.complete:
        print(f"node {node}: {outcome.reason}", flush=True)
        return 0
    if should_stop():
        print(f"node {node}: stopped by {should_stop.signal_name}", flush=True)
        return 143
    reason = outcome.reason if outcome else "supervisord exited unexpectedly"
    print(f"node {node}: error: {reason}", flush=True)
    if outcome and outcome.log_tail:
        print(f"{outcome.log}, last lines:\n{outcome.log_tail}", flush=True)
    return 1


def main(argv=None) -> int:
    """The agent of a workers-only node of a multi-node SLURM job."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--address", required=True, help="replay server, host:port")
    parser.add_argument("--workers", required=True, help="worker indices, e.g. 1,3")
    parser.add_argument("--num_workers", type=int, required=True, help="workers in the job")
    parser.add_argument("--worker_cpus", type=int, default=1)
    parser.add_argument("--hang_timeout", type=float, required=True)
    parser.add_argument("--max_restarts", type=int, required=True)
    args = parser.parse_args(argv)
    if not ExperimentPaths(args.exp_dir).settings.is_file():
        print(f"error: {args.exp_dir}: not an experiment directory; is it on a filesystem "
              "every node of the job shares?", file=sys.stderr)
        return 2
    stop = process.StopFlag().install()
    indices = [int(i) for i in args.workers.split(",")]
    return run_node(args.exp_dir, args.address, indices, args.num_workers, args.worker_cpus,
                    args.hang_timeout, args.max_restarts, stop)


if __name__ == "__main__":
    raise SystemExit(main())
