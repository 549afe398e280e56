"""The throughput benchmark: `./benchmarks/run.sh [--quick] [--output FILE]`.

Measures, side by side in one run, every figure of the throughput issue against
its baseline on HalfCheetahBulletEnv-v0 specs (256x256 networks, batch 256),
prints a table and writes it with a description of the machine to
docs/performance.md. Each part runs in its own processes, pinned like the
launcher pins the programs:

1. learner (benchmarks/learner_bench.py): pinned to the CPUs the launcher's
   automatic layout gives the learner, with the same TF thread settings; its
   replay server (benchmarks/bench_server.py, prefilled with real transitions)
   on the replay server's CPUs;
2. worker (benchmarks/worker_bench.py): one process on one CPU, the replay
   server on another;
3. N workers and weight staleness (benchmarks/scaling_bench.py): real worker
   processes pinned one per CPU, the replay server floating.

The learner's and the worker's alternatives (`--ideas`) run in a second process
each, after the figures, so their pipelines do not share a process with them.

A full run takes about 9 minutes on an idle 2-CPU machine. `--quick` takes
shorter runs (about 2 minutes in all) for checking the benchmark itself; its
figures are noisier and the document says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import common

FULL = {"prefill": 20_000, "feed_rate": 2000, "learner_steps": 400, "learner_repeats": 7,
        "worker_steps": 3000, "worker_repeats": 7, "ideas_repeats": 3,
        "scaling_items": 10_000, "scaling_repeats": 3, "publishes": 10, "signing_items": 2000}
QUICK = {"prefill": 5000, "feed_rate": 2000, "learner_steps": 150, "learner_repeats": 2,
         "worker_steps": 1000, "worker_repeats": 2, "ideas_repeats": 1,
         "scaling_items": 3000, "scaling_repeats": 1, "publishes": 3, "signing_items": 300}
PROGRESS = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


class Child:
    """A benchmark process: its progress lines shown, everything kept in a log file."""

    def __init__(self, args: list[str], cpus: list[int] | None, log_path: Path,
                 stdin=subprocess.DEVNULL):
        command = [sys.executable, "-m", *args]
        if cpus is not None:
            command = ["taskset", "-c", ",".join(map(str, cpus)), *command]
        env = {**os.environ, "PYTHONPATH": str(common.REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(command, env=env, cwd=common.REPO, stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, True)),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, False))]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def _pump(self, stream, keep: bool) -> None:
        for line in stream:
            self._log.write(line)
            self._log.flush()
            if keep:
                self.stdout.append(line)
            if PROGRESS.match(line):
                print("  " + line.rstrip(), file=sys.stderr, flush=True)

    def result(self, timeout: float) -> dict:
        """The RESULT line, once it is printed (the process may go on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stdout):
                if line.startswith(common.RESULT_PREFIX):
                    return json.loads(line[len(common.RESULT_PREFIX):])
            if self.proc.poll() is not None:
                for thread in self._threads:
                    thread.join(timeout=5)
                if any(line.startswith(common.RESULT_PREFIX) for line in self.stdout):
                    continue
                raise RuntimeError(self._failure(f"exited with {self.proc.returncode}"))
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(self._failure(f"gave no result within {timeout:.0f} s"))

    def _failure(self, what: str) -> str:
        tail = self.log_path.read_text().splitlines()[-25:]
        return f"{' '.join(self.proc.args[-6:])} {what}; log {self.log_path}:\n" + "\n".join(tail)

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def replay_server(cpus, prefill: int, log_dir: Path, name: str, extra: list[str]):
    server = Child(["benchmarks.bench_server", "--prefill", str(prefill), *extra], cpus,
                   log_dir / f"{name}.log", stdin=subprocess.PIPE)
    return server, server.result(timeout=600)


# --- the machine ---

def describe_machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    total = re.search(r"MemTotal:\s+(\d+) kB", mem)
    versions = {}
    for dist in ("tensorflow", "tf-agents", "dm-reverb", "tensorflow-probability", "numpy",
                 "gym", "pybullet"):
        try:
            from importlib.metadata import version

            versions[dist] = version(dist)
        except Exception:  # not installed under that name
            versions[dist] = "?"
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=common.REPO,
                                  capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=common.REPO, capture_output=True, text=True).stdout.strip()
        revision += " (with uncommitted changes)" if dirty else ""
    except OSError:
        revision = "?"
    return {
        "cpu_model": models[0] if models else platform.processor() or "?",
        "logical_cpus": os.cpu_count(),
        "available_cpus": sorted(os.sched_getaffinity(0)),
        "memory_gib": round(int(total.group(1)) / 2**20, 1) if total else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "revision": revision,
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "load_before": os.getloadavg(),
    }


