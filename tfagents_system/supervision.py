"""Supervision with supervisord: its configuration, and the event listener
that watches the programs.

supervisord (from PyPI, no root needed) starts every program, restarts any
that exits non-zero or dies by a signal, and stops them in order. Start order
is replay server, workers, learner; stop order is the reverse, so at a stop or
preemption the learner checkpoints itself and the replay buffer first.

The `monitor` event listener (this module's `main`) adds what supervisord
does not do by itself:

- hang detection: a program whose heartbeat file is older than the hang
  timeout is killed, and supervisord restarts it;
- a bound on crash loops: a program that supervisord gives up on (FATAL), or
  that restarts more than `max_restarts` times within `RESTART_WINDOW_S`,
  stops the whole run with one message naming it and its last log lines;
- a full disk: a program that crashes while the experiment's disk is full ends the
  run naming the disk (a restart would fail the same way); room is kept to record it;
- completion: once the learner has exited 0 after writing the completion
  file and every worker has finished, it shuts supervisord down.

It records restarts and the run's outcome in `<exp>/run/`, where the launcher
and the status command read them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import tempfile
import time
from collections import defaultdict, deque
from pathlib import Path

from tfagents_system import constants as C
from tfagents_system.paths import ExperimentPaths
from tfagents_system.runtime import disk_full, read_json, write_json_atomic

RESTART_WINDOW_S = 600.0
# A program that dies within this many seconds of starting failed to start;
# supervisord retries such starts `start_retries` times, then marks it FATAL.
START_SECS = 5
START_RETRIES = 3
# The learner and the replay server each write a checkpoint of the replay
# tables when they stop, which takes seconds for a large buffer.
STOP_WAIT_S = {C.LEARNER: 25, C.REPLAY_SERVER: 60}
WORKER_STOP_WAIT_S = 10
PRIORITY = {C.REPLAY_SERVER: 100, C.WORKER_PREFIX: 200, C.LEARNER: 300}
COMPLETION_GRACE_S = 900.0
DISK_RESERVE_BYTES = 256 * 1024


def _suffix(node: str | None) -> str:
    return "" if node is None else f"-{node}"


def socket_path(exp_dir: Path, node: str | None = None) -> Path:
    """A short unix socket path (the limit is 107 bytes), unique per experiment and node."""
    key = str(Path(exp_dir).resolve()) + _suffix(node)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    # sbatch passes the login session's XDG_RUNTIME_DIR, which compute nodes may lack.
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    usable = runtime_dir and os.path.isdir(runtime_dir) and os.access(runtime_dir, os.W_OK)
    base = Path(runtime_dir if usable else tempfile.gettempdir())
    return base / f"sac-supervisor-{digest}.sock"


def _escape(value: str) -> str:
    """A value for supervisord's ini: '%' is its interpolation character."""
    return str(value).replace("%", "%%")


def _env_line(env: dict[str, str]) -> str:
    """supervisord's environment= value. It splits it with a non-POSIX shlex, where a
    value is quoted with a quote character it does not hold (no escapes exist there)."""
    items = []
    for key, value in env.items():
        value = str(value).replace("\n", " ")
        quote = '"' if '"' not in value else "'"
        if quote in value:
            raise ValueError(f"environment variable {key} holds both kinds of quotes "
                             f"({value!r}); supervisord cannot pass it to the programs")
        items.append(f"{key}={quote}{_escape(value)}{quote}")
    return ",".join(items)


