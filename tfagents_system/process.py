"""A program's process: its start-up under supervisord (die with the parent, log as
its name, stop on SIGTERM/SIGINT, TensorFlow's threads matched to its CPU slice, the
experiment loaded, the heartbeat started), and reporting an error a restart cannot fix.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.core.errors import FatalError, StopRequested
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import ExperimentSettings, FatalReport
from tfagents_system.experiment import load_experiment
from tfagents_system.params import TrainParamsBase


def report_fatal(paths: ExperimentPaths, program: str, exc: Exception) -> None:
    """Record `exc` for the monitor, which then stops the run instead of restarting."""
    FatalReport(str(exc)).write(paths.fatal(program))


def freeze_heap() -> None:
    """Put every object alive now (a program's setup: TensorFlow, policies, envs) out
    of the garbage collector's sight. Its full collections otherwise rescan them all
    while the program runs; in a worker that cost about 2% of the collect rate."""
    import gc

    gc.collect()
    gc.freeze()


def thread_pools(cpus: int) -> tuple[int, int]:
    """(intra-op, inter-op) TensorFlow threads for a process on `cpus` CPUs.

    Two inter-op threads run independent ops at once (SAC's two critics, the
    actor), each op on half of the CPUs: on 2 CPUs a 256x256 SAC step ran at
    331 grad steps/s this way, against 275 with 2 intra-op threads per op and
    205 on one CPU (HalfCheetahBullet specs, batch 256, 2-core machine).
    """
    cpus = max(1, int(cpus))
    if cpus == 1:
        return 1, 1
    return max(1, cpus // 2), 2


def seed_tensorflow(seed: int) -> None:
    """Seed TensorFlow's global generator: once per process, before any op (it also
    clears TensorFlow's kernel caches, so never while other threads run ops)."""
    import tensorflow as tf

    tf.random.set_seed(seed)


def configure_threads() -> int:
    """Match TF's thread pools to the CPU slice the launcher gave this process."""
    threads = int(os.environ.get(C.ENV_THREADS, "0")) or len(os.sched_getaffinity(0))
    import tensorflow as tf

    intra, inter = thread_pools(threads)
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    return threads


def setup_logging(name: str, by_logger: bool = False) -> logging.Logger:
    """The program's logger `name`; every line says which program wrote it: `name`
    (libraries' lines too), or with `by_logger` the logger's own name (serial mode: one
    logger per program thread)."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {'%(name)s' if by_logger else name} %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(name)


def log_placement(log: logging.Logger, threads: int) -> None:
    """Log the CPUs this process is pinned to and its TensorFlow thread pools."""
    cpus = sorted(os.sched_getaffinity(0))
    intra, inter = thread_pools(threads)
    log.info("pid %d pinned to CPUs %s, %d TF intra-op threads, %d inter-op", os.getpid(),
             cpus, intra, inter)


class StopFlag:
    """Set by SIGTERM or SIGINT; loops poll it and wind down cleanly."""

    def __init__(self):
        self._event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame) -> None:
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


class Heartbeat:
    """Touches status/<program>.heartbeat when the program makes progress.

    The supervisor's monitor restarts a program whose heartbeat is older than
    the hang timeout. Call `beat()` from the code that does the work (never
    from a background thread, which would beat on through a hang).
    """

    def __init__(self, path: Path, min_interval_s: float = 1.0):
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._min_interval = min_interval_s
        self._last = 0.0
        self.beat()

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._min_interval:
            self._last = now
            self._path.touch()


def die_with_parent() -> None:
    """Get SIGTERM when the parent (supervisord) dies, even by SIGKILL: no orphans.

    If the parent died before this ran, the process is already an orphan and
    stops itself the same way.
    """
    import ctypes

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.environ.get("SUPERVISOR_ENABLED"):
        try:
            parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
        except OSError:
            parent = b""
        if b"supervisord" not in parent:
            os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Program:
    """What a program's `main` hands to its run function."""

    log: logging.Logger
    stop: StopFlag
    paths: ExperimentPaths
    params: TrainParamsBase
    settings: ExperimentSettings
    heartbeat: Heartbeat


def start_program(name: str, exp_dir: str | Path) -> Program:
    """A supervised program's start-up: die with supervisord, log as `name`, stop on
    SIGTERM/SIGINT, match TensorFlow's threads to the CPU slice, load the experiment
    and start the heartbeat."""
    die_with_parent()
    log = setup_logging(name)
    stop = StopFlag().install()
    threads = configure_threads()
    log_placement(log, threads)
    experiment = load_experiment(exp_dir)
    return Program(log, stop, experiment.paths, experiment.params, experiment.settings,
                   Heartbeat(experiment.paths.heartbeat(name)))


def run_program(name: str, exp_dir: str | Path, body: Callable[[Program], None],
                seed: Callable[[TrainParamsBase], int] | None = None) -> int:
    """A supervised program's whole life: its start-up, TensorFlow seeded (`seed` of
    its params, if given), `body(program)`; the exit code. A stop request is a clean
    exit (0); an error a restart cannot fix is reported to the monitor, which then
    stops the run (1)."""
    program = start_program(name, exp_dir)
    if seed is not None:
        seed_tensorflow(seed(program.params))
    try:
        body(program)
    except StopRequested:
        program.log.info("stopped (%s)", program.stop.signal_name)
    except FatalError as exc:
        program.log.error("%s", exc)
        report_fatal(program.paths, name, exc)
        return 1
    return 0
