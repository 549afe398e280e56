"""The replay server program: a Reverb server with the experience table (sampled by
the learner in the Reverb-sampled layouts), the experience queue (blocks on their
way to the learner's memory, packed_blocks layout) and the weights table.

Its tables are checkpointed (Reverb's own checkpointing, to
`<exp>/replay_checkpoints/`, kept safe by `replay.checkpoints`) whenever the learner
checkpoints and when it stops, and a restarted server restores the newest checkpoint
it can load before it serves.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from tfagents_system import process
from tfagents_system.builder import Builder
from tfagents_system.core import constants as C
from tfagents_system.replay.checkpoints import ReplayCheckpoints


def start_server(make_tables: Callable[[], list], port: int, checkpoints: ReplayCheckpoints,
                 log):
    """A Reverb server of `make_tables()` restored from the newest checkpoint it can load:
    one that fails to load is set aside (and logged) and the previous kept one is tried."""
    import reverb

    while True:
        restoring = checkpoints.prepare_restore()
        checkpoints.root.mkdir(parents=True, exist_ok=True)
        checkpointer = reverb.checkpointers.DefaultCheckpointer(str(checkpoints.root))
        try:
            return reverb.Server(make_tables(), port=port, checkpointer=checkpointer)
        except RuntimeError as exc:
            if restoring is None:
                raise
            # The checkpoint is to blame only if a server without it starts.
            reverb.Server(make_tables(), port=port).stop()
            moved = checkpoints.set_aside(restoring)
            log.error("replay checkpoint %s could not be loaded (%s): moved to %s; trying "
                      "the previous one", restoring.name, exc, moved)


def run_replay_server(builder: Builder, port: int, should_stop, log, heartbeat=None) -> None:
    """Serve the experiment's tables (restored from the latest checkpoint) until a stop
    request, then checkpoint them."""
    import reverb

    replay_format = builder.recorded_format()
    settings = builder.replay_settings()
    checkpoints = builder.replay_checkpoints()
    server = start_server(lambda: builder.tables(replay_format), port, checkpoints, log)
    info = reverb.Client(f"localhost:{server.port}").server_info()
    limiter = (f"samples_per_insert={settings.samples_per_insert}"
               if settings.samples_per_insert else f"min size {settings.min_size}")
    log.info("serving on port %d: table %r (capacity %d, %s, %d items restored), queue %r "
             "(%d blocks restored), table %r", server.port, C.EXPERIENCE_TABLE,
             settings.capacity, limiter, info[C.EXPERIENCE_TABLE].current_size, C.QUEUE_TABLE,
             info[C.QUEUE_TABLE].current_size, C.WEIGHTS_TABLE)
    try:
        while not should_stop():
            time.sleep(0.5)
            if heartbeat is not None:
                heartbeat.beat()
        # A stop request. Under supervisord the learner stops first and
        # checkpoints the tables, but a preempted SLURM job signals every
        # program at once and the learner's request can arrive after the server
        # has gone, so the server always saves its own copy before it goes.
        started = time.monotonic()
        path = checkpoints.save(reverb.Client(f"localhost:{server.port}").checkpoint,
                                None if heartbeat is None else heartbeat.beat)
        log.info("checkpointed the tables on stop in %.1fs: %s", time.monotonic() - started,
                 path)
    finally:
        server.stop()
    log.info("stopped")


def main(argv=None) -> int:
    """The supervised replay server program."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    return process.run_program(C.REPLAY_SERVER, args.exp_dir, lambda program: (
        run_replay_server(Builder(program.params, program.paths, program.settings), args.port,
                          program.stop, program.log, program.heartbeat)))


if __name__ == "__main__":
    raise SystemExit(main())
