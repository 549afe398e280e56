"""Learner gradient steps per second, side by side in one process.

- stock: TF-Agents' `Learner` fed by `ReverbReplayBuffer.as_dataset(num_steps=2)`
  (as TF-Agents' SAC example does), reading 2-step items;
- in-memory: the same SAC train step (`agent.train` under `tf.function`) on one
  fixed batch held in memory: no sampling at all;
- ours: `tfagents_system.learner`'s own data path and train loop for the item
  layout the learner picks: for packed_blocks, `make_memory_train_steps` on a
  `ReplayMemory` (with its log) that takes in the queue's blocks before every
  compiled call, as `run_learner` does, while the benchmark's server keeps
  feeding the queue.

With `--ideas`, also the alternatives measured while tuning (XLA, the previous
data path, our loop on the 2-step layout) and the sampling pipeline alone.
Variants are measured in interleaved rounds so a load change hits all of them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import common

CAPACITY = 1_000_000  # the default replay capacity


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", required=True, help='JSON {"layout": port}')
    parser.add_argument("--steps", type=int, default=1000, help="grad steps per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ideas", action="store_true")
    args = parser.parse_args(argv)
    common.quiet_imports()
    threads = len(os.sched_getaffinity(0))
    common.configure_threads(threads)
    import reverb
    import tensorflow as tf
    from tf_agents.replay_buffers import reverb_replay_buffer
    from tf_agents.train import learner as tfa_learner
    from tf_agents.utils import common as tfa_common

    from tfagents_system import builders, learner, replay_memory, runtime
    from tfagents_system import constants as C

    ports = json.loads(args.ports)
    address = {layout: f"localhost:{port}" for layout, port in ports.items()}
    params = common.bench_params()
    env = builders.make_env(params, builders.COLLECT, seed=0)
    train_step = tfa_common.create_variable("train_step", 0, dtype=tf.int64)
    agent = builders.make_agent(params, env.time_step_spec(), env.action_spec(), train_step)
    env.close()
    spec = agent.collect_data_spec
    layout, why = builders.choose_layout(agent, CAPACITY)
    batch_size = params.batch_size
    common.log(f"learner benchmark: {threads} CPU(s) {sorted(os.sched_getaffinity(0))}, "
               f"our layout {layout} ({why})")

    variants = {}

    memory_dir = tempfile.mkdtemp(prefix="replay_memory_")
    if layout == builders.LAYOUT_BLOCKS:
        packer = builders.TransitionPacker(spec.observation, spec.action)
        memory = replay_memory.ReplayMemory(CAPACITY, packer.size, Path(memory_dir))
        client = reverb.Client(address[layout])
        memory.add(replay_memory.drain_queue(client))  # the server's prefill
        memory_steps, memory_batch = learner.make_memory_train_steps(agent, memory, batch_size,
                                                                   packer)
        fixed = memory_batch()
    else:
        replay = learner.ReplayConnection(address[layout], spec, batch_size, lambda: False,
                                          logging.getLogger("bench"), layout)
        fixed = next(replay.iterator)
    taken_in = [0]
    # Run before a variant's timing (untimed). The queue keeps filling while the
    # other variants run; a learner takes it in every call, so "ours" starts each
    # timing with the backlog taken in and then pays for what arrives meanwhile.
    prepare = {}

    # in-memory: the SAC train step on one fixed batch (taken from our pipeline).

    @tf.function
    def in_memory(n):
        for _ in tf.range(n):
            agent.train(fixed)

    variants["in_memory"] = lambda n: in_memory(tf.constant(n))

    # stock: TF-Agents' Learner + ReverbReplayBuffer.as_dataset(num_steps=2).
    stock_buffer = reverb_replay_buffer.ReverbReplayBuffer(
        spec, table_name=C.EXPERIENCE_TABLE, sequence_length=C.SEQUENCE_LENGTH,
        server_address=address[builders.LAYOUT_STEPS])
    stock_dataset = stock_buffer.as_dataset(sample_batch_size=batch_size,
                                            num_steps=C.SEQUENCE_LENGTH).prefetch(50)
    stock_root = tempfile.mkdtemp(prefix="stock_learner_")
    stock = tfa_learner.Learner(stock_root, train_step, agent,
                                experience_dataset_fn=lambda: stock_dataset)
    variants["stock"] = lambda n: stock.run(iterations=n)

    # ours: the learner's own data path and loop, in chunks as run_learner calls it.
    train_steps = learner.make_train_steps(agent)

    def chunks(fn, iterator):
        def run(n):
            done = 0
            while done < n:
                k = min(learner.MAX_STEPS_PER_CALL, n - done)
                fn(tf.constant(k, dtype=tf.int64), iterator)
                done += k
        return run

    if layout == builders.LAYOUT_BLOCKS:
        def take_in():
            rows = replay_memory.drain_queue(client, learner.DRAIN_MAX_BLOCKS)
            if rows is not None:
                memory.add(rows)
                taken_in[0] += len(rows)

        def ours(n):
            done = 0
            while done < n:
                take_in()
                k = min(learner.MAX_STEPS_PER_CALL, n - done)
                memory_steps(tf.constant(k, dtype=tf.int64))
                done += k

        variants["ours"] = ours
        prepare["ours"] = take_in
    else:
        variants["ours"] = chunks(train_steps, replay.iterator)

    if args.ideas:
        @tf.function(jit_compile=True)
        def xla_step(batch):
            return agent.train(batch).loss

        @tf.function
        def in_memory_xla(n):
            for _ in tf.range(n):
                xla_step(fixed)

        variants["idea_xla_in_memory"] = lambda n: in_memory_xla(tf.constant(n))

        packed_replay = learner.ReplayConnection(
            address[builders.LAYOUT_PACKED], spec, batch_size, lambda: False,
            logging.getLogger("bench"), builders.LAYOUT_PACKED)
        variants["idea_reverb_sampled"] = chunks(learner.make_train_steps(agent),
                                                 packed_replay.iterator)
        steps_replay = learner.ReplayConnection(
            address[builders.LAYOUT_STEPS], spec, batch_size, lambda: False,
            logging.getLogger("bench"), builders.LAYOUT_STEPS)
        variants["idea_ours_steps_layout"] = chunks(learner.make_train_steps(agent),
                                                    steps_replay.iterator)
        # The data path before this work: map every item, then batch, 2-step items.
        dtypes = tf.nest.map_structure(lambda s: s.dtype, spec)
        shapes = tf.nest.map_structure(
            lambda s: tf.TensorShape([C.SEQUENCE_LENGTH]).concatenate(s.shape), spec)
        previous = reverb.TrajectoryDataset(
            address[builders.LAYOUT_STEPS], C.EXPERIENCE_TABLE, dtypes, shapes,
            max_in_flight_samples_per_worker=2 * batch_size).map(lambda s: s.data).batch(
                batch_size, drop_remainder=True).prefetch(2)
        variants["idea_previous_path"] = chunks(learner.make_train_steps(agent),
                                                iter(previous))

        @tf.function
        def drain(iterator, n):
            total = tf.constant(0.0)
            for _ in tf.range(n):
                total += tf.reduce_sum(learner.batch_time_steps(next(iterator)).discount)
            return total

        sampling_it = iter(builders.experience_dataset(
            address[builders.LAYOUT_PACKED], spec, batch_size, layout=builders.LAYOUT_PACKED))
        variants["sampling_only"] = lambda n: drain(sampling_it, tf.constant(n))

    runtime.freeze_heap()  # as the learner does before it trains
    for name, run in variants.items():  # trace and warm up every variant first
        common.log(f"warming up {name}")
        run(max(20, args.steps // 10))
    runs = {name: [] for name in variants}
    cpu = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.repeats):
        # Each round starts one variant later, so a periodic disturbance spreads out.
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            run = variants[name]
            prepare.get(name, lambda: None)()
            common.settle()
            cpu0, start = time.process_time(), time.perf_counter()
            run(args.steps)
            wall = time.perf_counter() - start
            runs[name].append(args.steps / wall)
            cpu[name].append((time.process_time() - cpu0) / args.steps * 1000)
        common.log(f"round {round_index + 1}/{args.repeats}: " + ", ".join(
            f"{name} {runs[name][-1]:.1f}/s" for name in names))
    shutil.rmtree(stock_root, ignore_errors=True)
    shutil.rmtree(memory_dir, ignore_errors=True)
    common.emit({
        "threads": threads, "cpus": sorted(os.sched_getaffinity(0)), "layout": layout,
        "taken_in": taken_in[0],
        "steps": args.steps, "repeats": args.repeats,
        "rates": {name: statistics.median(r) for name, r in runs.items()},
        "runs": runs,
        "cpu_ms_per_step": {name: statistics.median(c) for name, c in cpu.items()},
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
