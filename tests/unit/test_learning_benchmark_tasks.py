"""The learning benchmark (benchmarks/learning.py) on gymnasium MuJoCo and panda-gym tasks,
without training: the preset per task and its launch files, the zoo reference of a newer
task version, the marks, a success-rate curve read from an experiment's records, the
report's success columns and targets, and the SB3 peer's settings and records."""

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from benchmarks import learning, sb3_peer
from tfagents_system.core import constants as C
from tfagents_system.core.records import EvalSummary, LaunchRecord
from tfagents_system.tools import plots

MACHINE = {"date": "2026-12-01 12:00 UTC", "cpu_model": "Test CPU", "available_cpus": [0, 1],
           "logical_cpus": 2, "memory_gib": 8.0, "platform": "Linux", "python": "3.11.7",
           "versions": {"tensorflow": "2.15.1"}, "revision": "abc123"}
OLDER = "panda-gym 2; compare with care"


def _cells(text, mark, after=""):
    """The cells of the row of `mark` in the first table after the line `after`."""
    lines = text.splitlines()
    start = lines.index(after) if after else 0
    row = next(line for line in lines[start:] if line.startswith(f"| {mark} |"))
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _run(task, seed, budget, period, ret, success=None, seconds_per_step=0.01):
    """Evaluations every `period` env steps from 0: return ret(x), success rate
    success(x) (none when None)."""
    xs = [float(x) for x in range(0, budget + 1, period)]
    return learning.Run(
        name=f"{task}_{learning.budget_label(budget)}_task_{seed}", task=task, seed=seed,
        budget=budget, complete=True, env_steps=xs, returns=[ret(x) for x in xs],
        progress_env_steps=xs, progress_seconds=[seconds_per_step * x for x in xs],
        grad_rate=100.0, settings={"hyperparameters": {"discount": 0.95,
                                                       "her_strategy": "future"}},
        success_env_steps=xs if success else [],
        success=[success(x) for x in xs] if success else [])


# --- the preset per task and its launch files ---

@pytest.mark.parametrize("task, preset", [
    ("PandaReach-v3", "manipulation.py"), ("PandaPush-v3", "manipulation.py"),
    ("HalfCheetah-v4", "locomotion.py"), ("Ant-v5", "locomotion.py"),
    ("HopperBulletEnv-v0", "locomotion.py")])
def test_panda_tasks_train_the_manipulation_preset_the_others_locomotion(task, preset):
    assert learning.preset_for(task).name == preset
    assert learning.preset_for(task).is_file()


def test_each_task_launches_its_own_preset_under_the_same_experiment_names(tmp_path):
    """One config, sweep and variables file per task: the panda task's names the
    manipulation preset (1000 warm-up steps: 19 iterations of 1000 to 20k env steps), the
    MuJoCo task's the locomotion preset (10k warm-up: 290 iterations to 300k)."""
    panda = learning.write_launch_files(tmp_path, "PandaReach-v3", 20_000, 2, {})
    mujoco = learning.write_launch_files(tmp_path, "HalfCheetah-v4", 300_000, 2,
                                         {"n_eval_episodes": 2})
    for variables, preset, name, iterations in (
            (panda, "manipulation.py", "PandaReach-v3_20k", 19),
            (mujoco, "locomotion.py", "HalfCheetah-v4_300k", 290)):
        text = variables.read_text()
        assert f"SAC_PARAMS={learning.ROOT / 'examples' / preset}\n" in text
        assert f"SAC_EXP_NAME={name}\n" in text
        sweep = json.loads((tmp_path / "launch" / f"{name}.sweep.json").read_text())
        assert sweep["seeds"] == [0, 1]
        assert sweep["grid"]["params.num_iter"] == [iterations]
    assert json.loads((tmp_path / "launch" / "PandaReach-v3.json").read_text()) == {
        "env_id": "PandaReach-v3"}
    assert json.loads((tmp_path / "launch" / "HalfCheetah-v4_300k.sweep.json").read_text(
        ))["grid"]["params.n_eval_episodes"] == [2]
    # The experiment of seed 1 reads back as the task's run.
    name = C.task_experiment_name(learning.experiment_name("PandaReach-v3", 20_000), 1)
    match = learning.EXP_PATTERN.match(name)
    assert (match["task"], match["budget"], match["seed"]) == ("PandaReach-v3", "20k", "1")
    assert learning.preset_params({}, "PandaPush-v3").n_eval_episodes == 20


# --- the zoo reference ---