def write_config(exp_dir: Path, programs, python: str, repo_root: Path, base_env: dict,
                 hang_timeout_s: float, max_restarts: int, node: str | None = None) -> Path:
    """supervisord.conf for one launch (of one node); `programs` are launch.Program objects."""
    paths = ExperimentPaths(Path(exp_dir))
    rdir = paths.run_dir(node)
    rdir.mkdir(parents=True, exist_ok=True)
    paths.process_logs.mkdir(parents=True, exist_ok=True)
    sock = socket_path(exp_dir, node)
    suffix = _suffix(node)
    sections = [f"""[unix_http_server]
file={_escape(sock)}
chmod=0700

[supervisord]
nodaemon=true
logfile={_escape(paths.process_log(C.SUPERVISORD + suffix))}
logfile_maxbytes=10MB
pidfile={_escape(rdir / C.SUPERVISOR_PID)}
childlogdir={_escape(paths.process_logs)}
directory={_escape(repo_root)}
identifier=sac-{_escape(paths.root.name)}{_escape(suffix)}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{_escape(sock)}
"""]
    for program in programs:
        env = dict(base_env, **program.thread_env())
        stop_wait = STOP_WAIT_S.get(program.name, WORKER_STOP_WAIT_S)
        sections.append(f"""[program:{program.name}]
command={_escape(shlex.join(program.command(python)))}
directory={_escape(repo_root)}
environment={_env_line(env)}
priority={PRIORITY[program.group]}
autostart=true
autorestart=unexpected
exitcodes=0
startsecs={START_SECS}
startretries={START_RETRIES}
stopsignal=TERM
stopwaitsecs={stop_wait}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={_escape(program.log_path)}
stdout_logfile_maxbytes=100MB
stdout_logfile_backups=2
""")
    monitor_args = shlex.join(
        [python, "-u", "-m", "tfagents_system.supervision", "--exp_dir", str(paths.root),
         "--hang_timeout", str(hang_timeout_s), "--max_restarts", str(max_restarts),
         "--programs", ",".join(p.name for p in programs)]
        + ([] if node is None else ["--node", node]))
    sections.append(f"""[eventlistener:{C.MONITOR}]
command={_escape(monitor_args)}
directory={_escape(repo_root)}
environment={_env_line(base_env)}
events=PROCESS_STATE,TICK_5
buffer_size=1024
autorestart=true
priority=1
stdout_logfile=NONE
stderr_logfile={_escape(paths.process_log(C.MONITOR + suffix))}
stderr_logfile_maxbytes=10MB
""")
    conf = rdir / C.SUPERVISOR_CONF
    conf.write_text("\n".join(sections))
    write_json_atomic(rdir / C.SUPERVISOR_FILE, {"socket": str(sock), "config": str(conf)})
    return conf


def rpc(exp_dir: Path, timeout: float = 5.0, node: str | None = None):
    """An XML-RPC proxy to the experiment's supervisord (on `node` for a SLURM job)."""
    import xmlrpc.client

    from supervisor import xmlrpc as supervisor_xmlrpc

    sock = read_json(ExperimentPaths(Path(exp_dir)).run_dir(node) / C.SUPERVISOR_FILE)["socket"]
    transport = supervisor_xmlrpc.SupervisorTransport(None, None, f"unix://{sock}")
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    return proxy


def tail(path: Path, lines: int = 10) -> str:
    """The last lines of a log file, indented."""
    try:
        with open(path, errors="replace") as fh:
            kept = [line for line in deque(fh, maxlen=lines * 4) if "argv[0]=" not in line]
        return "".join(kept[-lines:])
    except OSError:
        return ""


