"""A replay server process for the benchmarks: one Reverb server per item layout,
each with the tables `tables.make_tables` builds, prefilled with the same real
HalfCheetah transitions (uniform random actions) written by our writers.

Prints `RESULT {"ports": {layout: port}, ...}` once the tables are full, then
serves until it gets SIGTERM or its stdin closes. A packed_blocks server's
prefill waits in its experience queue; `--feed_rate` keeps adding blocks there
(as workers would, for a learner to take in), `--drain` keeps taking them out
(as a learner would, for writers that must never wait).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from benchmarks import common

SIGNED = "+signed"  # a server name's suffix: its rows carry their signature


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layouts",
                        default=f"packed_blocks,packed_transition,packed_transition{SIGNED},steps2",
                        help="one server per entry: LAYOUT, packed_transition@CHUNK_LENGTH, "
                             f"or packed_transition{SIGNED} (rows that carry their signature)")
    parser.add_argument("--prefill", type=int, default=20_000)
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--feed_rate", type=float, default=0.0,
                        help="transitions/s added to each packed_blocks queue after the prefill")
    parser.add_argument("--drain", action="store_true",
                        help="keep the packed_blocks queues empty")
    args = parser.parse_args(argv)
    common.quiet_imports()
    import reverb

    from tfagents_system.builder import COLLECT, make_env
    from tfagents_system.core import constants as C
    from tfagents_system.replay import packing, tables, writers
    from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat

    params = common.bench_params()
    servers, our_writers = {}, []
    env = make_env(params, COLLECT, seed=0)
    settings = params.replay_settings(args.capacity)
    for name in args.layouts.split(","):  # LAYOUT, LAYOUT@CHUNK_LENGTH or LAYOUT+signed
        layout, _, chunk = name.removesuffix(SIGNED).partition("@")
        replay_format = ReplayFormat(layout, signed_rows=name.endswith(SIGNED)).bind(
            env.observation_spec(), env.action_spec())
        server = reverb.Server(tables.make_tables(settings, replay_format), port=None)
        servers[name] = server
        client = reverb.Client(f"localhost:{server.port}")
        if chunk:
            our_writers.append(writers.PackedExperienceWriter(
                client, packing.TransitionPacker(env.observation_spec(), env.action_spec()),
                lambda: False, chunk_length=int(chunk)))
        else:
            our_writers.append(writers.make_experience_writer(
                client, replay_format, lambda: False, common.bench_signer()))
    start = time.perf_counter()
    if args.prefill > 0:
        common.real_transitions(our_writers, args.prefill)
    for writer in our_writers:
        writer.close()
    table = {LAYOUT_BLOCKS: C.QUEUE_TABLE}
    sizes = {layout: reverb.Client(f"localhost:{s.port}").server_info()[
        table.get(layout, C.EXPERIENCE_TABLE)].current_size
        for layout, s in servers.items()}
    common.emit({"ports": {layout: s.port for layout, s in servers.items()}, "sizes": sizes,
                 "prefill_s": time.perf_counter() - start})
    done = threading.Event()
    packer = packing.TransitionPacker(env.observation_spec(), env.action_spec())
    for name, server in servers.items():
        if name == LAYOUT_BLOCKS and (args.feed_rate > 0 or args.drain):
            client = reverb.Client(f"localhost:{server.port}")
            work = ((lambda c=client: feed(c, done, args.feed_rate, packer.size))
                    if args.feed_rate > 0 else (lambda c=client: drain(c, done, packer.size)))
            threading.Thread(target=work, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    while not done.wait(0.5):
        pass
    for server in servers.values():
        server.stop()
    return 0


def feed(client, done, rate, row_size):
    """Full blocks of made-up MID transitions into the queue, `rate` rows per second,
    signed as a worker signs them."""
    import numpy as np
    import reverb

    from tfagents_system.core import constants as C
    from tfagents_system.replay.auth import BLOCK_TAG
    from tfagents_system.replay.packing import BLOCK_ROWS

    rows = BLOCK_ROWS
    block = np.random.default_rng(0).standard_normal((rows, row_size)).astype(np.float32)
    block[:, :2], block[:, 3] = 1.0, 1.0  # step types MID, discount 1
    signer, seq = common.bench_signer(), 0
    # Written as the workers' block writer writes them (items without a time axis).
    writer = client._client.NewTrajectoryWriter(
        reverb.pybind.ConstantChunkerOptions(max_chunk_length=1, num_keep_alive_refs=1), False)
    while not done.wait(rows / rate):
        meta = np.array([1, seq], np.int64)
        seq += 1
        refs = writer.Append([block, meta, signer.sign(BLOCK_TAG, C.QUEUE_TABLE, [block, meta])])
        writer.CreateItem(C.QUEUE_TABLE, 1.0, [[ref] for ref in refs], [True] * 3)
        writer.Flush(0, -1)


def drain(client, done, row_size):
    from tfagents_system.replay.auth import BlockCheck
    from tfagents_system.replay.memory import drain_queue

    check = BlockCheck(common.bench_signer(), row_size)
    while not done.wait(0.05):
        drain_queue(client, check)


if __name__ == "__main__":
    raise SystemExit(main())