@pytest.mark.parametrize("task, zoo", [
    ("HalfCheetah-v4", "HalfCheetah-v3"), ("HalfCheetah-v5", "HalfCheetah-v3"),
    ("Hopper-v4", "Hopper-v3"), ("Ant-v5", "Ant-v3"), ("Walker2d-v4", "Walker2d-v3"),
    ("PandaReach-v3", "PandaReach-v2"), ("PandaPush-v3", "PandaPush-v2"),
    ("PandaPickAndPlace-v3", "PandaPickAndPlace-v2"),
    ("HalfCheetahBulletEnv-v0", "HalfCheetahBulletEnv-v0"), ("PandaReach-v2", "PandaReach-v2"),
    ("HalfCheetah-v3", "HalfCheetah-v3"), ("Pendulum-v1", "Pendulum-v1")])
def test_a_newer_task_version_maps_to_the_zoos_older_one(task, zoo):
    assert learning.zoo_task(task) == zoo


def test_zoo_curves_read_returns_and_success_rates():
    reach = learning.zoo_curve("PandaReach-v3")
    assert reach.task == "PandaReach-v2"
    assert reach.env_steps == [5000.0, 10000.0, 15000.0, 20000.0]
    assert reach.success == [0.6, 1.0, 1.0, 1.0] and reach.return_at(10_000) == -1.8
    assert learning.zoo_curve("PandaPush-v3").success_at(300_000) == 0.8
    cheetah = learning.zoo_curve("HalfCheetah-v4")
    assert cheetah.task == "HalfCheetah-v3" and cheetah.success is None
    assert cheetah.return_at(300_000) == pytest.approx(7197.055)
    assert learning.zoo_curve("Hopper-v5").return_at(300_000) == pytest.approx(1540.407)
    assert learning.zoo_curve("Ant-v4").return_at(300_000) == pytest.approx(1372.533)
    bullet = learning.zoo_curve("HalfCheetahBulletEnv-v0")  # a comment line above the header
    assert bullet.task == "HalfCheetahBulletEnv-v0" and round(bullet.return_at(300_000)) == 1174
    assert learning.zoo_curve("Walker2d-v4") is None


# --- the marks ---

def test_marks_add_5k_and_10k_to_small_budgets_and_the_target_mark():
    def marks(*budgets, target=None):
        runs = [_run("T-v3", s, b, 5_000, float) for s, b in enumerate(budgets)]
        return learning.task_marks(runs, target)

    assert marks(20_000) == [5_000, 10_000, 20_000]
    assert marks(100_000) == [5_000, 10_000, 50_000, 100_000]  # SMALL_BUDGET: still small
    assert marks(300_000) == [50_000, 100_000, 200_000, 300_000]
    assert marks(300_000, target=10_000) == [10_000, 50_000, 100_000, 200_000, 300_000]
    assert marks(20_000, 300_000) == [20_000, 50_000, 100_000, 200_000, 300_000]
    assert marks(3_000) == [3_000]  # under every mark: the budget alone
    assert marks(20_000, target=300_000) == [5_000, 10_000, 20_000]  # not reached


# --- a success-rate curve from an experiment's records ---

def _series(points):
    steps, walls, values = zip(*points)
    return plots.Series(np.array(steps, dtype=np.int64), np.array(walls, dtype=float),
                        np.array(values, dtype=float))


def test_read_run_reads_the_success_rate_curve_beside_the_returns(tmp_path, monkeypatch):
    """Two workers evaluate train steps 0 and 5000 (success rates 0, 0 and 0.5, 0.7); the
    benchmark evaluated the final policy at 10000 (success rate 1.0). Env steps at the
    learner's wall times: 0 at the launch, 6000 at step 5000, 11000 at step 10000."""
    exp = tmp_path / "logs" / "PandaReach-v3_10k_task_0"
    exp.mkdir(parents=True)
    t0 = datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp()
    (exp / C.SETTINGS_FILE).write_text(json.dumps({"hyperparameters": {"discount": 0.95}}))
    LaunchRecord(time="2026-12-01T12:00:00+0000", pid=1, host="h", port=1, address="a",
                 resumed=False, cpu_layout={}, num_workers=2,
                 workers_here=[0, 1]).append(exp / C.LAUNCHES_FILE)
    (exp / learning.FINAL_EVAL_DIR).mkdir()
    EvalSummary(seed=0, num_episodes=20, returns=[-2.0], lengths=[10], mean_return=-2.0,
                std_return=0.0, success_rate=1.0, train_step=10_000).write(
        exp / learning.FINAL_EVAL_DIR / C.EVAL_SUMMARY_FILE)

    def worker(success_at_5k):
        return {C.M_EVAL_RETURN: _series([(0, t0 + 1, -50.0), (5000, t0 + 51, -20.0)]),
                C.M_EVAL_SUCCESS_RATE: _series([(0, t0 + 1, 0.0),
                                                (5000, t0 + 51, success_at_5k)])}

    curves = plots.ExperimentCurves(
        exp.name,
        train={C.M_CRITIC_LOSS: _series([(5000, t0 + 50, 1.0), (10_000, t0 + 100, 1.0)])},
        collect={"worker_0": {C.M_ENV_STEPS: _series(
            [(0, t0, 0.0), (1, t0 + 50, 6000.0), (2, t0 + 100, 11_000.0)])}},
        eval={"worker_0": worker(0.5), "worker_1": worker(0.7)})
    monkeypatch.setattr(plots, "load_experiment_curves", lambda path: curves)

    run = learning.read_run(exp)
    assert (run.task, run.seed, run.budget) == ("PandaReach-v3", 0, 10_000)
    assert run.env_steps == [0.0, 6000.0, 11_000.0] and run.returns == [-50.0, -20.0, -2.0]
    assert run.success_env_steps == [0.0, 6000.0, 11_000.0]
    assert run.success == pytest.approx([0.0, 0.6, 1.0])
    assert run.final_by_benchmark
    assert run.success_at(5_000) == pytest.approx(0.5)
    assert run.success_at(10_000) == pytest.approx(0.92)
    assert run.success_at(12_000) is None


