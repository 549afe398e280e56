"""Real worker processes: collection rate of N workers against one, and weight staleness.

This process plays the learner's part: it holds a Reverb server with the tables
`tables.make_tables` builds (its threads float over every CPU), exports the
policies and publishes weights like the learner. Workers are the real program
(`python -m tfagents_system.collect_worker`), each pinned with taskset to one
CPU with one TF thread, as the launcher starts them. The rate is the number of
transitions the workers deliver: the growth of the experience table (one item
per env step), or with packed_blocks the rows this process takes out of the
experience queue, as the learner would.

Staleness: the weights are published again every `--publish_interval` seconds
with a new train step; every worker records in its status file when it started
acting with fetched weights (`weights_time`, with `train_step_seen`). For each
publication the staleness is the time until the last worker acts with those
weights (or newer ones).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import common


class Workers:
    def __init__(self, exp: Path, address: str, cpus: list[int], tag: str):
        self.procs = []
        env = {**os.environ, "PYTHONPATH": str(common.REPO), "SAC_PROCESS_THREADS": "1",
               "TF_CPP_MIN_LOG_LEVEL": "3"}
        for i, cpu in enumerate(cpus):
            log = open(exp / "process_logs" / f"{tag}_worker_{i}.log", "w")
            self.procs.append(subprocess.Popen(
                ["taskset", "-c", str(cpu), sys.executable, "-m",
                 "tfagents_system.collect_worker", "--exp_dir", str(exp), "--address", address,
                 "--worker_index", str(i), "--num_workers", str(len(cpus))],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=common.REPO))

    def check(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited with {proc.returncode}; see its log")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def read_status(path: Path):
    """A worker's status record (None while it has none)."""
    from tfagents_system.core.records import WorkerStatus

    return WorkerStatus.read_or_none(path)


