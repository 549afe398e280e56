"""The monitor: the supervisord event listener that watches a launch's programs.

supervisord (`supervisord`) starts, restarts and stops the programs; the monitor
(this module's `main`, which supervisord runs) adds what it does not do by itself:

- hang detection: a program whose heartbeat file is older than the hang
  timeout is killed, and supervisord restarts it;
- a bound on crash loops: a program that supervisord gives up on (FATAL), or
  that restarts more than `max_restarts` times within `RESTART_WINDOW_S`,
  stops the whole run with one message naming it and its last log lines;
- a full disk: a program that crashes while the experiment's disk is full ends the
  run naming the disk (a restart would fail the same way); room is kept to record it;
- completion: once the learner has exited 0 after writing the completion
  file and every worker has finished, it shuts supervisord down.

It records restarts and the run's outcome in `<exp>/run/` (`core.records.Restarts`,
`Outcome`), where the launcher and the status command read them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict, deque
from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.core.files import disk_full
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import (
    COMPLETE,
    FAILED,
    FatalReport,
    Outcome,
    Restarts,
    WorkerStatus,
)
from tfagents_system.process import die_with_parent
from tfagents_system.supervisord import (
    COMPLETION_GRACE_S,
    START_RETRIES,
    START_SECS,
    rpc,
    tail,
)

RESTART_WINDOW_S = 600.0
STALE_CHECK_S = 10.0  # how often the workers' status is read for stale weights
DISK_RESERVE_BYTES = 256 * 1024


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
        self._stale_warned: set[str] = set()
        self._stale_checked = float("-inf")
        self.outcome: Outcome | None = None
        restarts_file = self.run_dir / C.RESTARTS_FILE
        if restarts_file.is_file():  # the monitor itself was restarted
            self.restarts.update(Restarts.read(restarts_file).restarts)
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
            self._fail(name, FatalReport.read(self.paths.fatal(name)).reason)
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
                self._finish(COMPLETE, "training complete; workers did not finish their "
                                         "final evaluation in time and were stopped")
            return
        if now - self._stale_checked >= STALE_CHECK_S:
            self._stale_checked = now
            self._warn_stale_weights()
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

    def _warn_stale_weights(self) -> None:
        """Say, once per episode, that a worker has refused every weights item for
        `C.STALE_WEIGHTS_S` (forged or removed weights: it acts with stale ones)."""
        for name in self.programs:
            if not C.is_worker(name):
                continue
            status = WorkerStatus.read_or_none(self.paths.status_file(name))
            stale = status is not None and status.weights_refused_s >= C.STALE_WEIGHTS_S
            if stale and name not in self._stale_warned:
                reasons = ", ".join(f"{n} {why}"
                                    for why, n in sorted(status.weights_refused.items()))
                self._log(f"{name} has refused every weights item from the replay server for "
                          f"{status.weights_refused_s:.0f}s ({reasons}): it acts with the "
                          f"weights of train step {status.train_step_seen}; someone else may "
                          "be writing to the replay port (README, Security)")
                self._stale_warned.add(name)
            elif not stale:
                self._stale_warned.discard(name)

    def _maybe_finish(self) -> None:
        # The learner, where this supervisord runs it, and every worker have finished.
        needed = {p for p in self.programs if C.is_worker(p) or p == C.LEARNER}
        if needed <= self._finished:
            self._finish(COMPLETE, "training complete")

    # --- outcomes ---

    def _fail(self, name: str, reason: str) -> None:
        if self.outcome is not None:
            return
        log_path = self.paths.process_log(name)
        self.outcome = Outcome(FAILED, reason, name, str(log_path), tail(log_path))
        self._log(f"giving up: {reason}")
        self._shutdown()

    def _finish(self, result: str, reason: str) -> None:
        self.outcome = Outcome(result, reason)
        self._log(reason)
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.outcome.write(self.run_dir / C.OUTCOME_FILE)
        except OSError:  # a full disk: use the room kept for this
            self._reserve.unlink(missing_ok=True)
            self.outcome.write(self.run_dir / C.OUTCOME_FILE)
        self._reserve.unlink(missing_ok=True)  # not needed any more
        try:
            self._rpc_factory().supervisor.shutdown()
        except Exception as exc:  # supervisord may already be shutting down
            self._log(f"shutdown request failed: {exc}")

    def _save_restarts(self) -> None:
        try:
            Restarts(dict(self.restarts)).write(self.run_dir / C.RESTARTS_FILE)
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