# --- the report ---

def test_report_has_success_columns_and_targets_for_panda_and_returns_for_mujoco(tmp_path):
    """PandaReach 20k, two seeds: success rate x/10k (capped at 1) and x/12.5k; PandaPush
    100k (does not reach its 300k target); HalfCheetah-v4 300k, return x/40; SB3 on
    PandaReach: success rate x/20k."""
    runs = [
        _run("PandaReach-v3", 0, 20_000, 5_000, lambda x: -50 + x / 500,
             lambda x: min(1.0, x / 10_000)),
        _run("PandaReach-v3", 1, 20_000, 5_000, lambda x: -50 + x / 1000,
             lambda x: min(1.0, x / 12_500)),
        _run("PandaPush-v3", 0, 100_000, 5_000, lambda x: -50.0, lambda x: x / 200_000),
        _run("HalfCheetah-v4", 0, 300_000, 10_000, lambda x: x / 40)]
    sb3_steps = list(range(5_000, 20_001, 5_000))
    sb3 = {"PandaReach-v3": [{
        "env_steps": sb3_steps, "returns": [-10.0] * 4, "seconds": [s / 100 for s in sb3_steps],
        "train_seconds": [s / 125 for s in sb3_steps], "success_env_steps": sb3_steps,
        "success": [s / 20_000 for s in sb3_steps], "done": {}}]}
    out = tmp_path / "learning.md"
    learning.write_report(out, runs, sb3, MACHINE, "./benchmarks/run.sh learning --x")
    text = out.read_text()
    assert text.startswith("# Learning: the locomotion and manipulation presets against")
    assert (tmp_path / "learning.png").stat().st_size > 10_000

    # PandaReach: 5k, 10k and 20k; the success columns beside the returns.
    reach = "## PandaReach-v3"
    header = next(line for line in text.splitlines()[text.splitlines().index(reach):]
                  if line.startswith("| env steps |"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "env steps", "zoo reference", "ours: mean ± sd (seeds)", "ours per seed",
        "zoo success rate", "ours success rate: mean ± sd (seeds)",
        "ours success rate per seed", "ours wall clock, min", "SB3 here: return",
        "SB3 here: success rate", "SB3 wall clock, min (training only)",
        "wall clock ours / SB3"]
    assert [_cells(text, m, reach)[0] for m in ("5k", "10k", "20k")] == ["5k", "10k", "20k"]
    row = _cells(text, "10k", reach)
    assert row[1:4] == ["-2", "-35 ± 7 (2)", "-30 (s0), -40 (s1)"]
    assert row[4:7] == ["1.00", "0.90 ± 0.14 (2)", "1.00 (s0), 0.80 (s1)"]
    assert row[7:10] == ["1.7", "-10 (1)", "0.50 (1)"]
    assert row[10:] == ["1.7 (1.3)", "1.00 (1.25)"]
    assert _cells(text, "5k", reach)[4:6] == ["0.60", "0.45 ± 0.07 (2)"]
    assert (f"Zoo reference: `PandaReach-v2`, the older version of this task ({OLDER})."
            in text)
    assert "Preset: `examples/manipulation.py`." in text
    assert "Preset: `examples/locomotion.py`. Zoo reference: `HalfCheetah-v3`" in text

    # HalfCheetah-v4: returns only (eight columns), against the zoo's v3 run.
    cheetah = _cells(text, "300k", "## HalfCheetah-v4")
    assert len(cheetah) == 8 and cheetah[1:3] == ["7197", "7500 ± 0 (1)"]

    # Targets: success rates for panda tasks, the return at 300k for MuJoCo.
    targets = text.split("## Targets", 1)[1]
    assert (f"| PandaReach-v3 | 1.00 | 0.90 | 2 | no | success rate at 10k ≥ the zoo's "
            f"(`PandaReach-v2`: {OLDER}) |") in targets
    assert "| PandaPush-v3 | 0.80 | n/a | 0 | not reached | success rate at 300k" in targets
    assert "| HalfCheetah-v4 | 7197 | 7500 | 1 | yes | greedy return at 300k" in targets
    assert "success rate 1.00" in text.split("## Runs", 1)[1]  # the last evaluation's


def test_a_success_target_is_met_at_the_zoos_value():
    reach = [_run("PandaReach-v3", s, 20_000, 5_000, float, lambda x: min(1.0, x / 10_000))
             for s in (0, 1)]
    target = learning.task_target("PandaReach-v3", reach, learning.zoo_curve("PandaReach-v3"))
    assert (target["metric"], target["mark"], target["zoo"], target["mean"], target["seeds"]) \
        == ("success rate", 10_000, 1.0, 1.0, 2)
    assert "| PandaReach-v3 | 1.00 | 1.00 | 2 | yes |" in "\n".join(
        learning.target_lines(["PandaReach-v3"], {"PandaReach-v3": {"sac": target}}))
    # A success task without a zoo reference: its own success rate at 300k, met n/a.
    other = [_run("PandaSlide-v3", 0, 300_000, 10_000, float, lambda x: 0.5)]
    target = learning.task_target("PandaSlide-v3", other, None)
    assert (target["metric"], target["mark"], target["zoo"]) == ("success rate", 300_000, None)
    assert "| PandaSlide-v3 | n/a | 0.50 | 1 | n/a |" in "\n".join(
        learning.target_lines(["PandaSlide-v3"], {"PandaSlide-v3": {"sac": target}}))


# --- the SB3 peer ---

def test_sb3_peer_takes_the_zoos_settings_per_task():
    reach = sb3_peer.zoo_settings("PandaReach-v3")
    assert reach["policy"] == "MultiInputPolicy" and reach["time_feature"]
    assert reach["her"] == {"goal_selection_strategy": "future", "n_sampled_goal": 4}
    assert reach["sac"] == {"batch_size": 256, "buffer_size": 1_000_000, "ent_coef": "auto",
                            "gamma": 0.95, "learning_rate": 1e-3, "learning_starts": 1000,
                            "policy_kwargs": {"net_arch": [64, 64], "n_critics": 1}}
    assert reach["normalize"] == {"gamma": 0.95} and reach["eval_every"] == 5_000
    push = sb3_peer.zoo_settings("PandaPush-v3")
    assert push["sac"]["tau"] == 0.05 and push["sac"]["batch_size"] == 2048
    assert push["sac"]["policy_kwargs"] == {"net_arch": [512, 512, 512], "n_critics": 2}
    assert "learning_starts" not in push["sac"] and push["normalize"] is None
    cheetah = sb3_peer.zoo_settings("HalfCheetah-v4")
    assert cheetah["sac"] == {"learning_starts": 10_000} and not cheetah["time_feature"]
    assert cheetah["her"] is None and cheetah["eval_every"] == 10_000
    bullet = sb3_peer.zoo_settings("HopperBulletEnv-v0")
    assert bullet["sac"]["use_sde"] and bullet["time_feature"] and bullet["linear_lr"]
    json.dumps([reach, push, cheetah, bullet])  # plain data: recorded in the done line
    with pytest.raises(ValueError, match="PandaReach-v3, PandaPush-v3 only"):
        sb3_peer.zoo_settings("PandaSlide-v3")
    with pytest.raises(learning.BenchmarkError, match="--with-sb3: PandaSlide-v3"):
        learning.sb3_settings("PandaSlide-v3")


def test_sb3_records_give_the_success_rate_curve(tmp_path):
    path = learning.sb3_path(tmp_path, "PandaReach-v3", 10_000, 0)
    path.parent.mkdir(parents=True)
    lines = [{"env_steps": 5000, "wall_s": 50.0, "eval_s": 0.0, "mean_return": -20.0,
              "success_rate": 0.55},
             {"env_steps": 10_000, "wall_s": 100.0, "eval_s": 2.0, "mean_return": -2.0,
              "success_rate": 1.0},
             {"done": True, "env_steps": 10_000}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    found = learning.collect_sb3(tmp_path)["PandaReach-v3"][0]
    assert found["success_env_steps"] == [5000, 10_000] and found["success"] == [0.55, 1.0]
    assert found["train_seconds"] == [50.0, 98.0]
    assert math.isclose(learning.interpolate(found["success_env_steps"], found["success"],
                                             7_500), 0.775)
