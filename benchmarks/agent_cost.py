"""What a gradient step of each learning variant costs, side by side in one process:
`./benchmarks/run.sh agent_cost [--task T] [--variants sac crossq_w256 crossq_w512 crossq]`
(writes docs/agent_cost.md).

Each variant is the locomotion preset on the task with the variant's settings
(`benchmarks.learning.VARIANTS`: the same overrides and config entries the learning
benchmark launches), its agent built by the learner's own `Builder`. Its compiled
train step is timed on batches drawn from one fixed set of real transitions held in
memory (the env stepped with uniform random actions), so the figure is the agent's
cost alone: no replay sampling, no workers. Rounds interleave the variants, so a
load change hits every one of them; the table gives the median gradient steps/s and
the cost per step relative to the first variant.

The learning benchmark's wall clock to each mark adds collection, evaluation and the
replay path to this; the ratio here says what a wider critic costs by itself.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
from pathlib import Path

from benchmarks import common
from benchmarks.run import describe_machine


def build_variant(task: str, variant: str, seed: int):
    """(params, agent, packer) of one variant on `task`."""
    import tensorflow as tf
    from tf_agents.utils import common as tf_common

    from benchmarks.learning import preset_params
    from tfagents_system.builder import Builder
    from tfagents_system.replay.packing import TransitionPacker

    params = preset_params({}, task, variant)
    tf.random.set_seed(seed)
    agent = Builder(params).agent(tf_common.create_variable("train_step", 0, dtype=tf.int64))
    return params, agent, TransitionPacker.for_spec(agent.collect_data_spec)


def random_transitions(params, packer, count: int, seed: int):
    """`count` packed transitions of the env under uniform random actions."""
    import numpy as np

    env = params.env_ctor(seed)
    spec = env.action_spec()
    rng = np.random.default_rng(seed)
    rows = np.zeros((count, packer.size), np.float32)
    time_step = env.reset()
    for i in range(count):
        action = rng.uniform(spec.minimum, spec.maximum, spec.shape).astype(spec.dtype)
        next_time_step = env.step(action)
        packer.pack(time_step, action, next_time_step, out=rows[i])
        time_step = env.reset() if next_time_step.is_last() else next_time_step
    env.close()
    return rows


def timed_steps(agent, packer, rows, batch: int, rng):
    """run(count): `count` compiled train steps on batches of `rows`; the last loss."""
    import tensorflow as tf

    train = tf.function(lambda packed: agent.train(packer.unpack(packed)).loss)

    def run(count: int) -> float:
        for _ in range(count):
            loss = train(tf.constant(rows[rng.integers(0, len(rows), batch)]))
        return float(loss)

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default=common.ENV_ID)
    parser.add_argument("--variants", nargs="+",
                        default=["sac", "crossq_w256", "crossq_w512", "crossq"])
    parser.add_argument("--steps", type=int, default=40, help="gradient steps per timing")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000,
                        help="transitions the batches are drawn from")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs" / "agent_cost.md",
                        help="also write the table to this file (default: docs/agent_cost.md)")
    args = parser.parse_args(argv)
    from benchmarks.learning import VARIANTS

    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants {' '.join(unknown)}: one of {', '.join(VARIANTS)}")
    common.quiet_imports()
    common.configure_threads(args.threads)
    import numpy as np

    rng = np.random.default_rng(0)
    steps, rows = {}, None
    for variant in args.variants:
        params, agent, packer = build_variant(args.task, variant, seed=0)
        if rows is None:  # every variant trains on the same transitions
            common.log(f"stepping {args.task} {args.rows} times with random actions")
            rows = random_transitions(params, packer, args.rows, seed=0)
        steps[variant] = timed_steps(agent, packer, rows, params.batch_size, rng)
        steps[variant](3)  # trace and warm up
    rates = {variant: [] for variant in args.variants}
    for round_index in range(args.rounds):
        for variant, run in steps.items():
            start = time.perf_counter()
            loss = run(args.steps)
            rates[variant].append(args.steps / (time.perf_counter() - start))
            if not np.isfinite(loss):
                raise SystemExit(f"variant {variant}: the loss is {loss}")
        common.log(f"round {round_index + 1}/{args.rounds}: " + ", ".join(
            f"{v} {r[-1]:.1f}/s" for v, r in rates.items()))
    base = statistics.median(rates[args.variants[0]])
    machine = describe_machine()
    lines = [f"Gradient steps/s of one train step on a fixed in-memory batch, {args.task}, "
             f"{args.threads} TF threads, median of {args.rounds} rounds of {args.steps} "
             f"steps ({machine['cpu_model']}, {len(machine['available_cpus'])} CPUs, "
             f"load average {os.getloadavg()[0]:.2f}, code git {machine['revision']}, "
             f"{datetime.date.today()}):", "",
             f"| variant | gradient steps/s | cost per step vs {args.variants[0]} |",
             "|---|---|---|"]
    for variant, values in rates.items():
        rate = statistics.median(values)
        lines.append(f"| {variant} | {rate:.1f} | {base / rate:.1f}x |")
    table = "\n".join(lines) + "\n"
    print(table)
    args.output.write_text(f"# The cost of a gradient step per learning variant\n\n"
                           f"Written by `./benchmarks/run.sh agent_cost` (module docstring: "
                           f"what is measured).\n\n{table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