# --- the report ---

def _ratio(value, baseline) -> float:
    return value / baseline if baseline else float("nan")


def round_ratio(result: dict, key: str, base: str) -> float:
    """Median over the interleaved rounds of key/base measured in the same round: a
    load change between rounds moves both."""
    runs = result["runs"]
    return statistics.median(a / b for a, b in zip(runs[key], runs[base]))


def build_rows(learner: dict, worker: dict, scaling: dict) -> list[dict]:
    lr, wr, sr = learner["rates"], worker["rates"], scaling["rates"]
    n_max = max(int(n) for n in sr)
    rows = [
        {"figure": "learner grad steps/s: ours vs in-memory", "value": lr["ours"],
         "baseline": lr["in_memory"], "target": 0.95,
         "ratio": round_ratio(learner, "ours", "in_memory")},
        {"figure": "learner grad steps/s: ours vs stock TF-Agents", "value": lr["ours"],
         "baseline": lr["stock"], "target": 1.5,
         "ratio": round_ratio(learner, "ours", "stock")},
        {"figure": "worker env steps/s: ours vs raw env stepping", "value": wr["ours"],
         "baseline": wr["raw"], "target": 0.8, "ratio": round_ratio(worker, "ours", "raw")},
    ]
    for part, result, rates in (("learner grad steps/s", learner, lr),
                                ("worker env steps/s", worker, wr)):
        if "ours_dict" in rates:  # the same numbers as a dict observation
            rows.append({"figure": f"{part}: dict observation vs flat",
                         "value": rates["ours_dict"], "baseline": rates["ours"],
                         "target": 0.9, "ratio": round_ratio(result, "ours_dict", "ours")})
    for part, result, rates, target in (("learner grad steps/s", learner, lr, 0.1),
                                        ("worker env steps/s", worker, wr, 0.2)):
        if "ours_recurrent" in rates:  # the recurrent example's LSTM agent
            rows.append({"figure": f"{part}: recurrent (LSTM, windows of 20) vs flat",
                         "value": rates["ours_recurrent"], "baseline": rates["ours"],
                         "target": target,
                         "ratio": round_ratio(result, "ours_recurrent", "ours")})
    if "perturbed" in wr:
        rows.append({"figure": "worker env steps/s: all perturbations on vs none",
                     "value": wr["perturbed"], "baseline": wr["ours"], "target": 0.9,
                     "ratio": round_ratio(worker, "perturbed", "ours")})
    if n_max > 1:
        rows.append({"figure": f"{n_max} workers vs 1 worker, env steps/s",
                     "value": sr[str(n_max)], "baseline": sr["1"], "target": 0.9 * n_max,
                     "ratio": _ratio(sr[str(n_max)], sr["1"])})
    for row in rows:
        row["pass"] = row["ratio"] >= row["target"]
    return rows


IDEAS = [
    # (result key, description, compared with, verdict)
    ("learner", "idea_previous_path",
     "learner data path before this work (map each item, then batch; 2-step items)",
     "ours", "replaced"),
    ("learner", "idea_ours_steps_layout",
     "our learner loop on TF-Agents 2-step items (batch, then map)", "ours",
     "replaced by packed one-step items"),
    ("learner", "idea_reverb_sampled",
     "batches sampled from Reverb: packed one-step items in chunks of 4 "
     "(`packed_transition`, the data path before the replay memory)", "ours",
     "replaced where the buffer fits in RAM; still used where it does not"),
    ("learner", "idea_reverb_sampled_signed",
     "the same with signed rows (every sampled row's HMAC checked in the input pipeline)",
     "idea_reverb_sampled", "used: the Reverb-sampled layout's rows are signed"),
    ("learner", "idea_xla_in_memory",
     "XLA-compiled train step (`tf.function(jit_compile=True)`), fixed batch", "in_memory",
     "not used: slower than the plain graph on CPU"),
    ("learner", "sampling_only",
     "Reverb sampling pipeline (`packed_transition`) alone, no training (batches/s)",
     "in_memory", "what sampling from Reverb costs per batch"),
    ("worker", "idea_previous_path",
     "worker before this work (PyDriver + SavedModelPyTFEagerPolicy + 2-step items)",
     "raw", "replaced"),
    ("worker", "idea_numpy_steps_layout", "numpy policy, TF-Agents 2-step items", "raw",
     "replaced by packed one-step items"),
    ("worker", "idea_tf_policy_1_env", "exported TF policy, 1 env (custom actor networks)",
     "raw", "used when the actor network is not the default one"),
    ("worker", "idea_tf_policy_8_envs",
     "exported TF policy, 8 lockstep envs (custom actor network, num_envs_per_worker=8)",
     "raw", "opt-in: num_envs_per_worker"),
    ("worker", "idea_numpy_4_envs", "numpy policy, 4 lockstep envs (num_envs_per_worker=4)",
     "raw", "opt-in: num_envs_per_worker"),
    ("worker", "idea_packed_items",
     "numpy policy, one packed item per env step, chunks of 4 (`packed_transition`)", "raw",
     "replaced by blocks where the buffer fits in the learner's RAM"),
    ("worker", "idea_packed_items_signed", "the same, each row signed (HMAC-SHA256)",
     "idea_packed_items", "used: the Reverb-sampled layout's rows are signed"),
    ("worker", "idea_chunk_1", "one packed item per env step, chunks of 1", "raw",
     "not used: slower"),
    ("worker", "idea_chunk_16", "one packed item per env step, chunks of 16", "raw",
     "not used: sampled items bring 16 steps each to a Reverb-sampling learner"),
]


