"""The learning A/B's report (benchmarks/layout_ab.py) from synthetic curves: paired
differences at equal train steps and at equal env steps, and their verdicts."""

import re

from benchmarks import layout_ab


def _run(env_steps, returns):
    return {"layout": "x", "minutes": 1.0, "steps": [0, 1000, 2000],
            "env_steps": env_steps, "returns": returns}


def _difference(text: str, label: str) -> str:
    return next(line for line in text.splitlines()
                if line.startswith("Difference") and label in line)


def test_compare_verdicts():
    assert "): within noise" in layout_ab.compare([10.0, 20.0], [5.0, 25.0])
    assert "NOT within noise" in layout_ab.compare([110.0, 120.0], [5.0, 20.0])
    # Identical runs are within noise, not flagged by a zero standard error.
    assert "): within noise" in layout_ab.compare([5.0, 7.0], [5.0, 7.0])
    assert "one seed" in layout_ab.compare([5.0], [4.0])


def test_runs_that_collected_ahead_differ_at_equal_env_steps_only():
    # Same return per train step, but the memory runs collected 1000 env steps more
    # by every evaluation: equal at equal train steps, behind at equal env steps.
    runs = {}
    for seed, bump in ((0, 0.0), (1, 30.0)):
        runs[f"memory_seed{seed}"] = _run([2000, 3000, 4000], [0.0, 500.0 + bump, 1000.0])
        runs[f"reverb_seed{seed}"] = _run([1000, 2000, 3000], [0.0, 500.0, 1000.0])
    text = layout_ab.report(runs, [0, 1], None)
    train = _difference(text, "equal train steps")
    assert "+5 (per seed: +0, +10; standard error 5): within noise" in train
    env = _difference(text, "equal env steps (0 to 3000)")
    assert "NOT within noise" in env
    per_seed = [int(d) for d in re.search(r"per seed: ([^;]+);", env).group(1).split(", ")]
    assert all(-260 <= d <= -240 for d in per_seed)  # about -250: a third of the way behind
