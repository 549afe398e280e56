"""A real local SLURM cluster (Debian's Slurm 22.05 + munge) for tests.

Follows shared/notes/slurm-on-one-machine.md. Needs root and Linux. The daemons are started with
their own pid files in a work directory and stopped by those pids, never by name. Only one
cluster may run at a time on a machine: they share munged and the n1/n2 lines of /etc/hosts, so
a process-wide guard and a file lock (across processes) enforce it.

    cluster = LocalCluster(tmp_path, two_nodes=True)
    cluster.start()
    try:
        job = cluster.sbatch(["-N2", "job.sh"])
        states = cluster.wait_done(job, timeout=60)
    finally:
        cluster.stop()
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import portpicker

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
# Binaries that must exist; each comes from one of PACKAGES.
BINARIES = ["slurmctld", "slurmd", "sbatch", "munged"]

MUNGE_DIR = Path("/run/munge")
MUNGE_SOCKET = MUNGE_DIR / "munge.socket.2"
MUNGE_PID_FILE = MUNGE_DIR / "munged.pid"
HOSTS_FILE = Path("/etc/hosts")
# Marks the /etc/hosts lines a cluster added, so stop() (or the next start after a crash)
# removes exactly those.
HOSTS_MARKER = "# added by tests/slurm LocalCluster"
TWO_NODES = {"n1": "127.0.1.1", "n2": "127.0.1.2"}
LOCK_FILE = Path(tempfile.gettempdir()) / "tests-slurm-localcluster.lock"

# Job states (as `scontrol show job` prints them) after which the job can still run or is
# still cleaning up; anything else is final.
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "COMPLETING",
        "CONFIGURING",
        "RESIZING",
        "SUSPENDED",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
        "RESV_DEL_HOLD",
    }
)

_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)
_guard = threading.Lock()
_active: LocalCluster | None = None


def _which(name: str) -> str | None:
    """Like shutil.which, but also looks in the sbin folders a non-login PATH may lack."""
    return shutil.which(name, path=_SEARCH_PATH)


def _missing_binaries() -> list[str]:
    return [name for name in BINARIES if _which(name) is None]


def unavailable_reason() -> str | None:
    """Why a local cluster cannot run here, or None if it can (once ensure_installed() ran)."""
    if not sys.platform.startswith("linux"):
        return f"a local SLURM cluster needs Linux, not {sys.platform}"
    if os.geteuid() != 0:
        return "a local SLURM cluster needs root (daemons, /run/munge, /etc/hosts)"
    for tool in ("unshare", "taskset", "runuser"):
        if _which(tool) is None:
            return f"{tool} (util-linux) is missing"
    missing = _missing_binaries()
    if missing and _which("apt-get") is None:
        return f"{', '.join(missing)} missing and no apt-get to install {' '.join(PACKAGES)}"
    return None


def ensure_installed() -> None:
    """Install the Debian packages if a binary is missing (CI installs them beforehand)."""
    if not _missing_binaries():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    still = _missing_binaries()
    if still:
        raise RuntimeError(f"still missing after installing {PACKAGES}: {still}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"({exc})"
    return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    """True while pid exists and is not a zombie (daemons are reparented; no one may reap them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _environ_has(pid: int, entry: bytes) -> bool:
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def _terminate(pids: Sequence[int], grace: float) -> None:
    """SIGTERM the pids, wait up to grace seconds, then SIGKILL those still alive."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        live = [pid for pid in pids if _alive(pid)]
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while any(_alive(pid) for pid in live) and time.monotonic() < deadline:
            time.sleep(0.1)


def _parse_record(line: str) -> dict[str, str]:
    """One `scontrol -o` line into its Key=Value fields (values never contain spaces here)."""
    fields: dict[str, str] = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep:
            fields.setdefault(key, value)
    return fields


class LocalCluster:
    """slurmctld + one or two slurmd on this machine, configured in workdir.

    Single node: the node is this host (`hostname -s`) with all its CPUs and task/affinity, so a
    `-c 1` job is pinned to one CPU. Two nodes: n1 and n2 on 127.0.1.1/127.0.1.2, one CPU each,
    each slurmd in its own UTS namespace (so `hostname` in a step prints the node name) and
    pinned to its own CPU.
    """

    def __init__(self, workdir: Path, two_nodes: bool = False) -> None:
        self.workdir = Path(workdir).resolve()
        self.two_nodes = two_nodes
        self.host = socket.gethostname().split(".")[0]
        self.nodes: list[str] = list(TWO_NODES) if two_nodes else [self.host]
        self.conf = self.workdir / "slurm.conf"
        self.ctld_port = 0
        self.node_ports: dict[str, int] = {}
        self._munged_pid = 0  # set only if this cluster started munged
        self._lock: IO[str] | None = None
        self._running = False

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Start munged (if not running), slurmctld and the slurmd(s); wait until all idle."""
        global _active
        with _guard:
            if _active is not None:
                raise RuntimeError(f"a LocalCluster is already running in {_active.workdir}")
            self._acquire_lock()
            _active = self
        self._running = True
        deadline = time.monotonic() + timeout
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self._start_munge(deadline)
            self._write_conf()
            if self.two_nodes:
                self._add_hosts()
            self._spawn("slurmctld", [_need("slurmctld"), "-i"])
            self._wait_pid_file(self.workdir / "slurmctld.pid", deadline)
            cpus = sorted(os.sched_getaffinity(0))
            for i, node in enumerate(self.nodes):
                (self.workdir / f"spool-{node}").mkdir(exist_ok=True)
                slurmd = [_need("slurmd"), "-N", node]
                if self.two_nodes:
                    # Own hostname (UTS namespace) and own CPU, as on a real two-node cluster.
                    cpu = cpus[i % len(cpus)]
                    inner = f'hostname {node} && exec taskset -c {cpu} "$@"'
                    slurmd = [_need("unshare"), "--uts", "--", "sh", "-c", inner, "sh", *slurmd]
                self._spawn(f"slurmd-{node}", slurmd)
            self._wait_idle(deadline)
        except BaseException as exc:
            report = self.log_report()
            self.stop()
            if isinstance(exc, Exception):
                raise RuntimeError(f"local SLURM cluster did not start: {exc}\n{report}") from exc
            raise

    def stop(self) -> None:
        """Cancel jobs, stop the daemons this cluster started (by pid), undo /etc/hosts."""
        global _active
        if not self._running:
            return
        try:
            self._cancel_jobs()
        finally:
            try:
                self._stop_daemons()
            finally:
                self._remove_hosts()
                self._running = False
                with _guard:
                    self._release_lock()
                    if _active is self:
                        _active = None

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- using it ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF; every slurm command (and job) must use this."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(
        self,
        cmd: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        cwd: Path | str | None = None,
        env_extra: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a slurm command (sbatch, squeue, scontrol, ...) against this cluster."""
        env = {**self.env(), **(env_extra or {})}
        proc = subprocess.run(
            list(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def sbatch(
        self,
        args: Sequence[str],
        cwd: Path | str | None = None,
        env_extra: Mapping[str, str] | None = None,
    ) -> int:
        """Submit a batch job; returns its id (the base id for an array job).

        cwd is the submit (and job) directory; it defaults to the cluster's workdir so that a
        default slurm-%j.out never lands in the repository.
        """
        cwd = self.workdir if cwd is None else cwd
        proc = self.run(["sbatch", "--parsable", *args], cwd=cwd, env_extra=env_extra)
        return int(proc.stdout.strip().split(";")[0])

    def job_states(self, job_id: int | str) -> dict[str, str]:
        """{job id or array_task id: state} from `scontrol show job -o`; {} if unknown."""
        proc = self.run(["scontrol", "show", "job", "-o", str(job_id)], check=False)
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                return {}
            raise subprocess.CalledProcessError(
                proc.returncode, proc.args, proc.stdout, proc.stderr
            )
        states: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            rec = _parse_record(line)
            if "JobState" not in rec:
                continue
            task = rec.get("ArrayTaskId")
            key = f"{rec['ArrayJobId']}_{task}" if task else rec["JobId"]
            states[key] = rec["JobState"]
        return states

    def job_state(self, job_id: int | str) -> str | None:
        """The job's state, or None once slurm forgot it.

        For an array job: the state of an active task if any is active, else of any task.
        """
        states = list(self.job_states(job_id).values())
        active = [state for state in states if state in ACTIVE_STATES]
        return (active or states)[0] if states else None

    def wait_done(self, job_id: int | str, timeout: float) -> dict[str, str]:
        """Poll every second until no task of the job is active; returns the final states.

        `sbatch --wait` polls at 2, 8, 32 s, too slow for tests. Finished jobs stay visible for
        MinJobAge seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            states = self.job_states(job_id)
            if not states:
                raise RuntimeError(f"slurm does not know job {job_id}")
            if not ACTIVE_STATES.intersection(states.values()):
                return states
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still active after {timeout} s: {states}")
            time.sleep(1.0)

    def wait_state(self, job_id: int | str, state: str, timeout: float) -> None:
        """Poll every 0.2 s until job_state(job_id) is state."""
        deadline = time.monotonic() + timeout
        while (current := self.job_state(job_id)) != state:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is {current}, not {state}, after {timeout} s")
            time.sleep(0.2)

    def processes(self) -> list[int]:
        """Pids with this cluster's SLURM_CONF in their environment (daemons, steps, jobs)."""
        marker = f"SLURM_CONF={self.conf}".encode()
        return [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != os.getpid() and _environ_has(int(p.name), marker)
        ]

    def log_report(self) -> str:
        """Tails of the daemons' logs, for failure messages."""
        parts = []
        for name in ["munged", "slurmctld", *(f"slurmd-{n}" for n in self.nodes)]:
            for suffix in (".log", ".stderr"):
                path = self.workdir / f"{name}{suffix}"
                if path.exists():
                    parts.append(f"--- {path.name} (tail) ---\n{_tail(path)}")
        return "\n".join(parts)

    # ---- internals --------------------------------------------------------------------------

    def _acquire_lock(self) -> None:
        handle = LOCK_FILE.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise RuntimeError(
                f"another LocalCluster is running ({LOCK_FILE}: {holder}); one at a time"
            ) from None
        handle.seek(0)
        self._kill_stale(handle.read())
        self._lock = handle
        self._write_lock_record()

    def _write_lock_record(self) -> None:
        """Who holds the lock, and what to clean up should it die without stop()."""
        assert self._lock is not None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"pid {os.getpid()} workdir {self.workdir} munged {self._munged_pid}\n")
        self._lock.flush()

    @staticmethod
    def _kill_stale(record: str) -> None:
        """Stop what a cluster killed before its stop() (a SIGKILLed test run) left running."""
        tokens = record.split()
        fields = dict(zip(tokens[::2], tokens[1::2]))
        stale = LocalCluster(Path(fields["workdir"])).processes() if "workdir" in fields else []
        munged = fields.get("munged", "0")
        if munged.isdigit() and _alive(int(munged)) and _comm(int(munged)) == "munged":
            stale.append(int(munged))
        if stale:
            print(f"LocalCluster: killing {stale}, left by {record.strip()!r}", file=sys.stderr)
            _terminate(stale, grace=5.0)
        LocalCluster._remove_hosts()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.truncate(0)  # stopped cleanly: nothing for the next start to clean up
            self._lock.close()  # closing drops the flock
            self._lock = None

    def _start_munge(self, deadline: float) -> None:
        if MUNGE_SOCKET.exists() and self._munge_works():
            return
        MUNGE_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_DIR, "munge", "munge")
        MUNGE_DIR.chmod(0o755)
        MUNGE_PID_FILE.unlink(missing_ok=True)
        # --force: a socket left by a dead munged would otherwise stop it from starting.
        self._spawn("munged", [_need("runuser"), "-u", "munge", "--", _need("munged"), "--force"])
        self._munged_pid = self._wait_pid_file(MUNGE_PID_FILE, deadline)
        self._write_lock_record()
        while not (MUNGE_SOCKET.exists() and self._munge_works()):
            if time.monotonic() >= deadline:
                raise TimeoutError("munged did not come up")
            time.sleep(0.1)

    @staticmethod
    def _munge_works() -> bool:
        munge = _which("munge")
        if munge is None:
            return MUNGE_SOCKET.exists()
        proc = subprocess.run([munge, "-n"], capture_output=True, check=False, timeout=10)
        return proc.returncode == 0

    def _write_conf(self) -> None:
        d = self.workdir
        # A reused workdir must not bring back old jobs or let us read a stale pid.
        shutil.rmtree(d / "state", ignore_errors=True)
        (d / "state").mkdir()
        for path in self._daemon_pid_files():
            path.unlink(missing_ok=True)
        self.ctld_port = portpicker.pick_unused_port()
        self.node_ports = {node: portpicker.pick_unused_port() for node in self.nodes}
        if self.two_nodes:
            task_plugin = "task/none"
            node_lines = [
                f"NodeName={node} NodeHostname={self.host} NodeAddr={addr} "
                f"Port={self.node_ports[node]} CPUs=1 State=UNKNOWN"
                for node, addr in TWO_NODES.items()
            ]
        else:
            task_plugin = "task/affinity"
            node_lines = [
                f"NodeName={self.host} NodeAddr=127.0.0.1 Port={self.node_ports[self.host]} "
                f"CPUs={len(os.sched_getaffinity(0))} State=UNKNOWN"
            ]
        lines = [
            "ClusterName=localtest",
            f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            # A requeued job waits cred_expire + 1 s (BeginTime) before it may run again;
            # 120 s by default, 5 is the minimum Slurm accepts.
            "AuthInfo=cred_expire=5",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            f"TaskPlugin={task_plugin}",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill",
            # Nothing triggers scheduling when a BeginTime passes: without a 1 s main loop
            # (default 60 s; backfill every 30 s) a requeued job idles another 20-60 s.
            "SchedulerParameters=batch_sched_delay=0,sched_interval=1",
            "ReturnToService=2",
            "JobRequeue=1",
            "KillWait=30",
            "MinJobAge=600",  # finished jobs stay in `scontrol show job` (no accounting)
            "MailProg=/bin/true",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool-%n",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd-%n.pid",
            f"SlurmctldLogFile={d}/slurmctld.log",
            f"SlurmdLogFile={d}/slurmd-%n.log",
            *node_lines,
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        """Run a daemon's launcher; it forks the daemon (pid file) and exits."""
        env = self.env() if name != "munged" else dict(os.environ)
        with (self.workdir / f"{name}.stderr").open("ab") as err:
            proc = subprocess.run(
                cmd,
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                timeout=30,
                check=False,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")

    @staticmethod
    def _wait_pid_file(path: Path, deadline: float) -> int:
        while True:
            with contextlib.suppress(OSError, ValueError, IndexError):  # empty: being written
                pid = int(path.read_text().split()[0])
                if _alive(pid):
                    return pid
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no live daemon in {path}")
            time.sleep(0.1)

    def _wait_idle(self, deadline: float) -> None:
        last = ""
        while True:
            proc = self.run(["sinfo", "-N", "-h", "-o", "%N %t"], check=False, timeout=10)
            last = (proc.stdout + proc.stderr).strip()
            states = dict(line.split() for line in proc.stdout.splitlines() if line.strip())
            if proc.returncode == 0 and all(states.get(n) == "idle" for n in self.nodes):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nodes not idle; sinfo says: {last!r}")
            time.sleep(0.2)

    def _daemon_pid_files(self) -> list[Path]:
        return [self.workdir / f"slurmd-{n}.pid" for n in self.nodes] + [
            self.workdir / "slurmctld.pid"
        ]

    def _cancel_jobs(self) -> None:
        """Cancel every job (TERM, then KILL) so no slurmstepd outlives its slurmd."""
        if not (self.workdir / "slurmctld.pid").exists():
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            for extra, wait in (([], 5.0), (["--signal=KILL", "--full"], 10.0)):
                jobs = self._active_jobs()
                if not jobs:
                    return
                self.run(["scancel", *extra, *jobs], check=False, timeout=10)
                deadline = time.monotonic() + wait
                while self._active_jobs() and time.monotonic() < deadline:
                    time.sleep(0.5)

    def _active_jobs(self) -> list[str]:
        proc = self.run(["squeue", "-h", "-o", "%A"], check=False, timeout=10)
        return proc.stdout.split() if proc.returncode == 0 else []

    def _stop_daemons(self) -> None:
        marker = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for path in self._daemon_pid_files():
            with contextlib.suppress(OSError, ValueError):
                pid = int(path.read_text().split()[0])
                if _alive(pid) and _environ_has(pid, marker):  # not a reused pid
                    pids.append(pid)
        _terminate(pids, grace=10.0)
        # Anything else started with this cluster's SLURM_CONF (a stray slurmstepd, a job's
        # process, a leftover srun) goes too: identified by this cluster's own conf path.
        _terminate([pid for pid in self.processes() if _alive(pid)], grace=5.0)
        if self._munged_pid and _comm(self._munged_pid) == "munged":
            _terminate([self._munged_pid], grace=5.0)
        self._munged_pid = 0

    def _add_hosts(self) -> None:
        self._remove_hosts()  # lines a crashed run may have left
        text = HOSTS_FILE.read_text()
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(f"{addr} {node} {HOSTS_MARKER}\n" for node, addr in TWO_NODES.items())
        HOSTS_FILE.write_text(text)  # in place: /etc/hosts may be a bind mount

    @staticmethod
    def _remove_hosts() -> None:
        with contextlib.suppress(OSError):
            text = HOSTS_FILE.read_text()
            kept = [line for line in text.splitlines(keepends=True) if HOSTS_MARKER not in line]
            if len(kept) != len(text.splitlines()):
                HOSTS_FILE.write_text("".join(kept))


def _need(name: str) -> str:
    path = _which(name)
    if path is None:
        raise RuntimeError(f"{name} not found (install {' '.join(PACKAGES)})")
    return path
