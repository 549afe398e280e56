"""The replay server program: a Reverb server with the experience and weights tables."""

from __future__ import annotations

import argparse
import time

from tfagents_system import builders
from tfagents_system import constants as C
from tfagents_system import runtime


def run_replay_server(params, capacity: int, port: int, should_stop, log) -> None:
    import reverb

    server = reverb.Server(builders.make_tables(params, capacity), port=port)
    log.info("serving on port %d: table %r (capacity %d, %s), table %r",
             server.port, C.EXPERIENCE_TABLE, capacity,
             "samples_per_insert=%s" % params.samples_per_insert
             if params.samples_per_insert else "min size %d" % params.min_replay_size,
             C.WEIGHTS_TABLE)
    try:
        while not should_stop():
            time.sleep(0.5)
    finally:
        server.stop()
    log.info("stopped")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    log = runtime.setup_logging(C.REPLAY_SERVER)
    stop = runtime.StopFlag().install()
    threads = runtime.configure_threads()
    runtime.log_placement(log, threads)
    _, params, settings = runtime.load_experiment(args.exp_dir)
    run_replay_server(params, settings["replay_capacity"], args.port, stop, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
