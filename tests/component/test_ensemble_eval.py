"""Policy ensembles in the evaluation CLI (tfagents_system.run --ensemble / --export), on
a tiny trained experiment: an ensemble of one is the single policy, an ensemble of two
acts with the mean of its members, runs are reproducible, the export loads with plain
TensorFlow in a fresh process, and bad members give one error line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from launch_helpers import one_error_line

from tfagents_system import run
from tfagents_system.tools import ensemble, evaluation

REPO = Path(__file__).resolve().parents[2]
CKPT_100, CKPT_200 = "policy_checkpoint_0000000100", "policy_checkpoint_0000000200"


def observations(count: int = 8) -> np.ndarray:
    """Pendulum observations (5 floats), varied enough to move the actions."""
    return np.random.default_rng(0).normal(0.0, 0.5, size=(count, 5)).astype(np.float32)


def greedy_actions(policy, obs: np.ndarray) -> np.ndarray:
    """A py policy's actions, one observation at a time (as the evaluation loop calls it)."""
    from tf_agents.trajectories import time_step as ts

    return np.array([policy.action(ts.transition(o, np.float32(0.0))).action for o in obs])


def cli(*args) -> int:
    """The evaluation command, in this process (TensorFlow is imported once)."""
    return run.main([str(a) for a in args])


def summary(output: Path) -> dict:
    return json.loads((output / "summary.json").read_text())


@pytest.fixture(scope="module")
def policies(tiny_experiment) -> dict:
    """The two checkpoints' greedy policies, and ensembles of one and of both, loaded once."""
    def single(checkpoint):
        return evaluation.load_greedy_policy(
            tiny_experiment, evaluation.find_checkpoint(tiny_experiment, checkpoint))

    def members(*arguments):
        return ensemble.load_ensemble(ensemble.resolve_members(list(arguments), "latest"))

    # The second member of "two" has no selector: it takes the default checkpoint, latest.
    return {"100": single("100"), "200": single("200"),
            "one": members(f"{tiny_experiment}:100"),
            "two": members(f"{tiny_experiment}:{CKPT_100}", str(tiny_experiment))}


def test_ensemble_of_one_is_the_single_policy(tiny_experiment, policies, tmp_path):
    import imageio.v3 as iio

    obs = observations()
    np.testing.assert_array_equal(greedy_actions(policies["one"].policy, obs),
                                  greedy_actions(policies["100"], obs))

    args = ("--num_episodes", 2, "--seed", 5, "--frame_size", "64x48")
    assert cli("--exp_dir", tiny_experiment, "--checkpoint", "100", *args, "--no_video",
               "--output", tmp_path / "single") == 0
    assert cli("--ensemble", f"{tiny_experiment}:{CKPT_100}", *args,
               "--output", tmp_path / "ensemble") == 0
    a, b = summary(tmp_path / "single"), summary(tmp_path / "ensemble")
    assert b["returns"] == a["returns"] and b["lengths"] == a["lengths"]
    assert b["members"] == [{"experiment": str(tiny_experiment), "checkpoint": CKPT_100,
                             "train_step": 100}]
    for video, length in zip(b["videos"], b["lengths"], strict=True):  # videos as for one
        assert iio.imread(video).shape == (length + 1, 48, 64, 3)


def test_ensemble_of_two_acts_with_the_mean_and_is_reproducible(tiny_experiment, policies,
                                                                 tmp_path):
    obs = observations()
    old, new = greedy_actions(policies["100"], obs), greedy_actions(policies["200"], obs)
    assert np.abs(old - new).max() > 1e-3, "the two checkpoints act alike: nothing to average"
    np.testing.assert_allclose(greedy_actions(policies["two"].policy, obs), (old + new) / 2,
                               atol=1e-6)

    runs = []
    for name in ("first", "second"):
        assert cli("--ensemble", f"{tiny_experiment}:100", f"{tiny_experiment}:200",
                   "--num_episodes", 2, "--seed", 3, "--no_video",
                   "--output", tmp_path / name) == 0
        runs.append(summary(tmp_path / name))
    assert runs[0] == runs[1]
    assert [m["train_step"] for m in runs[0]["members"]] == [100, 200]
    assert runs[0]["ensemble"] == policies["two"].name  # the same members, the same name


