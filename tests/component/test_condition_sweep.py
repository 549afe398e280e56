"""Evaluation across environment conditions (tfagents_system.run --sweep_config) on a tiny
trained experiment: one table row per condition in the CSV, Markdown and JSON, a real
plot, returns that move with a condition that matters, and bad sweep files reported in
one error line naming the file and the field."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from launch_helpers import one_error_line, write_params

from tfagents_system import run
from tfagents_system.tools import condition_sweep


def cli(*args) -> int:
    """The evaluation command, in this process (TensorFlow is imported once)."""
    return run.main([str(a) for a in args])


def write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_parameter_sweep_writes_table_json_and_plot(tiny_experiment, tmp_path):
    from PIL import Image

    sweep = write(tmp_path / "damping.json", {"parameter": "joint_damping", "values": [0.0, 10.0],
                                              "config": {"domain_randomization": True}})
    out = tmp_path / "out"
    assert cli("--exp_dir", tiny_experiment, "--sweep-config", sweep, "--num_episodes", 3,
               "--output", out) == 0
    result = json.loads((out / "robustness.json").read_text())
    assert result["checkpoint"] == "policy_checkpoint_0000000200" and result["seed"] == 0
    nominal, damped = result["conditions"]
    assert [nominal["condition"], damped["condition"]] == ["joint_damping=0.0",
                                                          "joint_damping=10.0"]
    assert damped["set_state"] == {"joint_damping": 10.0}
    for row in (nominal, damped):
        assert len(row["returns"]) == 3 and row["mean_return"] == pytest.approx(
            np.mean(row["returns"]))
    # Damping every joint (U(0, 10) per joint and episode) changes how the pole falls from
    # the same initial states (each condition's env has the same seed).
    assert damped["returns"] != nominal["returns"]
    assert damped["mean_return"] != pytest.approx(nominal["mean_return"])

    with open(out / "robustness.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["joint_damping"] for r in rows] == ["0.0", "10.0"]
    assert [float(r["mean_return"]) for r in rows] == [nominal["mean_return"],
                                                       damped["mean_return"]]
    table = (out / "robustness.md").read_text().splitlines()
    assert table[0].startswith("| condition | joint_damping | episodes | mean_return |")
    assert len(table) == 2 + 2 and f"| {nominal['mean_return']:.2f} |" in table[2]

    image = np.asarray(Image.open(out / "robustness.png").convert("RGB"))
    assert image.shape == (500, 800, 3) and image.std() > 20
    colourful = (image.max(axis=2).astype(int) - image.min(axis=2)) > 60
    assert colourful.mean() > 0.002, "no curve was drawn"


def test_listed_conditions_with_an_ensemble(tiny_experiment, tmp_path):
    sweep = write(tmp_path / "listed.json", {
        "conditions": [{"label": "nominal"},
                       {"label": "5 steps", "config": {"max_episode_steps": 5}},
                       {"label": "heavy", "set_state": {"mass_scale_spread": 0.5}}],
        "config": {"domain_randomization": True}})
    assert cli("--ensemble", f"{tiny_experiment}:100", f"{tiny_experiment}:200",
               "--sweep_config", sweep, "--num_episodes", 2) == 0
    [out] = (tiny_experiment / "evaluations").glob("sweep_listed_ensemble_*_seed0")
    result = json.loads((out / "robustness.json").read_text())
    assert [m["train_step"] for m in result["members"]] == [100, 200]
    nominal, short, heavy = result["conditions"]
    assert short["returns"] == [5.0, 5.0] and short["lengths"] == [5, 5]  # cut at 5 steps
    assert min(nominal["lengths"]) > 5
    assert heavy["set_state"] == {"mass_scale_spread": 0.5}
    with open(out / "robustness.csv") as fh:
        header = next(csv.reader(fh))
    assert header[:3] == ["condition", "episodes", "mean_return"]
    assert (out / "robustness.png").stat().st_size > 10_000


SUCCESS_AFTER_4_STEPS = """
import gym as _gym

class Lasted(_gym.Wrapper):
    def reset(self, **kwargs):
        self.steps = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        observation, reward, done, info = self.env.step(action)
        self.steps += 1
        return observation, reward, done, {**info, "is_success": self.steps >= 4}

def gym_wrappers(self):
    return (*super().gym_wrappers(), self.Lasted)