def measure_staleness(weights, variables, status_files, publishes: int,
                      interval: float) -> list[float]:
    """Per publication: seconds until the last worker acts with those weights (or newer)."""
    seen: list[list[tuple[int, float]]] = [[] for _ in status_files]

    def poll() -> None:
        for i, path in enumerate(status_files):
            s = read_status(path)
            if s and s.weights_time is not None:
                record = (int(s.train_step_seen), float(s.weights_time))
                if record not in seen[i]:
                    seen[i].append(record)

    published = []
    for j in range(1, publishes + 1):
        until = time.monotonic() + interval
        while time.monotonic() < until:
            poll()
            time.sleep(0.02)
        weights.publish(variables, 1000 * j)
        published.append((1000 * j, time.time()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
            any(step >= 1000 * publishes for step, _ in records) for records in seen):
        poll()
        time.sleep(0.02)
    staleness = []
    for step, when in published:
        lags = []
        for records in seen:
            times = [t for s, t in records if s >= step]
            lags.append(min(times) - when if times else float("nan"))
        staleness.append(max(lags))
    return staleness


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max_workers", type=int, default=0, help="0: one per available CPU")
    parser.add_argument("--items_per_worker", type=int, default=10_000,
                        help="env steps per worker in one timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--publishes", type=int, default=10)
    parser.add_argument("--publish_interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    common.quiet_imports()
    import reverb
    import tensorflow as tf
    from tf_agents.policies import greedy_policy
    from tf_agents.utils import common as tfa_common

    from tfagents_system.agents.export import export_policy
    from tfagents_system.builder import Builder
    from tfagents_system.core import constants as C
    from tfagents_system.core.paths import ExperimentPaths
    from tfagents_system.replay import tables
    from tfagents_system.replay.auth import BlockCheck
    from tfagents_system.replay.client import WeightsExchange
    from tfagents_system.replay.format import LAYOUT_BLOCKS
    from tfagents_system.replay.memory import drain_queue
    from tfagents_system.replay.packing import TransitionPacker

    available = sorted(os.sched_getaffinity(0))
    max_workers = args.max_workers or len(available)
    counts = sorted({1, max_workers})
    exp = Path(tempfile.mkdtemp(prefix="scaling_bench_"))
    paths = ExperimentPaths(exp)
    for sub in ("process_logs", "status"):
        (exp / sub).mkdir()
    params = common.bench_params()
    (exp / C.PARAMS_COPY).write_text(common.PARAMS_FILE.format(
        num_envs=params.num_envs_per_worker))
    (exp / C.CONFIG_COPY).write_text(json.dumps(params.env_config))
    common.bench_settings(2_000_000).write(exp / C.SETTINGS_FILE)
    train_step = tfa_common.create_variable("train_step", 0, dtype=tf.int64)
    agent = Builder(params).agent(train_step)
    ours = Builder(params).choose_replay_format(agent, 1_000_000)  # the default capacity
    layout = ours.layout
    ours.write(paths.layout)
    export_policy(agent.collect_policy, train_step, paths.policy(C.COLLECT_POLICY))
    export_policy(greedy_policy.GreedyPolicy(agent.policy), train_step,
                  paths.policy(C.GREEDY_POLICY))
    variables = agent.collect_policy.variables()
    server = reverb.Server(tables.make_tables(params.replay_settings(2_000_000), ours),
                           port=None)
    address = f"localhost:{server.port}"
    client = reverb.Client(address)
    paths.replay_key.write_bytes(common.BENCH_KEY)  # the workers read it there
    weights = WeightsExchange(client, common.bench_signer())
    weights.publish(variables, 0)

    taken = [0]
    stop_draining = threading.Event()

    def drain() -> None:  # the learner's part: the queue never fills, workers never wait
        drain_client = reverb.Client(address)
        check = BlockCheck(common.bench_signer(), TransitionPacker.for_spec(
            agent.collect_data_spec).size)
        while not stop_draining.wait(0.02):
            rows = drain_queue(drain_client, check)
            taken[0] += 0 if rows is None else len(rows)

    drainer = threading.Thread(target=drain, daemon=True)
    if layout == LAYOUT_BLOCKS:
        drainer.start()

    def size() -> int:
        if layout != LAYOUT_BLOCKS:
            return client.server_info()[C.EXPERIENCE_TABLE].current_size
        return taken[0]

    results = {"cpus": available, "layout": layout, "rates": {}, "runs": {}}
    for n in counts:
        for status in (exp / "status").glob("*.json"):
            status.unlink()
        cpus = [available[i % len(available)] for i in range(n)]
        common.log(f"starting {n} worker process(es) on CPUs {cpus}")
        workers = Workers(exp, address, cpus, f"n{n}")
        try:
            status_files = [exp / "status" / f"{C.worker_name(i)}.json" for i in range(n)]
            deadline = time.monotonic() + 300
            while not all((s := read_status(p)) and s.env_steps > 0
                          for p in status_files):
                workers.check()
                if time.monotonic() > deadline:
                    raise TimeoutError("workers did not start collecting within 300 s")
                time.sleep(0.2)
            time.sleep(1.0)  # every worker is in its collection loop
            target = args.items_per_worker * n
            runs = []
            for _ in range(args.repeats):
                start_size, start = size(), time.perf_counter()
                while (grown := size() - start_size) < target:
                    time.sleep(0.02)
                runs.append(grown / (time.perf_counter() - start))
                workers.check()
            results["rates"][str(n)] = statistics.median(runs)
            results["runs"][str(n)] = runs
            common.log(f"{n} worker(s): " + ", ".join(f"{r:.0f}" for r in runs)
                       + " env steps/s")
            if n == counts[-1]:
                staleness = measure_staleness(weights, variables, status_files,
                                              args.publishes, args.publish_interval)
                results["staleness_s"] = staleness
                results["staleness_workers"] = n
                common.log("staleness (s): " + ", ".join(f"{s:.2f}" for s in staleness))
        finally:
            workers.stop()
    stop_draining.set()
    if drainer.is_alive():
        drainer.join(timeout=10)
    server.stop()
    shutil.rmtree(exp, ignore_errors=True)  # kept (with the worker logs) if anything failed
    common.emit(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