def format_table(rows: list[dict]) -> str:
    lines = ["| figure | value | baseline | ratio | target | result |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['figure']} | {row['value']:.1f} | {row['baseline']:.1f} | "
            f"{row['ratio']:.2f} | >= {row['target']:.2f} | "
            f"{'pass' if row['pass'] else 'FAIL'} |")
    return "\n".join(lines)


def staleness_line(scaling: dict) -> tuple[str, float, float]:
    values = [v for v in scaling.get("staleness_s", []) if v == v]
    if not values:
        return "not measured", float("nan"), float("nan")
    med, worst = statistics.median(values), max(values)
    return (f"median {med:.2f} s, max {worst:.2f} s over {len(values)} publications, "
            f"{scaling['staleness_workers']} worker(s)"), med, worst


def signing_lines(signing: dict) -> list[str]:
    """The document's section on what signing and checking cost per item."""
    us = signing["us"]

    def against(key: str) -> str:
        base = us.get(f"{key}_bytes_only")
        return "" if not base else f" (bytes-only HMAC before: {base:.1f} us, ratio " \
            f"{us[key] / base:.2f})"

    return [
        "## Signing", "",
        "What the replay data path's HMAC-SHA256 costs per item (`benchmarks/signing_bench.py`"
        ", one process, medians of repeats), with the canonical encoding (a type tag, the "
        "table, each part's dtype and shape, then the bytes), against the bytes-only "
        "encoding that came before it, measured beside it:", "",
        f"- an experience block ({signing['block_rows']} transitions of "
        f"{signing['row_size']} floats): signed in {us['block_sign']:.1f} us"
        f"{against('block_sign')}, checked by the learner (shape, signature, sequence, "
        f"step types, finite values) in {us['block_check']:.1f} us;",
        f"- a weights publication ({signing['weights_bytes'] / 1e6:.2f} MB, the 256x256 "
        f"actor): signed in {us['weights_sign']:.1f} us{against('weights_sign')}, checked "
        f"by a worker (structure, signature, age, finite values) in "
        f"{us['weights_check']:.1f} us;",
        f"- a packed row of the Reverb-sampled layout: signed in {us['row_sign']:.1f} us"
        f"{against('row_sign')}; a batch of 256 checked in "
        f"{us['row_check_batch_256']:.0f} us.", ""]


