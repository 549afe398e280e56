"""Learner gradient steps per second, side by side in one process.

- stock: TF-Agents' `Learner` fed by `ReverbReplayBuffer.as_dataset(num_steps=2)`
  (as TF-Agents' SAC example does), reading 2-step items;
- in-memory: the same SAC train step (`agent.train` under `tf.function`) on one
  fixed batch held in memory: no sampling at all;
- ours: the learner's own data source and compiled train loop for the replay
  format a launch picks (`builder.Builder.data_source` and
  `Builder.train_loop`): for packed_blocks, a `MemorySource` whose
  `ReplayMemory` (with its log) takes in the queue's blocks before every compiled
  call, as the learner does, while the benchmark's server keeps feeding the queue;
- ours_dict: ours for the env's observation given as a dict of its slices
  (`common.dict_bench_params`): the combiner in the actor and critics, the
  packed rows unpacked into dict leaves; its memory starts as a copy of ours'
  (rows of the same size) and takes in the same queue;
- ours_recurrent: the LSTM agent of the recurrent example (`common.
  recurrent_bench_params`: 32 windows of 20 steps per gradient step) on its own
  memory of replay windows cut from random episodes (nothing taken in).

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


class _IteratorSource:
    """A batch iterator as a data source (the data path before this work)."""

    def __init__(self, iterator):
        self._iterator = iterator

    def take_in(self, train_step):
        return None

    def next_batch(self, iterator):
        return next(iterator)

    def loop_args(self):
        return (self._iterator,)


def recurrent_source(train_step, memory_dir: str, link, log):
    """(memory source, agent) of the recurrent rows: the LSTM agent and a replay memory
    of the windows of 3000 random env steps; its `take_in` takes nothing (the queue
    holds the other variants' transitions)."""
    from tfagents_system.builder import Builder
    from tfagents_system.core.paths import ExperimentPaths
    from tfagents_system.testing_envs import random_rows

    params = common.recurrent_bench_params()
    builder = Builder(params, ExperimentPaths(Path(tempfile.mkdtemp(
        prefix="replay_memory_recurrent_", dir=memory_dir))), common.bench_settings(CAPACITY))
    agent = builder.agent(train_step)
    replay_format = builder.choose_replay_format(agent, CAPACITY)
    env = builder.env("collect", seed=0)
    rows = random_rows(env, replay_format.packer(), 3000, seed=0)
    env.close()
    source = builder.data_source(replay_format, agent, link, lambda: False, log)
    source.memory.add(rows)
    source.take_in = lambda train_step: None
    return source, agent


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

    from tfagents_system import learner, process
    from tfagents_system.builder import Builder
    from tfagents_system.core import constants as C
    from tfagents_system.core.paths import ExperimentPaths
    from tfagents_system.replay import datasets
    from tfagents_system.replay.client import ServerLink
    from tfagents_system.replay.format import LAYOUT_PACKED, LAYOUT_STEPS, ReplayFormat

    ports = json.loads(args.ports)
    address = {layout: f"localhost:{port}" for layout, port in ports.items()}
    params = common.bench_params()
    train_step = tfa_common.create_variable("train_step", 0, dtype=tf.int64)
    agent = Builder(params).agent(train_step)
    spec = agent.collect_data_spec
    ours = Builder(params).choose_replay_format(agent, CAPACITY)
    layout = ours.layout
    batch_size = params.batch_size
    common.log(f"learner benchmark: {threads} CPU(s) {sorted(os.sched_getaffinity(0))}, "
               f"our layout {layout} ({ours.reason})")

    variants = {}

    memory_dir = tempfile.mkdtemp(prefix="replay_memory_")
    log = logging.getLogger("bench")

    def source_of(replay_format, trained=agent, bench=params, directory=memory_dir):
        """The learner's data source (as its builder makes it) for a replay format, on
        the benchmark's server for that layout (and for signed rows)."""
        server = replay_format.layout + ("+signed" if replay_format.signed_rows else "")
        link = ServerLink(address[server], lambda: False, log, common.bench_signer())
        builder = Builder(bench, ExperimentPaths(Path(directory)),
                          common.bench_settings(CAPACITY))
        return builder.data_source(replay_format, trained, link, lambda: False, log)

    def packed(layout_name, data_spec=spec, signed=False):
        return ReplayFormat(layout_name, signed_rows=signed).bind(data_spec.observation,
                                                                  data_spec.action)

    source = source_of(ours)
    source.take_in(0)  # the server's prefill (nothing to take in for Reverb-sampled layouts)
    fixed = source.sample()
    memory = getattr(source, "memory", None)
    inserted_before = memory.inserted if memory is not None else 0
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
        server_address=address[LAYOUT_STEPS])
    stock_dataset = stock_buffer.as_dataset(sample_batch_size=batch_size,
                                            num_steps=C.SEQUENCE_LENGTH).prefetch(50)
    stock_root = tempfile.mkdtemp(prefix="stock_learner_")
    stock = tfa_learner.Learner(stock_root, train_step, agent,
                                experience_dataset_fn=lambda: stock_dataset)
    variants["stock"] = lambda n: stock.run(iterations=n)

    # ours: the learner's data source and compiled loop, in chunks as the learner calls
    # them (taking in what waits in the queue before every call).
    def chunks(data, trained=agent):
        train_steps = Builder.train_loop(trained, data)

        def run(n):
            done = 0
            while done < n:
                data.take_in(0)
                k = min(learner.MAX_STEPS_PER_CALL, n - done)
                train_steps(tf.constant(k, dtype=tf.int64), *data.loop_args())
                done += k
        return run

    variants["ours"] = chunks(source)
    prepare["ours"] = lambda: source.take_in(0)

    # ours_dict: the same numbers as a dict observation (same row size, same layout).
    dict_params = common.dict_bench_params()
    dict_agent = Builder(dict_params).agent(train_step)
    dict_source = source_of(Builder(dict_params).choose_replay_format(dict_agent, CAPACITY),
                            dict_agent, dict_params,
                            tempfile.mkdtemp(prefix="replay_memory_dict_"))
    if memory is not None:
        dict_source.memory.add(memory.rows[:int(memory.size.numpy())].numpy())
    variants["ours_dict"] = chunks(dict_source, dict_agent)
    prepare["ours_dict"] = lambda: dict_source.take_in(0)
    variants["ours_recurrent"] = chunks(*recurrent_source(
        train_step, memory_dir, ServerLink(address[layout], lambda: False, log,
                                           common.bench_signer()), log))

    if args.ideas:
        @tf.function(jit_compile=True)
        def xla_step(batch):
            return agent.train(batch).loss

        @tf.function
        def in_memory_xla(n):
            for _ in tf.range(n):
                xla_step(fixed)

        variants["idea_xla_in_memory"] = lambda n: in_memory_xla(tf.constant(n))

        variants["idea_reverb_sampled"] = chunks(source_of(packed(LAYOUT_PACKED)))
        if f"{LAYOUT_PACKED}+signed" in address:  # each row's signature checked
            variants["idea_reverb_sampled_signed"] = chunks(
                source_of(packed(LAYOUT_PACKED, signed=True)))
        variants["idea_ours_steps_layout"] = chunks(source_of(packed(LAYOUT_STEPS)))
        # The data path before this work: map every item, then batch, 2-step items.
        dtypes = tf.nest.map_structure(lambda s: s.dtype, spec)
        shapes = tf.nest.map_structure(
            lambda s: tf.TensorShape([C.SEQUENCE_LENGTH]).concatenate(s.shape), spec)
        previous = reverb.TrajectoryDataset(
            address[LAYOUT_STEPS], C.EXPERIENCE_TABLE, dtypes, shapes,
            max_in_flight_samples_per_worker=2 * batch_size).map(lambda s: s.data).batch(
                batch_size, drop_remainder=True).prefetch(2)
        variants["idea_previous_path"] = chunks(_IteratorSource(iter(previous)))

        @tf.function
        def drain(iterator, n):
            total = tf.constant(0.0)
            for _ in tf.range(n):
                total += tf.reduce_sum(learner.batch_time_steps(next(iterator)).discount)
            return total

        sampling_it = iter(datasets.experience_dataset(
            address[LAYOUT_PACKED], packed(LAYOUT_PACKED), batch_size))
        variants["sampling_only"] = lambda n: drain(sampling_it, tf.constant(n))

    process.freeze_heap()  # as the learner does before it trains
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
        "taken_in": (memory.inserted - inserted_before) if memory is not None else 0,
        "steps": args.steps, "repeats": args.repeats,
        "rates": {name: statistics.median(r) for name, r in runs.items()},
        "runs": runs,
        "cpu_ms_per_step": {name: statistics.median(c) for name, c in cpu.items()},
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
