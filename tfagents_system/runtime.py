"""What every program shares: its start-up (threads, logging, stop signals,
heartbeat), atomic status files and small timing helpers."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfagents_system import constants as C
from tfagents_system.params import TrainParamsBase
from tfagents_system.paths import ExperimentPaths


class StopRequested(Exception):
    """Raised inside a blocking loop when the program was asked to stop."""


class FatalError(RuntimeError):
    """An error a restart from the last checkpoint would only repeat (non-finite
    training): the program reports it (`report_fatal`) and the whole run stops."""


def report_fatal(paths: ExperimentPaths, program: str, exc: Exception) -> None:
    """Record `exc` for the monitor, which then stops the run instead of restarting."""
    write_json_atomic(paths.fatal(program), {"reason": str(exc), "time": time.time()})


def write_json_atomic(path: Path, data: Any, durable: bool = False) -> None:
    """Write JSON to a temporary name, then rename: readers never see half a file.
    `durable`: also flush it to disk (file and directory) before returning, for files
    whose loss after a power cut would damage the experiment (settings, layout,
    completion, the memory's row size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk: leave nothing half-written behind
        raise
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


# A disk with less free space than this is full: the writes of a run fail on it.
DISK_FULL_BYTES = 1 << 20


def _nearest_existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (an experiment not created yet)."""
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding `path` (or its nearest existing parent)."""
    path = _nearest_existing(path)
    while not os.path.ismount(path):
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer can still use on the file system holding `path`."""
    return shutil.disk_usage(_nearest_existing(path)).free


def disk_full(path: Path) -> str | None:
    """A line saying the disk holding `path` is full, or None."""
    free = free_bytes(path)
    if free >= DISK_FULL_BYTES:
        return None
    return (f"the disk holding {path} is full ({free // 1024} KiB free on "
            f"{mount_point(path)}): free space there, then rerun the same command to resume")


def read_json_or_none(path: Path, log=None) -> Any:
    """A JSON file's content; None (and a warning) if it is missing, empty or torn, as a
    status file can be after a power cut: the caller starts afresh."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if log is not None:
            log.warning("%s is unreadable (%s); starting without it", path, exc)
        return None


def read_json(path: Path) -> Any:
    """The JSON in a file."""
    return json.loads(Path(path).read_text())


def load_experiment(exp_dir: str | Path):
    """(paths, params, settings) of a prepared experiment directory."""
    from tfagents_system.params import load_params

    paths = ExperimentPaths(Path(exp_dir))
    settings = read_json(paths.settings)
    params = load_params(paths.params, read_json(paths.config), params_overrides(paths),
                         str(paths.variant))
    return paths, params, settings


def params_overrides(paths: ExperimentPaths) -> dict:
    """The hyperparameters a sweep task overrides ({} for a plain experiment)."""
    return read_json(paths.variant)["params_overrides"] if paths.variant.is_file() else {}


def import_quietly() -> None:
    """Import TF, TF-Agents, gym and pybullet with their banners and warnings muted.

    For the command-line tools, whose output is read by people; the programs
    keep everything in their logs.
    """
    import contextlib
    import io
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        import tf_agents.environments  # noqa: F401

        from tfagents_system import envs

        envs._import_gym()


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


def progress_bar(**kwargs):
    """A tqdm bar sized from the terminal, falling back to 120x24 where the
    terminal reports no size (tqdm would hide the bar on a 0-row pty)."""

    from tqdm import tqdm

    size = shutil.get_terminal_size((120, 24))
    return tqdm(ncols=size.columns, nrows=size.lines, **kwargs)


class RateMeter:
    """Events per second since the previous call."""

    def __init__(self, start: int = 0):
        self._last_count = start
        self._last_time = time.monotonic()

    def rate(self, count: int) -> float:
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-9)
        value = (count - self._last_count) / elapsed
        self._last_count, self._last_time = count, now
        return value


@dataclass
class Program:
    """What a program's `main` hands to its run function."""

    log: logging.Logger
    stop: StopFlag
    paths: ExperimentPaths
    params: TrainParamsBase
    settings: dict
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
    paths, params, settings = load_experiment(exp_dir)
    return Program(log, stop, paths, params, settings, Heartbeat(paths.heartbeat(name)))
