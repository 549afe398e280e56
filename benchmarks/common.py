"""Shared pieces of the throughput benchmark: the issue's setup, timing, results.

Every benchmark module runs as its own process (pinned by `benchmarks.run`)
and prints one JSON line, `RESULT {...}`, holding its measurements.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV_ID = "HalfCheetahBulletEnv-v0"
RESULT_PREFIX = "RESULT "
# The key every benchmark part signs and checks experience and weights with (an
# experiment's own key is random and secret; this one only has the right length).
BENCH_KEY = b"benchmark key, not a secret one."


def bench_signer():
    """A signer with BENCH_KEY, as the programs hold one with their experiment's key."""
    from tfagents_system.replay.auth import Signer

    return Signer(BENCH_KEY)


def quiet_imports() -> None:
    """TF, TF-Agents, gym and pybullet imported with their banners muted."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfagents_system import cli

    cli.import_quietly()


def bench_params(**overrides):
    """The issue's setup: HalfCheetahBulletEnv-v0, SAC with 256x256 networks, batch 256
    (the shipped halfcheetah example's settings, without its replay ratio)."""
    from tfagents_system.params import GymTrainParams

    attrs = {"n_buffer_init_episodes": 0, "n_eval_episodes": 0, "min_replay_size": 1,
             "num_iter": 1_000_000, **overrides}
    cls = type("BenchParams", (GymTrainParams,), attrs)
    params = cls({"env_id": ENV_ID})
    assert tuple(params.actor_fc_layers) == (256, 256) and params.batch_size == 256
    return params


def bench_settings(capacity: int):
    """The settings record of a benchmark's stand-in experiment: only its replay capacity
    matters to the parts the benchmarks build."""
    from tfagents_system.core.records import ExperimentSettings

    return ExperimentSettings("bench", "", "", "", 0, {}, {}, None, capacity)


def recurrent_bench_params():
    """bench_params with the LSTM actor and critic of the recurrent example
    (examples/pendulum_recurrent.py): 32 windows of 20 steps per gradient step,
    64-unit layers around an LSTM of 40."""
    params = bench_params()
    for name, value in {"recurrent": True, "recurrent_sequence_length": 20,
                        "recurrent_burn_in": 0, "batch_size": 32, "actor_fc_layers": (64,),
                        "critic_joint_fc_layers": (64,), "lstm_size": (40,),
                        "recurrent_output_fc_layers": (64,)}.items():
        setattr(params, name, value)
    return params


# The dict-observation rows: HalfCheetahBulletEnv-v0's 26 numbers as a dict of slices
# (sizes as in its observation: body state, joint positions and speeds, feet contacts).
DICT_SPLIT = (("body", 8), ("joints", 12), ("feet", 6))


def dict_bench_params(**overrides):
    """bench_params whose env gives the same observation as a dict (DICT_SPLIT): the
    default networks then combine it, the numpy policy and the packer handle leaves."""
    base = type(bench_params(**overrides))

    class DictBenchParams(base):
        def env_ctor(self, seed=None, *args, **kwargs):
            from tfagents_system.testing_envs import SplitObservation

            return SplitObservation(super().env_ctor(seed, *args, **kwargs), DICT_SPLIT)

    return DictBenchParams({"env_id": ENV_ID})


# Dynamics randomization and every perturbation wrapper on, at strengths that do work.
PERTURBED_CONFIG = {
    "domain_randomization": True,
    "perturbations": {"obs_noise_std": 0.01, "obs_delay_steps": 1, "action_noise_std": 0.05,
                      "action_latency_steps": 1, "action_repeat": 1, "push_force": 50.0,
                      "push_probability": 0.02, "push_duration_steps": 5},
}
PERTURBED_SPREADS = {"mass_scale_spread": 0.2, "friction_scale_spread": 0.2,
                     "joint_damping": 0.05}


PARAMS_FILE = '''"""Written by benchmarks/: the issue's setup for real worker processes."""
from tfagents_system.params import GymTrainParams


class TrainParams(GymTrainParams):
    n_buffer_init_episodes = 0
    n_eval_episodes = 0
    min_replay_size = 1
    num_iter = 1_000_000
    num_envs_per_worker = {num_envs}
'''


def median_rate(run, count: int, repeats: int, warmup=None) -> dict:
    """Run `run(count)` `repeats` times after a warm-up; events/s of each, and the median."""
    (warmup or run)(max(1, count // 4))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = run(count)
        rates.append((done if done is not None else count) / (time.perf_counter() - start))
    return {"median": statistics.median(rates), "runs": rates, "count": count}


def settle(max_s: float = 15.0, window_s: float = 0.25, busy: float = 0.05) -> None:
    """Wait until this process is idle: pipelines left with empty prefetch buffers
    refill in background threads, and that must not land in the next timing."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        cpu = time.process_time()
        time.sleep(window_s)
        if time.process_time() - cpu < busy * window_s:
            return


def emit(result: dict) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def read_result(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError("the benchmark printed no RESULT line")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def configure_threads(threads: int) -> None:
    """As the launcher does for a program on `threads` CPUs (process.configure_threads)."""
    os.environ["SAC_PROCESS_THREADS"] = str(threads)
    from tfagents_system import process

    process.configure_threads()


def real_transitions(writers, steps: int, seed: int = 0) -> None:
    """Collect `steps` HalfCheetah transitions with uniform random actions through our
    collection path, written by each of `writers` (one list per env)."""
    from tfagents_system import actors, collection
    from tfagents_system.builder import COLLECT, make_env

    params = bench_params()
    env = make_env(params, COLLECT, seed=seed)
    stats = collection.EpisodeStats(1)
    collector = collection.Collector([env], stats, lambda: None, lambda: False)
    collector.writers = [_Tee(writers)]
    actor = actors.RandomActor(env.action_spec(), seed)
    episode = 1000
    collector.run(actor, max(1, steps // episode))
    env.close()


class _Tee:
    def __init__(self, writers):
        self._writers = writers

    def add(self, *args):
        for writer in self._writers:
            writer.add(*args)
