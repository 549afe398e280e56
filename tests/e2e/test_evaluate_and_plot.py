"""The evaluation CLI and the plots, on a policy from a real tiny training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from launch_helpers import REPO

pytestmark = pytest.mark.e2e


def cli(module: str, *args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd or REPO)


def evaluate(exp, *args, cwd=None):
    return cli("tfagents_system.run", "--exp_dir", exp, *args, cwd=cwd)


def test_videos_decode_with_expected_frames_and_content(tiny_finished, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "videos"
    result = evaluate(tiny_finished.exp, "--num_episodes", 2, "--seed", 3, "--output", out,
                      "--frame_size", "160x120", "--fps", 20)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoint"] == "policy_checkpoint_0000000300"
    assert summary["train_step"] == 300 and summary["seed"] == 3
    assert len(summary["videos"]) == 2
    for video, length in zip(summary["videos"], summary["lengths"]):
        frames = iio.imread(video)
        assert frames.shape == (length + 1, 120, 160, 3)  # the reset frame + one per step
        assert frames.std() > 5, "blank video"
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.01, \
            "frames do not change over time"
    # What was printed is what the summary says.
    for i, (ret, length) in enumerate(zip(summary["returns"], summary["lengths"])):
        assert f"episode {i}: return {ret:.2f}, length {length}" in result.stdout
    mean, std = np.mean(summary["returns"]), np.std(summary["returns"])
    assert f"mean return {mean:.2f} ± {std:.2f} over 2 episodes" in result.stdout


def test_same_seed_same_returns_and_default_output(tiny_finished, tmp_path):
    first = evaluate(tiny_finished.exp, "--num_episodes", 3, "--seed", 7, "--no_video",
                     cwd=tmp_path)
    second = evaluate(tiny_finished.exp, "--num_episodes", 3, "--seed", 7, "--no_video",
                      "--checkpoint", "300", "--output", tmp_path / "again")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    default_dir = tiny_finished.exp / "evaluations" / "policy_checkpoint_0000000300_seed7"
    a = json.loads((default_dir / "summary.json").read_text())
    b = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert a["returns"] == b["returns"] and a["lengths"] == b["lengths"]
    assert a["videos"] == [] and not list(default_dir.glob("*.mp4"))
    assert list(tmp_path.iterdir()) == [tmp_path / "again"], "the cwd was littered"


def test_list_shows_checkpoints(tiny_finished):
    result = evaluate(tiny_finished.exp, "--list")
    assert result.returncode == 0
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert rows == [["policy_checkpoint_0000000200", "200"],
                    ["policy_checkpoint_0000000300", "300"]]


def test_an_older_checkpoint_gives_other_weights(tiny_finished, tmp_path):
    old = evaluate(tiny_finished.exp, "--checkpoint", "policy_checkpoint_0000000200",
                   "--no_video", "--output", tmp_path / "old")
    assert old.returncode == 0, old.stderr
    assert json.loads((tmp_path / "old" / "summary.json").read_text())["train_step"] == 200


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_bad_input_experiment_without_policies(tmp_path):
    (tmp_path / "settings.json").write_text("{}")
    assert "no exported policy" in _one_error_line(evaluate(tmp_path))
    assert "not an experiment directory" in _one_error_line(evaluate(tmp_path / "nothing"))


def test_bad_input_unknown_checkpoint_lists_existing(tiny_finished):
    line = _one_error_line(evaluate(tiny_finished.exp, "--checkpoint", "policy_checkpoint_9"))
    assert "unknown checkpoint 'policy_checkpoint_9'" in line
    assert "policy_checkpoint_0000000200, policy_checkpoint_0000000300" in line


def test_bad_input_env_specs_do_not_match(tiny_finished, tmp_path):
    config = tmp_path / "pendulum.json"
    config.write_text('{"env_id": "Pendulum-v1"}')
    line = _one_error_line(evaluate(tiny_finished.exp, "--config", config, "--no_video"))
    assert "observation spec" in line and "does not match the policy" in line


def test_bad_input_env_without_rgb_rendering(tiny_finished, tmp_path):
    params = tmp_path / "no_render.py"
    params.write_text(
        "from tf_agents.environments import wrappers\n"
        "from tfagents_system.params import GymTrainParams\n\n\n"
        "class NoRender(wrappers.PyEnvironmentBaseWrapper):\n"
        "    def render(self, mode='rgb_array'):\n"
        "        raise NotImplementedError('no camera')\n\n\n"
        "class TrainParams(GymTrainParams):\n"
        "    def env_ctor(self, seed=None, *args, **kwargs):\n"
        "        return NoRender(super().env_ctor(seed, *args, **kwargs))\n")
    line = _one_error_line(evaluate(tiny_finished.exp, "--params", params, "--output",
                                    tmp_path / "o"))
    assert "cannot render rgb_array frames" in line and "--no_video" in line
    ok = evaluate(tiny_finished.exp, "--params", params, "--no_video", "--output", tmp_path / "o")
    assert ok.returncode == 0, ok.stderr


def test_bad_input_frame_size(tiny_finished):
    result = evaluate(tiny_finished.exp, "--frame_size", "big")
    assert result.returncode == 2 and "WIDTHxHEIGHT" in result.stderr


def test_plot_png_is_a_real_picture(tiny_finished, tmp_path):
    from PIL import Image

    out = tmp_path / "curves.png"
    result = cli("tfagents_system.plot", tiny_finished.exp, tiny_finished.exp, "--output", out)
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (960, 1280, 3)
    assert image.std() > 20, "blank canvas"
    # Coloured curves were drawn (not only black axes and text on white).
    colourful = (image.max(axis=2).astype(int) - image.min(axis=2)) > 60
    assert colourful.mean() > 0.002


def test_plot_bad_input(tmp_path):
    result = cli("tfagents_system.plot", tmp_path)
    assert result.returncode == 2 and "no TensorBoard events" in result.stderr
    result = cli("tfagents_system.plot", tmp_path / "missing")
    assert result.returncode == 2 and "not a directory" in result.stderr
