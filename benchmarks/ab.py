"""One part of the throughput benchmark for two checkouts, alternating:

    ./benchmarks/run.sh ab --part worker --before /path/to/old/checkout [--pairs 2]

A change that must not slow anything down is measured against the revision before it
(`git worktree add /tmp/before <rev>` makes one): the part runs with the other
checkout's code, then with this one's, `--pairs` times, so that a busy spell of the
machine falls on both. Each run uses its checkout's own benchmark scripts, placed as
`./benchmarks/run.sh` places them; the table gives each run's ratios, each the median
of its rounds' ratios as docs/performance.md computes them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import common
from benchmarks.run import round_ratio

# The ratios (variant, baseline) docs/performance.md reports for each part.
PARTS = {
    "worker": [("ours", "raw"), ("ours_recurrent", "ours"), ("ours_dict", "ours"),
               ("perturbed", "ours")],
    "learner": [("ours", "in_memory"), ("ours", "stock"), ("ours_dict", "ours"),
                ("ours_recurrent", "ours")],
}

# Runs in the checkout's own interpreter process: its benchmarks package and code.
_RUN_PART = """
import json, sys, tempfile
from pathlib import Path
from benchmarks import run as bench
from tfagents_system import cpu_layout
part = sys.argv[1]
available = bench.describe_machine()["available_cpus"]
log_dir = Path(tempfile.mkdtemp(prefix="sac_ab_"))
if part == "learner":
    layout = cpu_layout.plan_layout(available)
    server, info = bench.replay_server(list(layout.replay_server), 20000, log_dir, "server",
                                       ["--feed_rate", "2000"])
    command = ["benchmarks.learner_bench", "--steps", "400"]
    cpus = list(layout.learner)
else:
    cpus = [available[-1]]
    server, info = bench.replay_server([c for c in available if c != cpus[0]][:1] or cpus, 0,
                                       log_dir, "server", ["--drain"])
    command = ["benchmarks.worker_bench", "--steps", "3000"]
try:
    result = bench.Child(command + ["--ports", json.dumps(info["ports"]), "--repeats", "7"],
                         cpus, log_dir / f"{part}.log").result(timeout=3600)
finally:
    server.stop()
print("AB " + json.dumps(result["runs"]))
"""


def run_part(checkout: Path, part: str) -> dict[str, list[float]]:
    """The per-round rates of one run of `part` with `checkout`'s code."""
    env = dict(os.environ, PYTHONPATH=str(checkout), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", _RUN_PART, part], cwd=checkout, env=env,
                            capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("AB ")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"error: the {part} part failed in {checkout}:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][3:])


def ratio(runs: dict[str, list[float]], variant: str, baseline: str) -> float | None:
    """variant / baseline, the median over rounds (`run.round_ratio`); None if either
    was not measured (an older checkout may lack a variant)."""
    if variant not in runs or baseline not in runs:
        return None
    return round_ratio({"runs": runs}, variant, baseline)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=sorted(PARTS), required=True)
    parser.add_argument("--before", type=Path, required=True,
                        help="a checkout of the revision to compare with")
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args(argv)
    if not (args.before / "benchmarks" / "run.py").is_file():
        parser.error(f"--before {args.before}: not a checkout of this project")
    ratios = PARTS[args.part]
    header = " | ".join(f"{variant} vs {baseline}" for variant, baseline in ratios)
    print(f"| run | {header} |\n|---|{'---|' * len(ratios)}", flush=True)
    for pair in range(1, args.pairs + 1):
        for name, checkout in (("before", args.before.resolve()), ("after", common.REPO)):
            runs = run_part(checkout, args.part)
            cells = [ratio(runs, variant, baseline) for variant, baseline in ratios]
            print(f"| {name}, {pair} | "
                  + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
