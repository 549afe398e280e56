"""The learning benchmark's report (benchmarks/learning.py) from synthetic runs: values
at the marks, seeds, the zoo reference, SB3's wall clock ratio, the targets, the PNG,
and the hand-written analysis kept across rewrites."""

import numpy as np
import pytest

from benchmarks import learning

MACHINE = {"date": "2026-12-01 12:00 UTC", "cpu_model": "Test CPU", "available_cpus": [0, 1],
           "logical_cpus": 2, "memory_gib": 8.0, "platform": "Linux", "python": "3.11.7",
           "versions": {"tensorflow": "2.15.1"}, "revision": "abc123"}
TASK = "HalfCheetahBulletEnv-v0"


def _run(seed, budget, slope, seconds_per_step=0.004, task=TASK):
    """Evaluations every 10k train steps, placed 12k env steps later; return = slope x
    env steps; wall clock proportional to env steps."""
    env_steps = [12_000.0 + 10_000 * i for i in range(budget // 10_000)]
    return learning.Run(
        name=f"{task}_{learning.budget_label(budget)}_task_{seed}", task=task, seed=seed,
        budget=budget, complete=True, env_steps=env_steps,
        returns=[slope * x for x in env_steps],
        progress_env_steps=[0.0] + env_steps, progress_seconds=[0.0] + [
            seconds_per_step * x for x in env_steps],
        grad_rate=250.0, settings={"hyperparameters": {"discount": 0.98, "time_feature": True}})


def _sb3(budget, seconds_per_step=0.02, eval_share=0.1):
    steps = list(range(10_000, budget + 1, 10_000))
    seconds = [seconds_per_step * s for s in steps]
    return {"env_steps": steps, "returns": [0.001 * s for s in steps], "seconds": seconds,
            "train_seconds": [t * (1 - eval_share) for t in seconds], "done": {}}


def _row(text, mark):
    return next(line for line in text.splitlines() if line.startswith(f"| {mark} |"))


def test_interpolation_and_names():
    assert learning.interpolate([0, 10], [0, 100], 2.5) == 25.0
    assert learning.interpolate([0, 10], [0, 100], 11) is None
    assert learning.interpolate([], [], 1) is None
    assert learning.budget_label(300_000) == "300k" and learning.budget_label(3500) == "3500"
    assert learning.parse_budget("300k") == 300_000 and learning.parse_budget("3500") == 3500
    assert learning.mark_label(1_000_000) == "1M" and learning.mark_label(50_000) == "50k"
    assert learning.parse_override("n_eval_episodes=2") == ("n_eval_episodes", 2)
    assert learning.parse_override("x=(1, 2)") == ("x", "(1, 2)")
    with pytest.raises(learning.BenchmarkError, match="NAME=VALUE"):
        learning.parse_override("novalue")


def test_active_seconds_skip_the_time_between_a_stop_and_a_relaunch():
    """Launched at 0 (events until 100), relaunched at 1000 (events until 1100): at 1050
    the run has been active 100 + 50 seconds."""
    events = np.array([10.0, 50.0, 100.0, 1010.0, 1100.0])
    got = learning.active_seconds([1000.0, 0.0], events, np.array([50.0, 500.0, 1050.0]))
    np.testing.assert_allclose(got, [50.0, 100.0, 150.0])


def test_report_columns_values_targets_and_png(tmp_path):
    runs = [_run(0, 300_000, 0.005), _run(1, 300_000, 0.003),
            _run(0, 100_000, 0.001, task="HopperBulletEnv-v0")]
    sb3 = {TASK: [_sb3(50_000)]}
    out = tmp_path / "learning.md"
    learning.write_report(out, runs, sb3, MACHINE, "./benchmarks/run.sh learning --x")
    text = out.read_text()
    assert (tmp_path / "learning.png").stat().st_size > 10_000
    for column in ("zoo reference", "ours: mean ± sd (seeds)", "ours per seed",
                   "ours wall clock, min", "SB3 here: return", "wall clock ours / SB3"):
        assert column in text
    # 300k: returns 1500 and 900 (slope x env steps), mean 1200 ± 424; zoo 1174.
    row = _row(text, "300k").split(" | ")
    assert row[1] == "1174" and row[2] == "1200 ± 424 (2)"
    assert row[3] == "1500 (s0), 900 (s1)"
    assert row[4] == "20.0"  # 0.004 s per env step x 300k
    # 50k: ours 0.004 s/step, SB3 0.02 s/step (0.018 without its evaluations).
    row50 = _row(text, "50k").split(" | ")
    assert row50[5] == "50 (1)" and row50[6] == "16.7 (15.0)"
    assert row50[7].rstrip(" |") == "0.20 (0.22)"
    assert "| HalfCheetahBulletEnv-v0 | 1174 | 1200 | 2 | yes |" in text
    assert "| HopperBulletEnv-v0 | 1713 | n/a | 0 | not reached |" in text  # a 100k run
    assert "success rate" not in _row(text, "300k")  # no success columns without one
    assert "![learning curves](learning.png)" in text
    assert "Test CPU" in text and "git abc123" in text and "`discount=0.98`" in text
    # A hand-written analysis below the marker survives a rewrite.
    out.write_text(text + "\nOur own notes.\n")
    learning.write_report(out, runs[:1], {}, MACHINE, "again")
    assert out.read_text().endswith("\nOur own notes.\n")
    assert "1500 ± 0 (1)" in _row(out.read_text(), "300k")


def test_the_longest_run_of_a_seed_counts_once_and_tiny_budgets_are_marks():
    short, long_ = _run(0, 300_000, 0.001), _run(0, 1_000_000, 0.002)
    assert learning.one_run_per_seed([short, long_]) == [long_]
    assert learning.task_marks([long_]) == [50_000, 100_000, 200_000, 300_000, 500_000,
                                            1_000_000]
    tiny = _run(0, 3_000, 0.001)
    assert learning.task_marks([tiny]) == [3_000]


def test_runs_recorded_beside_the_report_outlive_the_work_directory(tmp_path):
    """A report's runs are kept in <report>.runs.json: a later invocation whose work
    directory lacks them (a fresh machine) still reports them; a run found in both is
    the work directory's; a damaged record is named with the fix."""
    out = tmp_path / "docs" / "variants.md"
    records = learning.records_path(out)
    assert records.name == "variants.runs.json"
    first = [_run(0, 300_000, 0.005)]
    peer = dict(_sb3(50_000), task=TASK, seed=0, budget=50_000, algo="crossq")
    runs, sb3 = learning.merge_records(records, first, {TASK: [peer]}, "CPU A, 2 CPUs")
    assert runs == first and sb3 == {TASK: [dict(peer, machine="CPU A, 2 CPUs")]}
    # The next machine: only a new seed in its work directory.
    second = [_run(1, 300_000, 0.003)]
    runs, sb3 = learning.merge_records(records, second, {}, "CPU B, 8 CPUs")
    assert [r.name for r in runs] == [first[0].name, second[0].name]
    assert runs[0].returns == first[0].returns and sb3[TASK][0]["algo"] == "crossq"
    assert [r.machine for r in runs] == ["CPU A, 2 CPUs", "CPU B, 8 CPUs"]
    learning.write_report(out, runs, sb3, MACHINE, "./benchmarks/run.sh learning --x")
    assert "1200 ± 424 (2)" in _row(out.read_text(), "300k")
    assert "variants.runs.json" in out.read_text()
    assert out.read_text().count("| CPU A, 2 CPUs |") == 1  # the Runs table
    # A rerun of seed 0 in the work directory replaces its record.
    rerun = _run(0, 300_000, 0.001)
    runs, _ = learning.merge_records(records, [rerun], {}, "CPU B, 8 CPUs")
    assert runs[0].returns == rerun.returns and len(runs) == 2
    assert runs[0].machine == "CPU B, 8 CPUs"
    assert len(records.read_text().splitlines()) == 6 + 2 + 1  # framing, a line per run
    records.write_text("{not json")
    with pytest.raises(learning.BenchmarkError, match="variants.runs.json.*restore it"):
        learning.merge_records(records, [], {}, "CPU B, 8 CPUs")


def test_training_pace_compares_seconds_per_env_step_while_learning():
    """Ours: the wall clock's slope from warm-up + 10k env steps on; the peer's: its
    training seconds' slope between its first and last evaluation. A short peer
    budget gives the ratio though it reaches no mark of the table."""
    ours = _run(0, 100_000, 0.001, seconds_per_step=0.004)
    ours.settings["hyperparameters"]["n_buffer_init_steps"] = 10_000
    # a pause before 20k env steps (the warm-up, start-up) does not count
    ours.progress_seconds = [s + (100.0 if e >= 20_000 else 0.0)
                             for e, s in zip(ours.progress_env_steps, ours.progress_seconds)]
    assert learning.training_pace(ours) == pytest.approx(0.004)
    short = _sb3(30_000, seconds_per_step=0.02, eval_share=0.1)
    assert learning.peer_pace(short) == pytest.approx(0.018)
    assert learning.peer_pace(_sb3(10_000)) is None  # one evaluation: no slope
    crossq = dict(short, algo="crossq")
    ours.variant = "crossq_w256"
    lines, _ = learning.task_table(TASK, [ours], [crossq])
    pace = [line for line in lines if line.startswith("- Training pace")]
    assert len(pace) == 1 and "ours crossq_w256 4.0 ms" in pace[0]
    assert "sb3-contrib CrossQ 18.0 ms (1 run(s), env steps 10k-30k)" in pace[0]
    assert pace[0].endswith("= 0.22.")
