"""A replay server process for the benchmarks: one Reverb server per item layout,
each with the tables `builders.make_tables` builds, prefilled with the same real
HalfCheetah transitions (uniform random actions) written by our writers.

Prints `RESULT {"ports": {layout: port}, ...}` once the tables are full, then
serves until it gets SIGTERM or its stdin closes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from benchmarks import common


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layouts", default="packed_transition,steps2",
                        help="one server per entry: LAYOUT, or packed_transition@CHUNK_LENGTH")
    parser.add_argument("--prefill", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    common.quiet_imports()
    import reverb

    from tfagents_system import builders

    params = common.bench_params()
    servers, writers = {}, []
    env = builders.make_env(params, builders.COLLECT, seed=0)
    for name in args.layouts.split(","):  # LAYOUT or LAYOUT@CHUNK_LENGTH (packed only)
        layout, _, chunk = name.partition("@")
        server = reverb.Server(builders.make_tables(params, args.capacity), port=None)
        servers[name] = server
        client = reverb.Client(f"localhost:{server.port}")
        if chunk:
            writers.append(builders.PackedExperienceWriter(
                client, builders.TransitionPacker(env.observation_spec(), env.action_spec()),
                lambda: False, chunk_length=int(chunk)))
        else:
            writers.append(builders.make_experience_writer(
                client, layout, env.observation_spec(), env.action_spec(), lambda: False))
    start = time.perf_counter()
    if args.prefill > 0:
        common.real_transitions(writers, args.prefill)
    for writer in writers:
        writer.close()
    sizes = {layout: reverb.Client(f"localhost:{s.port}").server_info()[
        builders.C.EXPERIENCE_TABLE].current_size for layout, s in servers.items()}
    common.emit({"ports": {layout: s.port for layout, s in servers.items()}, "sizes": sizes,
                 "prefill_s": time.perf_counter() - start})
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(0.5):
        pass
    for server in servers.values():
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
