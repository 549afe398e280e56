"""supervisord for one launch: its configuration (one section per program, the
monitor event listener), its socket, and reaching it over XML-RPC.

supervisord (from PyPI, no root needed) starts every program, restarts any that
exits non-zero or dies by a signal, and stops them in order. Start order is replay
server, workers, learner; stop order is the reverse, so at a stop or preemption the
learner checkpoints itself and the replay buffer first. The monitor
(`supervision.Monitor`) adds hang detection, crash-loop bounds and completion.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import tempfile
from collections import deque
from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.core.paths import GROUP_OTHER, ExperimentPaths, check_private_dir
from tfagents_system.core.records import SupervisorInfo

# A program that dies within this many seconds of starting failed to start;
# supervisord retries such starts `START_RETRIES` times, then marks it FATAL.
START_SECS = 5
START_RETRIES = 3
# The learner and the replay server each write a checkpoint of the replay
# tables when they stop, which takes seconds for a large buffer.
STOP_WAIT_S = {C.LEARNER: 25, C.REPLAY_SERVER: 60}
WORKER_STOP_WAIT_S = 10
PRIORITY = {C.REPLAY_SERVER: 100, C.WORKER_PREFIX: 200, C.LEARNER: 300}
# Once training is complete, how long the workers may take to finish their final
# evaluation before the run is ended without them.
COMPLETION_GRACE_S = 900.0


def _suffix(node: str | None) -> str:
    return "" if node is None else f"-{node}"


def _runtime_dir() -> Path | None:
    """XDG_RUNTIME_DIR where it is usable: a real directory of this user's that no one
    else may enter. sbatch passes the login session's one, which compute nodes may lack."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime_dir:
        return None
    try:
        status = os.lstat(runtime_dir)
    except OSError:
        return None
    private = (stat.S_ISDIR(status.st_mode) and status.st_uid == os.geteuid()
               and not stat.S_IMODE(status.st_mode) & GROUP_OTHER)
    return Path(runtime_dir) if private and os.access(runtime_dir, os.W_OK) else None


def socket_dir() -> Path:
    """Where this user's supervisord sockets live: XDG_RUNTIME_DIR, else a directory of
    the user's own under the temporary directory (made with mode 0700; CheckError if
    someone else made it first, to reach or catch the socket)."""
    runtime_dir = _runtime_dir()
    if runtime_dir is not None:
        return runtime_dir
    return check_private_dir(
        Path(tempfile.gettempdir()) / f"sac-supervisor-{os.geteuid()}",
        "supervisord's socket directory ",
        "someone else may have made it; set TMPDIR to a directory of your own, then rerun")


def socket_path(exp_dir: Path, node: str | None = None) -> Path:
    """A short unix socket path (the limit is 107 bytes), the same for an experiment and
    node at every call, in a directory only this user may enter (`socket_dir`)."""
    key = str(Path(exp_dir).resolve()) + _suffix(node)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return socket_dir() / f"sac-{digest}.sock"


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


def _header(paths: ExperimentPaths, sock: Path, repo_root: Path, node: str | None) -> str:
    """supervisord's own sections: its socket, log, pid file and directory."""
    rdir, suffix = paths.run_dir(node), _suffix(node)
    return f"""[unix_http_server]
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
"""


def _program_section(program, python: str, repo_root: Path, base_env: dict) -> str:
    """One supervised program (a launch.processes.Program)."""
    env = dict(base_env, **program.thread_env())
    stop_wait = STOP_WAIT_S.get(program.name, WORKER_STOP_WAIT_S)
    return f"""[program:{program.name}]
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
"""


def _monitor_section(paths: ExperimentPaths, programs, python: str, repo_root: Path,
                     base_env: dict, hang_timeout_s: float, max_restarts: int,
                     node: str | None) -> str:
    """The monitor event listener (`python -m tfagents_system.supervision`)."""
    args = shlex.join(
        [python, "-u", "-m", "tfagents_system.supervision", "--exp_dir", str(paths.root),
         "--hang_timeout", str(hang_timeout_s), "--max_restarts", str(max_restarts),
         "--programs", ",".join(p.name for p in programs)]
        + ([] if node is None else ["--node", node]))
    return f"""[eventlistener:{C.MONITOR}]
command={_escape(args)}
directory={_escape(repo_root)}
environment={_env_line(base_env)}
events=PROCESS_STATE,TICK_5
buffer_size=1024
autorestart=true
priority=1
stdout_logfile=NONE
stderr_logfile={_escape(paths.process_log(C.MONITOR + _suffix(node)))}
stderr_logfile_maxbytes=10MB
"""


def write_config(exp_dir: Path, programs, python: str, repo_root: Path, base_env: dict,
                 hang_timeout_s: float, max_restarts: int, node: str | None = None) -> Path:
    """supervisord.conf for one launch (of one node); `programs` are
    launch.processes.Program objects."""
    paths = ExperimentPaths(Path(exp_dir))
    rdir = paths.run_dir(node)
    rdir.mkdir(parents=True, exist_ok=True)
    paths.process_logs.mkdir(parents=True, exist_ok=True)
    sock = socket_path(exp_dir, node)
    sections = [_header(paths, sock, repo_root, node)]
    sections += [_program_section(p, python, repo_root, base_env) for p in programs]
    sections.append(_monitor_section(paths, programs, python, repo_root, base_env,
                                     hang_timeout_s, max_restarts, node))
    conf = rdir / C.SUPERVISOR_CONF
    conf.write_text("\n".join(sections))
    SupervisorInfo(str(sock), str(conf)).write(rdir / C.SUPERVISOR_FILE)
    return conf


def rpc(exp_dir: Path, timeout: float = 5.0, node: str | None = None):
    """An XML-RPC proxy to the experiment's supervisord (on `node` for a SLURM job)."""
    import xmlrpc.client

    from supervisor import xmlrpc as supervisor_xmlrpc

    info = SupervisorInfo.read(ExperimentPaths(Path(exp_dir)).run_dir(node) / C.SUPERVISOR_FILE)
    transport = supervisor_xmlrpc.SupervisorTransport(None, None, f"unix://{info.socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def tail(path: Path, lines: int = 10) -> str:
    """The last lines of a log file, indented."""
    try:
        with open(path, errors="replace") as fh:
            kept = [line for line in deque(fh, maxlen=lines * 4) if "argv[0]=" not in line]
        return "".join(kept[-lines:])
    except OSError:
        return ""