"""


def test_success_rate_per_condition_when_the_env_reports_success(tiny_experiment, tmp_path):
    params = write_params(tmp_path / "params.py", num_iter=2, steps=100, ckpt=1,
                          extra=SUCCESS_AFTER_4_STEPS)
    sweep = write(tmp_path / "limits.json", {"parameter": "max_episode_steps",
                                             "values": [3, 5], "apply": "config"})
    out = tmp_path / "out"
    assert cli("--exp_dir", tiny_experiment, "--params", params, "--sweep_config", sweep,
               "--num_episodes", 2, "--no_video", "--output", out) == 0
    short, longer = json.loads((out / "robustness.json").read_text())["conditions"]
    assert (short["success_rate"], longer["success_rate"]) == (0.0, 1.0)
    with open(out / "robustness.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["success_rate"] for r in rows] == ["0.0", "1.0"]
    assert (out / "robustness.png").stat().st_size > 10_000


def test_tables_hold_every_column_when_only_some_conditions_report_success(tmp_path):
    rows = [{"condition": "harsh", "mean_return": 1.0},
            {"condition": "nominal", "mean_return": 9.0, "success_rate": 0.5}]
    condition_sweep.write_tables(rows, tmp_path)
    with open(tmp_path / "robustness.csv") as fh:
        assert [r["success_rate"] for r in csv.DictReader(fh)] == ["n/a", "0.5"]
    assert "| harsh | 1.00 | n/a |" in (tmp_path / "robustness.md").read_text()


def test_parameter_form_expands_to_one_condition_per_value(tmp_path):
    sweep = condition_sweep.load_sweep(write(tmp_path / "steps.json", {
        "parameter": "max_episode_steps", "values": [10, 20], "apply": "config"}))
    assert [(c.label, c.value, c.set_state, c.config) for c in sweep.conditions] == [
        ("max_episode_steps=10", 10, {}, {"max_episode_steps": 10}),
        ("max_episode_steps=20", 20, {}, {"max_episode_steps": 20})]


@pytest.mark.parametrize("content, expected", [
    (None, "not found"),
    ("{", "not valid JSON"),
    ({"grid": {}}, "unknown key(s) grid"),
    ({"parameter": "x", "values": [1], "conditions": []}, 'either "parameter"'),
    ({"parameter": "", "values": [1]}, '"parameter" must be a non-empty string'),
    ({"parameter": "joint_damping", "values": []}, '"values" must be a non-empty list'),
    ({"parameter": "joint_damping", "values": [1, 1]}, '"values" lists a value twice'),
    ({"parameter": "joint_damping", "values": [1], "apply": "physics"},
     '"apply" must be "set_state" or "config"'),
    ({"parameter": "joint_damping", "values": [1], "config": [1]}, '"config" must be an object'),
    ({"conditions": [{"label": "a"}, {"label": "a"}]}, '"conditions" repeat a label'),
    ({"conditions": [{"label": "a", "set_stat": {}}]}, '"conditions"[0]: unknown key(s) set_stat'),
    ({"conditions": [{"set_state": {}}]}, '"conditions"[0]: "label" must be'),
])
def test_bad_sweep_file(tiny_experiment, tmp_path, capsys, content, expected):
    path = tmp_path / "sweep.json"
    if content is not None:
        write(path, content)
    line = one_error_line(capsys, cli("--exp_dir", tiny_experiment, "--sweep_config", path))
    assert f"sweep file {path}: " in line and expected in line


@pytest.mark.parametrize("content, expected", [
    ({"parameter": "joint_damping", "values": [1.0]},
     'condition "joint_damping=1.0": sets joint_damping with set_state, but the eval env'),
    ({"parameter": "joint_damping", "values": [0.0, 50.0],
      "config": {"domain_randomization": True}},
     'condition "joint_damping=50.0": env.set_state({\'joint_damping\': 50.0}) raised '
     "ValueError"),
    ({"conditions": [{"label": "odd", "config": {"gym_kwargs.no_such_argument": 1}}]},
     'condition "odd": TrainParams.env_ctor raised TypeError'),
])
def test_bad_condition_for_the_env(tiny_experiment, tmp_path, capsys, content, expected):
    path = write(tmp_path / "sweep.json", content)
    out = tmp_path / "out"
    line = one_error_line(capsys, cli("--exp_dir", tiny_experiment, "--sweep_config", path,
                                      "--output", out))
    assert f"sweep file {path}: " in line and expected in line
    assert not out.exists(), "episodes ran before every condition was checked"