def test_export_loads_with_plain_tensorflow_in_a_fresh_process(tiny_experiment, policies,
                                                               tmp_path):
    from tf_agents.policies import py_tf_eager_policy

    export = tmp_path / "exported"
    assert cli("--ensemble", f"{tiny_experiment}:100", f"{tiny_experiment}:200",
               "--export", export) == 0
    assert json.loads((export / "ensemble.json").read_text())["members"][1]["train_step"] == 200
    obs = observations()
    np.save(tmp_path / "obs.npy", obs)
    expected = policies["two"].module.act(obs).numpy()

    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"model = tf.saved_model.load({str(export)!r})\n"
        f"obs = np.load({str(tmp_path / 'obs.npy')!r})\n"
        "serving = model.signatures['serving_default'](observation=tf.constant(obs))\n"
        "print(json.dumps({'act': model.act(obs).numpy().tolist(),\n"
        "                  'serving': serving['output_0'].numpy().tolist(),\n"
        "                  'modules': [m for m in sys.modules\n"
        "                              if m.startswith(('tf_agents', 'tfagents_system'))]}))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env=dict(env, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["modules"] == []
    np.testing.assert_allclose(loaded["act"], expected, atol=1e-6)
    np.testing.assert_allclose(loaded["serving"], expected, atol=1e-6)

    # TF-Agents loads it as a policy too (the specs file travels with it).
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(str(export), load_specs_from_pbtxt=True)
    np.testing.assert_allclose(greedy_actions(policy, obs), expected, atol=1e-6)


def test_bad_member_not_an_experiment_through_the_real_command(tiny_experiment, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tfagents_system.run", "--ensemble", str(tiny_experiment),
         str(tmp_path / "nothing"), "--no_video"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"--ensemble member '{tmp_path / 'nothing'}'" in errors[0]
    assert "not an experiment directory" in errors[0]


def test_bad_member_missing_checkpoint(tiny_experiment, capsys):
    line = one_error_line(capsys, cli("--ensemble", tiny_experiment, f"{tiny_experiment}:999"))
    assert f"--ensemble member '{tiny_experiment}:999'" in line
    assert "unknown checkpoint '999'" in line and f"available: {CKPT_100}, {CKPT_200}" in line


def test_bad_member_with_other_specs(tiny_experiment, tmp_path, capsys):
    other = tmp_path / "other"  # the experiment, its action spec made 2-dimensional
    other.mkdir()
    shutil.copy(tiny_experiment / "settings.json", other)
    shutil.copytree(tiny_experiment / "policies" / "greedy_policy",
                    other / "policies" / "greedy_policy")
    shutil.copytree(tiny_experiment / "policies" / "checkpoints" / CKPT_200,
                    other / "policies" / "checkpoints" / CKPT_200)
    specs = other / "policies" / "greedy_policy" / "policy_specs.pbtxt"
    head, key, tail = specs.read_text().partition('key: "action"')
    specs.write_text(head + key + tail.replace("size: 1", "size: 2", 1))

    line = one_error_line(capsys, cli("--ensemble", tiny_experiment, other, "--no_video"))
    assert f"--ensemble member '{other}': its specs" in line
    assert "action [((2,), 'float32')]" in line and "action [((1,), 'float32')]" in line
    assert f"first member '{tiny_experiment}'" in line


def test_bad_export_flags(tiny_experiment, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    line = one_error_line(capsys, cli("--ensemble", tiny_experiment, "--export",
                                      tmp_path / "taken"))
    assert f"--export {tmp_path / 'taken'}: exists and is not an empty directory" in line
    line = one_error_line(capsys, cli("--exp_dir", tiny_experiment, "--export", tmp_path / "x"))
    assert "--export writes an ensemble: use --ensemble" in line


@pytest.mark.parametrize("argument, expected", [
    ("logs/a", ("logs/a", "latest")),
    ("logs/a:300", ("logs/a", "300")),
    ("logs/a:policy_checkpoint_0000000300", ("logs/a", "policy_checkpoint_0000000300")),
    ("/x/y:z:latest", ("/x/y:z", "latest")),
])
def test_member_syntax(argument, expected):
    exp_dir, checkpoint = ensemble.parse_member(argument, "latest")
    assert (str(exp_dir), checkpoint) == expected


def test_member_syntax_existing_directory_with_a_colon(tmp_path):
    odd = tmp_path / "run:1"
    odd.mkdir()
    assert ensemble.parse_member(str(odd), "200") == (odd, "200")