def write_document(path: Path, machine: dict, settings: dict, quick: bool, rows, learner,
                   worker, scaling, ideas: dict, elapsed_s: float,
                   signing: dict | None = None) -> None:
    stale_text, _, _ = staleness_line(scaling)
    lcpu, wr = learner["cpu_ms_per_step"], worker["rates"]
    # Only the load before the run says whether others used the machine: the
    # 1-minute average after it mostly shows the benchmark's own last minutes.
    busy = machine["load_before"][0]
    ncpu = len(machine["available_cpus"])
    out = ["# Throughput", ""]
    out += [f"Written by `./benchmarks/run.sh{' --quick' if quick else ''}` on "
            f"{machine['date']} in {elapsed_s / 60:.1f} minutes. Run it again to refresh "
            "this file; every ratio compares figures measured side by side in that one "
            "run.", ""]
    if quick:
        out += ["**Quick run**: short timings for checking the benchmark itself; the "
                "figures are noisier than a full run's.", ""]
    if busy > 0.5 * ncpu:
        out += [f"**The machine was busy** (1-minute load average {busy:.1f} on {ncpu} "
                "CPUs): absolute figures are low and ratios noisy.", ""]
    v = machine["versions"]
    gpus = learner.get("gpus") or []
    out += [
        "## Machine", "",
        f"- CPU: {machine['cpu_model']}; {ncpu} CPU(s) available to the run "
        f"({', '.join(map(str, machine['available_cpus']))}) of "
        f"{machine['logical_cpus']} logical",
        f"- memory: {machine['memory_gib']} GiB; {machine['platform']}",
        f"- Python {machine['python']}, tensorflow {v['tensorflow']}, tf-agents "
        f"{v['tf-agents']}, dm-reverb {v['dm-reverb']}, tensorflow-probability "
        f"{v['tensorflow-probability']}, numpy {v['numpy']}, gym {v['gym']}, pybullet "
        f"{v['pybullet']}",
        f"- GPU: {', '.join(gpus) if gpus else 'none visible to TensorFlow (CPU only)'}",
        f"- code: git {machine['revision']}",
        f"- load average (1 min) before / after: {machine['load_before'][0]:.2f} / "
        f"{machine['load_after'][0]:.2f}",
        f"- CPU placement: learner on CPUs {learner['cpus']} ({learner['threads']} TF "
        f"thread(s)), its replay server on {settings['learner_server_cpus']}; worker "
        f"benchmark on CPU {worker['cpus']}, its replay server on "
        f"{settings['worker_server_cpus']}; real workers on CPUs "
        f"{scaling['cpus'][:max(int(n) for n in scaling['rates'])]}, replay server "
        "floating", "",
        "## Results", "",
        f"HalfCheetahBulletEnv-v0 specs (26-dim observations, 6-dim actions), SAC with "
        f"256x256 actor and critic networks, batch 256. Medians of "
        f"{learner['repeats']} (learner, worker) and {len(scaling['runs']['1'])} (N workers) "
        "timed runs after a warm-up.", "",
        format_table(rows), "",
        "Values and baselines are medians; a ratio is the median of the ratios of the "
        "rounds (each round measures every variant once, one after the other), except "
        "for N workers, which is the ratio of the medians.", "",
        f"Weight staleness (learner publishes, every worker acts with the new weights): "
        f"**{stale_text}**.", "",
        f"The experience items use the `{learner['layout']}` layout; workers run the "
        f"collect policy as `{worker['actor']}` with {worker['num_envs_per_worker']} env(s) "
        "each (the defaults).", "",
        "## What is measured", "",
        f"- **learner**: gradient steps per second over {learner['steps']} steps. *stock*: "
        "TF-Agents' `Learner` fed by `ReverbReplayBuffer.as_dataset(sample_batch_size=256, "
        "num_steps=2).prefetch(50)`, as TF-Agents' SAC example trains, on 2-step items. "
        "*in-memory*: the same SAC train step (`agent.train` in a `tf.function` loop) on "
        "one fixed batch: no sampling. *ours*: the code the learner runs for the "
        f"`{learner['layout']}` layout: its `MemorySource` samples the learner's "
        "`ReplayMemory` (a 1,000,000-transition ring buffer with its on-disk log) inside "
        "the compiled loop, and before every call of up to 200 steps the learner takes "
        "the blocks waiting in Reverb's experience queue into it (`drain_queue`), while "
        f"the benchmark's server keeps adding {settings['feed_rate']} transitions/s "
        "there. Before each timing of *ours* the learner takes in, untimed, what piled "
        "up while the other variants ran; during the timing it pays for what arrives "
        f"({learner.get('taken_in', 0)} transitions taken in during the run). Every server "
        f"starts with the same {settings['prefill']} real transitions (uniform random "
        "actions), written by our writers into tables built by `tables.make_tables` "
        "(no replay-ratio limiter, so sampling never waits). *dict observation*: *ours* "
        "with the env's 26 numbers given as a dict (body 8, joints 12, feet 6: "
        "`common.dict_bench_params`), so the actor and critics run the observation "
        "combiner and batches are unpacked into dict leaves; its memory starts as a copy "
        "of *ours*' and takes in the same queue.",
        f"- **worker**: env steps per second over {worker['steps']} steps (whole 1000-step "
        "episodes). *raw*: the env as `load_gym_env` builds it (TF-Agents' suite_gym "
        "wrappers), uniform random actions, nothing else. *ours*: "
        "`Builder.collect_actor` + `Collector` + the experience writer, "
        "writing every transition into the replay server, as a worker collects (the "
        "server takes the blocks out of its queue, as the learner does). *all "
        "perturbations on*: *ours* on envs with dynamics randomization (mass and friction "
        "spreads 0.2, joint damping 0.05) and every `perturbations` wrapper (observation "
        "noise and a 1-step delay, action noise and a 1-step latency, action repeat 1, "
        "5-step pushes of 50 N with probability 0.02 per step). *dict observation*: "
        "*ours* on the same env with its observation given as that dict (the numpy "
        "policy runs the combiner; the writer packs the leaves).",
        "- **N workers**: the real `tfagents_system.collect_worker` program, N processes "
        "with one TF thread each, against a replay server in the benchmark process; the "
        "rate is the transitions delivered: taken out of the experience queue by the "
        "benchmark process, as the learner does.",
        "- **staleness**: the benchmark republishes the weights with a new train step every "
        "second; each worker records in its status file when it starts acting with fetched "
        "weights; per publication, the time until the last worker acts with them. A worker "
        "fetches weights between rounds of `n_train_episodes_per_iter` episodes per env, so "
        "staleness is bounded by one round (here a 1000-step episode).", "",
        "## Alternatives measured", "",
        "Measured in a second process per part, so that their pipelines and policies do "
        "not share a process with the figures above (measured beside them, our learner "
        "came out a few percent lower against the in-memory batch), each compared with a "
        "reference "
        f"measured again in that process; medians of {settings['ideas_repeats']} rounds.", "",
        "| alternative | value | compared with | ratio | verdict |", "|---|---|---|---|---|"]
    for part, key, text, base, verdict in IDEAS:
        result = ideas[part]
        rates = result["rates"]
        if key in rates:
            out.append(f"| {part}: {text} | {rates[key]:.1f} | {base} {rates[base]:.1f} | "
                       f"{round_ratio(result, key, base):.2f} | {verdict} |")
    icpu, irates = ideas["learner"]["cpu_ms_per_step"], ideas["learner"]["rates"]
    sampling_ms = icpu.get("sampling_only")
    out += ["", "## What limits the figures", ""]
    reverb_ms = icpu.get("idea_reverb_sampled")
    out += [
        f"- Learner: a gradient step costs {lcpu['in_memory']:.2f} ms of CPU on a fixed "
        f"batch and {lcpu['ours']:.2f} ms in our learner (sampling its replay memory in "
        "the graph, taking in the queue's blocks and logging them between calls)"
        + (f"; sampled from Reverb it costs {reverb_ms:.2f} ms" if reverb_ms else "")
        + (f", and Reverb's sampling alone {sampling_ms:.2f} ms of CPU per batch of 256 "
           f"({irates['sampling_only']:.0f} batches/s)" if sampling_ms else "")
        + ". Reverb decodes and hands over every sampled item separately, a few "
        "microseconds per item, in the learner's own process: at 256 items per batch that "
        "is taken from the gradient steps whenever the learner has no CPU to spare. The "
        "replay memory moves each transition through Reverb once, in blocks of 128, "
        "instead of every time it is sampled (about 256 times at one gradient step per "
        "env step).",
        f"- Worker: {1e6 / wr['raw']:.0f} us per raw env step against "
        f"{1e6 / wr['ours']:.0f} us per collected step. Nearly all of the difference is "
        "the policy: the numpy MLP costs about 17 us per call alone, about 30 us between "
        "env steps, and its 0.3 MB of weights push the physics engine's data out of the "
        "CPU's cache, so the env step after it takes about 45 us longer (measured on the "
        "2-CPU development machine by timing `env.step` with nothing, the policy, or a "
        "300 KB memory copy between steps: +0, +45 and +30 us). Packing the transition "
        "and the Python loop cost a few microseconds; Reverb's writer runs once per 128 "
        "steps. Several envs per worker share one policy call (`num_envs_per_worker`), "
        "but their physics engines then share the cache too. With one "
        "Reverb item per env step (the `packed_transition` rows above) every item is a "
        "gRPC message and every chunk is compressed and sent, on the worker's own CPU.",
        "- N workers: the replay server's work per transition is now a share of one "
        "block's; on a fully used machine what remains of it, and the benchmark process "
        "taking the blocks out, still come out of the workers' CPUs.", ""]
    out += signing_lines(signing) if signing else []
    out += ["## Repeats", "", "```",
            json.dumps({"learner": learner["runs"], "worker": worker["runs"],
                        "learner_alternatives": ideas["learner"]["runs"],
                        "worker_alternatives": ideas["worker"]["runs"],
                        "n_workers": scaling["runs"],
                        "staleness_s": scaling.get("staleness_s")}, indent=1),
            "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="short runs (about 3 minutes); noisier figures")
    parser.add_argument("--output", default=str(common.REPO / "docs" / "performance.md"),
                        help="where to write the document (default docs/performance.md)")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    started = time.monotonic()
    machine = describe_machine()
    from tfagents_system import cpu_layout

    available = machine["available_cpus"]
    layout = cpu_layout.plan_layout(available)
    log_dir = Path(tempfile.mkdtemp(prefix="sac_benchmark_"))
    print(f"throughput benchmark ({'quick' if args.quick else 'full'}) on "
          f"{len(available)} CPU(s); logs in {log_dir}", file=sys.stderr, flush=True)

    settings["learner_server_cpus"] = list(layout.replay_server)
    print("learner: stock vs in-memory vs ours", file=sys.stderr, flush=True)
    server, info = replay_server(
        list(layout.replay_server), settings["prefill"], log_dir, "learner_server",
        ["--feed_rate", str(settings["feed_rate"])])
    ideas = {}
    try:
        learner = Child(["benchmarks.learner_bench", "--ports", json.dumps(info["ports"]),
                         "--steps", str(settings["learner_steps"]),
                         "--repeats", str(settings["learner_repeats"])],
                        list(layout.learner), log_dir / "learner.log").result(timeout=3600)
        print("learner: alternatives", file=sys.stderr, flush=True)
        ideas["learner"] = Child(
            ["benchmarks.learner_bench", "--ports", json.dumps(info["ports"]),
             "--steps", str(settings["learner_steps"]),
             "--repeats", str(settings["ideas_repeats"]), "--ideas"],
            list(layout.learner), log_dir / "learner_ideas.log").result(timeout=3600)
    finally:
        server.stop()

    worker_cpu = available[-1]
    server_cpus = [c for c in available if c != worker_cpu][:1] or [worker_cpu]
    settings["worker_server_cpus"] = server_cpus
    print("worker: raw env vs our collection path", file=sys.stderr, flush=True)
    server, info = replay_server(server_cpus, 0, log_dir, "worker_server", ["--drain"])
    try:
        worker = Child(["benchmarks.worker_bench", "--ports", json.dumps(info["ports"]),
                        "--steps", str(settings["worker_steps"]),
                        "--repeats", str(settings["worker_repeats"])],
                       [worker_cpu], log_dir / "worker.log").result(timeout=3600)
        print("worker: alternatives", file=sys.stderr, flush=True)
        ideas["worker"] = Child(
            ["benchmarks.worker_bench", "--ports", json.dumps(info["ports"]),
             "--steps", str(settings["worker_steps"]),
             "--repeats", str(settings["ideas_repeats"]), "--ideas"],
            [worker_cpu], log_dir / "worker_ideas.log").result(timeout=3600)
    finally:
        server.stop()

    print("N worker processes and weight staleness", file=sys.stderr, flush=True)
    scaling = Child(["benchmarks.scaling_bench",
                     "--items_per_worker", str(settings["scaling_items"]),
                     "--repeats", str(settings["scaling_repeats"]),
                     "--publishes", str(settings["publishes"])],
                    None, log_dir / "scaling.log").result(timeout=3600)

    print("signing and checking per item", file=sys.stderr, flush=True)
    signing = Child(["benchmarks.signing_bench", "--items", str(settings["signing_items"])],
                    [worker_cpu], log_dir / "signing.log").result(timeout=600)

    machine["load_after"] = os.getloadavg()
    (log_dir / "results.json").write_text(json.dumps(
        {"machine": machine, "settings": settings, "quick": args.quick, "learner": learner,
         "worker": worker, "scaling": scaling, "alternatives": ideas, "signing": signing},
        indent=1))
    rows = build_rows(learner, worker, scaling)
    table = format_table(rows)
    stale_text, _, _ = staleness_line(scaling)
    print("\n" + table + f"\n\nweight staleness: {stale_text}\n")
    output = Path(args.output)
    write_document(output, machine, settings, args.quick, rows, learner, worker, scaling,
                   ideas, time.monotonic() - started, signing)
    print(f"wrote {output} ({(time.monotonic() - started) / 60:.1f} minutes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
