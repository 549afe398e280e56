"""Serial mode: the replay server, the learner and the workers in one process, one
thread each, for debugging with breakpoints.

    python -m tfagents_system.serial TRAINING_VARIABLES.sh [--workers N]

The same training variables, params, config and experiment directory as a real
launch (`./run_script.sh`): the launch is validated and the experiment created or
resumed exactly as there, then the real program functions (`run_replay_server`,
`run_learner`, `run_worker`) run in threads of this process instead of supervised
processes. A finished experiment says so; Ctrl-C (or SIGTERM) stops every thread
cleanly, with the learner's and the replay server's checkpoints, and the same
command resumes. Nothing is supervised (no restarts, no hang detection) and the
programs log to this terminal; their CPU placement is the process's own.
TensorFlow is seeded once for the process, so the threads' random streams
interleave: runs are not reproducible from the seed as launched runs are.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable

from tfagents_system import process
from tfagents_system.builder import Builder
from tfagents_system.collect_worker import run_worker
from tfagents_system.core import constants as C
from tfagents_system.core.errors import StopRequested
from tfagents_system.core.records import ExperimentSettings
from tfagents_system.launch.console import prepared, show_plan
from tfagents_system.launch.experiment import record_launch
from tfagents_system.launch.plan import Plan
from tfagents_system.learner import run_learner
from tfagents_system.replay_server import run_replay_server

# Seconds the replay server keeps serving after a stop request while programs wind down.
STOP_GRACE_S = 30.0


class SerialRun:
    """The programs of one experiment as threads sharing one stop flag."""

    def __init__(self, plan: Plan, num_workers: int, stop: process.StopFlag):
        self.plan = plan
        self.num_workers = num_workers
        self.stop = stop
        self.errors: list[tuple[str, BaseException]] = []
        self._programs_done = threading.Event()
        self._stopped_at: float | None = None

    def _server_should_stop(self) -> bool:
        """The server serves until the programs are done (as supervisord stops it last),
        or for at most STOP_GRACE_S after a stop request: a program still waiting on it
        then (a writer blocked on a full queue) is released by its going."""
        if self._programs_done.is_set():
            return True
        return (self._stopped_at is not None
                and time.monotonic() - self._stopped_at > STOP_GRACE_S)

    def _thread(self, name: str, body: Callable[[logging.Logger], None]) -> threading.Thread:
        """A program's thread: its own logger; an error stops every program."""
        log = logging.getLogger(name)

        def target() -> None:
            try:
                body(log)
            except StopRequested:
                log.info("stopped")
            except BaseException as exc:  # a program failed: the others stop too
                log.exception("failed: %s", exc)
                self.errors.append((name, exc))
                self.stop.set()

        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def _builder(self) -> Builder:
        """Each program builds its own parts, as its process would."""
        plan = self.plan
        return Builder(plan.params, plan.paths, ExperimentSettings.read(plan.paths.settings))

    def run(self) -> int:
        """Run until training completes or a stop; the exit code (as run_script.sh's)."""
        plan, stop = self.plan, self.stop
        address = f"localhost:{plan.port}"
        server = self._thread(C.REPLAY_SERVER, lambda log: run_replay_server(
            self._builder(), plan.port, self._server_should_stop, log))
        programs = [self._thread(C.LEARNER, lambda log: run_learner(
            self._builder(), address, stop, log))]
        programs += [self._thread(C.worker_name(i), lambda log, i=i: run_worker(
            self._builder(), address, i, self.num_workers, stop, log))
            for i in range(self.num_workers)]
        for thread in programs:
            while thread.is_alive():  # join in slices: signals reach the main thread
                thread.join(0.5)
                if stop() and self._stopped_at is None:
                    self._stopped_at = time.monotonic()
        self._programs_done.set()  # the server checkpoints its tables and stops
        while server.is_alive():
            server.join(0.5)
        return self.exit_code()

    def exit_code(self) -> int:
        if self.errors:
            name, exc = self.errors[0]
            print(f"error: {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if self.plan.paths.complete.is_file():
            return 0
        print(f"stopped by {self.stop.signal_name or 'request'}; the experiment is "
              "resumable: rerun the same command to continue from its last checkpoint")
        return 130 if self.stop.signal_name in (None, "SIGINT") else 143


def run_serial(variables_file: str, num_workers: int = 1,
               stop: process.StopFlag | None = None) -> int:
    """Validate and prepare the launch as run_script.sh does, then run the programs as
    threads; the exit code. `stop` (default: SIGINT/SIGTERM) ends the run early."""
    launch = prepared(variables_file)
    if isinstance(launch, int):
        return launch
    plan, lock = launch
    try:
        show_plan(plan, f" in serial mode: replay server, learner and {num_workers} worker(s) "
                        "as threads")
        record_launch(plan, mode="serial", num_workers=num_workers,
                      workers_here=list(range(num_workers)))
        process.seed_tensorflow(plan.params.seed)  # once: the threads share TensorFlow
        return SerialRun(plan, num_workers, stop or process.StopFlag().install()).run()
    finally:
        lock.close()


def main(argv=None) -> int:
    """The serial-mode command."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training_variables", help="training variables .sh file")
    parser.add_argument("--workers", type=int, default=1, help="worker threads (default 1)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers {args.workers}: must be at least 1", file=sys.stderr)
        return C.EXIT_BAD_INPUT
    process.setup_logging("serial", by_logger=True)
    process.configure_threads()
    return run_serial(args.training_variables, args.workers)


if __name__ == "__main__":
    raise SystemExit(main())
