"""Does the default path still compute the same numbers? Two checkouts, one answer each:

    ./benchmarks/run.sh same_numbers --before /path/to/old/checkout [--steps 20]

A change that adds options (gSDE, CrossQ, ...) must leave SAC's default path as it
was. Throughput is `ab`'s question; this one is the arithmetic. In each checkout's own
interpreter (its code, this script's probe) it builds the default agent
(`TrainParamsBase` on Pendulum-v1) with fixed seeds and deterministic ops on one
thread, trains it `--steps` gradient steps on fixed synthetic batches, then has the
workers' numpy actor sample and act greedily from the trained weights. It compares:

- the losses of every step and every variable of the agent after the last one,
- the actions the numpy actor samples (its seeded noise) and its greedy actions.

Equal to the last bit: the two revisions give the same training and the same
collection, hence the same returns for the same seeds. It prints a line per part
and exits 1 when any part differs (with the largest difference).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import common

# Runs in each checkout's interpreter: only APIs both revisions have.
_PROBE = """
import json, sys
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()
tf.keras.utils.set_random_seed(0)  # Python's too: unseeded Keras initializers use it
from tf_agents.trajectories import trajectory
from tf_agents.utils import common as tfa_common
from tfagents_system import actors
from tfagents_system.builder import Builder
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase

class Params(TrainParamsBase):
    def env_ctor(self, seed=None, *args, **kwargs):
        return load_gym_env("Pendulum-v1", seed=seed)

steps = int(sys.argv[1])
params = Params()
env = params.env_ctor(seed=0)
agent = Builder(params).agent(tfa_common.create_variable("train_step", 0, dtype=tf.int64),
                              (env.time_step_spec(), env.action_spec()))
rng = np.random.default_rng(0)
def batch(size=64):
    normal = lambda *shape: tf.constant(rng.normal(size=shape).astype(np.float32))
    return trajectory.Trajectory(
        step_type=tf.zeros([size, 2], tf.int32) + [[0, 1]], observation=normal(size, 2, 3),
        action=tf.clip_by_value(normal(size, 2, 1), -2, 2), policy_info=(),
        next_step_type=tf.ones([size, 2], tf.int32), reward=normal(size, 2),
        discount=tf.ones([size, 2]))
losses = [float(agent.train(batch()).loss.numpy()) for _ in range(steps)]
variables = {v.name: v.numpy().ravel().tolist() for v in agent.variables}
actor, _ = actors.NumpyActor.from_network(agent._actor_network, env.action_spec(), seed=1)
actor.set_weights([v.numpy() for v in agent.collect_policy.variables()])
obs = rng.normal(size=(16, 3)).astype(np.float32)
result = {"losses": losses, "variables": variables,
          "sampled": np.concatenate([actor.sample(obs) for _ in range(3)]).ravel().tolist(),
          "greedy": actor.greedy(obs).ravel().tolist()}
print("NUMBERS " + json.dumps(result))
"""


def probe(checkout: Path, steps: int) -> dict:
    """The numbers of `checkout`'s default path (the probe run with its code)."""
    env = dict(os.environ, PYTHONPATH=str(checkout), TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")  # set order: op creation order
    result = subprocess.run([sys.executable, "-c", _PROBE, str(steps)], cwd=checkout, env=env,
                            capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("NUMBERS ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"error: the probe failed in {checkout}:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("NUMBERS "):])


def largest_difference(before, after) -> float | None:
    """The largest absolute difference between two probes' values of one part; None
    when their shapes differ (variables added, removed or renamed)."""
    if isinstance(before, dict):
        if sorted(before) != sorted(after):
            return None
        diffs = [largest_difference(before[k], after[k]) for k in before]
        return None if None in diffs else max(diffs, default=0.0)
    if len(before) != len(after):
        return None
    return max((abs(a - b) for a, b in zip(before, after)), default=0.0)


def compare(before: dict, after: dict) -> list[tuple[str, bool, str]]:
    """(part, same, what differs) per part of the probe."""
    rows = []
    for part in ("losses", "variables", "sampled", "greedy"):
        same = before[part] == after[part]
        diff = largest_difference(before[part], after[part])
        detail = ("equal to the last bit" if same else
                  "different variables (names or shapes)" if diff is None else
                  f"largest difference {diff:.3g}")
        rows.append((part, same, detail))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True,
                        help="a checkout of the revision to compare with")
    parser.add_argument("--steps", type=int, default=20, help="gradient steps to train")
    args = parser.parse_args(argv)
    if not (args.before / "tfagents_system" / "params.py").is_file():
        parser.error(f"--before {args.before}: not a checkout of this project")
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    rows = compare(probe(args.before.resolve(), args.steps), probe(common.REPO, args.steps))
    for part, _, detail in rows:
        print(f"{part}: {detail}")
    same = all(s for _, s, _ in rows)
    print("the default path computes the same numbers" if same else
          "the default path's numbers changed")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