class Monitor:
    """The event listener's state machine (pure where it can be: tests drive it)."""

    def __init__(self, exp_dir: Path, programs: list[str], hang_timeout_s: float,
                 max_restarts: int, rpc_factory=None, clock=time.monotonic, log=None,
                 node: str | None = None):
        self.paths = ExperimentPaths(Path(exp_dir))
        self.run_dir = self.paths.run_dir(node)
        self.programs = programs
        self.hang_timeout_s = hang_timeout_s
        self.max_restarts = max_restarts
        self._rpc_factory = rpc_factory or (lambda: rpc(exp_dir, node=node))
        self._clock = clock
        self._log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.restarts: dict[str, int] = defaultdict(int)
        self._exits: dict[str, deque] = defaultdict(deque)
        self._hang_kills: dict[str, deque] = defaultdict(deque)
        self._killed_for_hang: set[str] = set()
        self._started_at: dict[str, float] = {}
        self._running: set[str] = set()
        self._finished: set[str] = set()
        self._complete_since: float | None = None
        self.outcome: dict | None = None
        restarts_file = self.run_dir / C.RESTARTS_FILE
        if restarts_file.is_file():  # the monitor itself was restarted
            self.restarts.update(read_json(restarts_file).get("restarts", {}))
        # Room kept for the outcome file, released when the disk is full.
        self._reserve = self.run_dir / C.DISK_RESERVE_FILE
        try:
            self._reserve.write_bytes(b"\0" * DISK_RESERVE_BYTES)
        except OSError:
            self._reserve.unlink(missing_ok=True)

    # --- events ---

    def on_event(self, event: str, payload: dict) -> None:
        name = payload.get("processname")
        if event == "PROCESS_STATE_RUNNING" and name in self.programs:
            self._running.add(name)
            self._started_at[name] = self._clock()
        elif event == "PROCESS_STATE_EXITED" and name in self.programs:
            self._running.discard(name)
            self._on_exit(name, expected=payload.get("expected") == "1")
        elif event == "PROCESS_STATE_BACKOFF" and name in self.programs:
            self._running.discard(name)
            if not self._finished_quickly(name):
                self._count_restart(name, "exited while starting")
        elif event == "PROCESS_STATE_FATAL" and name in self.programs:
            self._running.discard(name)
            if not self._finished_quickly(name):
                self._fail(name, f"{name} failed to start {START_RETRIES + 1} times in a row")
        elif event.startswith("TICK"):
            self.on_tick()

    def _finished_quickly(self, name: str) -> bool:
        """A program (re)started after training completed does its last work and exits
        within START_SECS, which supervisord counts as a failed start: it is finished."""
        if not self.paths.complete.is_file():
            return False
        self._on_exit(name, expected=True)
        return True

    def _on_exit(self, name: str, expected: bool) -> None:
        complete = self.paths.complete.is_file()
        if expected and complete:
            self._finished.add(name)
            self._complete_since = self._complete_since or self._clock()
            self._maybe_finish()
        elif expected:
            self._fail(name, f"{name} exited 0 before training was complete")
        elif self.paths.fatal(name).is_file():
            self._fail(name, read_json(self.paths.fatal(name))["reason"])
        elif name in self._killed_for_hang:
            self._killed_for_hang.discard(name)
            self._count_hang(name)
        elif (full := self._disk_full()) is not None:  # a restart would fail the same way
            self._fail(name, f"{name} stopped: {full}")
        else:
            self._count_restart(name, "crashed")

    def _disk_full(self) -> str | None:
        try:
            return disk_full(self.paths.root)
        except OSError:
            return None

    def hang_window_s(self) -> float:
        """Restarts after hangs are counted over this long: max_restarts + 1 hang kills fit
        in it, so a program that hangs at every start ends the run whatever the timeout."""
        return max(RESTART_WINDOW_S, (self.max_restarts + 1) * (self.hang_timeout_s + START_SECS))

    def _count_hang(self, name: str) -> None:
        now = self._clock()
        kills = self._hang_kills[name]
        kills.append(now)
        while kills and now - kills[0] > self.hang_window_s():
            kills.popleft()
        self._count_restart(name, "was killed for a hang")
        if len(kills) > self.max_restarts:
            self._fail(name, f"{name} hung {len(kills)} times within "
                             f"{self.hang_window_s():.0f}s (a hang at every start?)")

    def _count_restart(self, name: str, how: str) -> None:
        now = self._clock()
        exits = self._exits[name]
        exits.append(now)
        while exits and now - exits[0] > RESTART_WINDOW_S:
            exits.popleft()
        self.restarts[name] += 1
        self._save_restarts()
        self._log(f"{name} {how}; supervisord restarts it (restart {self.restarts[name]})")
        if len(exits) > self.max_restarts:
            self._fail(name, f"{name} restarted {len(exits)} times within "
                             f"{RESTART_WINDOW_S:.0f}s (crash loop)")

    def on_tick(self) -> None:
        now = self._clock()
        if self.outcome is not None:
            return
        if self._complete_since is not None:
            self._maybe_finish()
            if self.outcome is None and now - self._complete_since > COMPLETION_GRACE_S:
                self._finish("complete", "training complete; workers did not finish their "
                                         "final evaluation in time and were stopped")
            return
        for name in sorted(self._running):
            beat = self.paths.heartbeat(name)
            started = self._started_at.get(name, now)
            try:
                age = time.time() - beat.stat().st_mtime
            except OSError:
                age = now - started
            age = min(age, now - started)  # a fresh start gets the full timeout
            if age > self.hang_timeout_s:
                self._log(f"{name} made no progress for {age:.0f}s (hang timeout "
                          f"{self.hang_timeout_s:.0f}s): killing it for a restart")
                self._running.discard(name)
                self._killed_for_hang.add(name)
                try:
                    self._rpc_factory().supervisor.signalProcess(name, "KILL")
                except Exception as exc:  # the process may have just exited
                    self._log(f"could not kill {name}: {exc}")

    def _maybe_finish(self) -> None:
        # The learner, where this supervisord runs it, and every worker have finished.
        needed = {p for p in self.programs if C.is_worker(p) or p == C.LEARNER}
        if needed <= self._finished:
            self._finish("complete", "training complete")

    # --- outcomes ---

    def _fail(self, name: str, reason: str) -> None:
        if self.outcome is not None:
            return
        log_path = self.paths.process_log(name)
        self.outcome = {"result": "failed", "program": name, "reason": reason,
                        "log": str(log_path), "log_tail": tail(log_path)}
        self._log(f"giving up: {reason}")
        self._shutdown()

    def _finish(self, result: str, reason: str) -> None:
        self.outcome = {"result": result, "reason": reason}
        self._log(reason)
        self._shutdown()

    def _shutdown(self) -> None:
        outcome = {**self.outcome, "time": time.time()}
        try:
            write_json_atomic(self.run_dir / C.OUTCOME_FILE, outcome)
        except OSError:  # a full disk: use the room kept for this
            self._reserve.unlink(missing_ok=True)
            write_json_atomic(self.run_dir / C.OUTCOME_FILE, outcome)
        self._reserve.unlink(missing_ok=True)  # not needed any more
        try:
            self._rpc_factory().supervisor.shutdown()
        except Exception as exc:  # supervisord may already be shutting down
            self._log(f"shutdown request failed: {exc}")

    def _save_restarts(self) -> None:
        try:
            write_json_atomic(self.run_dir / C.RESTARTS_FILE,
                              {"restarts": dict(self.restarts)})
        except OSError as exc:  # a full disk: the counts stay in memory
            self._log(f"could not record the restart counts: {exc}")


def main(argv=None) -> int:
    """The monitor event listener that supervisord runs."""
    from supervisor import childutils

    parser = argparse.ArgumentParser(description="supervisord event listener (internal)")
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--hang_timeout", type=float, required=True)
    parser.add_argument("--max_restarts", type=int, required=True)
    parser.add_argument("--programs", required=True)
    parser.add_argument("--node", help="node name, for a workers-only supervisord")
    args = parser.parse_args(argv)
    from tfagents_system.runtime import die_with_parent

    die_with_parent()

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} monitor {msg}", file=sys.stderr, flush=True)

    monitor = Monitor(Path(args.exp_dir), args.programs.split(","), args.hang_timeout,
                      args.max_restarts, rpc_factory=lambda: childutils.getRPCInterface(
                          os.environ), log=log, node=args.node)
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        event = headers.get("eventname", "")
        fields = {}
        if event.startswith("PROCESS_STATE"):
            header_line = payload.split("\n", 1)[0]
            fields = childutils.get_headers(header_line)
        try:
            monitor.on_event(event, fields)
        finally:
            childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
