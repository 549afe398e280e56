"""`python -m tfagents_system.run --record FILE` on a tiny trained experiment: the file
holds the greedy episodes it printed, valid for the eval env's specs, without videos;
a file that exists, a bad suffix or a flag --record cannot go with give one error line
and leave no file behind."""

from __future__ import annotations

import json
import re

import numpy as np
from launch_helpers import one_error_line

from tfagents_system import demonstrations, run
from tfagents_system.tools import evaluation

CHECKPOINT = "policy_checkpoint_0000000200"


def cli(*args) -> int:
    """The evaluation command, in this process."""
    return run.main([str(a) for a in args])


def episode_returns(arrays: dict) -> list[float]:
    """Each recorded episode's return: the rewards of its steps after FIRST."""
    starts = list(np.flatnonzero(arrays["step_type"] == demonstrations.FIRST))
    bounds = zip(starts, starts[1:] + [len(arrays["step_type"])])
    return [float(np.sum(arrays["reward"][a + 1:b], dtype=np.float64)) for a, b in bounds]


def test_record_writes_the_printed_greedy_episodes(tiny_experiment, tmp_path, capsys):
    path = tmp_path / "demo.npz"
    assert cli("--exp_dir", tiny_experiment, "--record", path, "--num_episodes", 2,
               "--seed", 5) == 0
    out = capsys.readouterr().out
    arrays = demonstrations.read_file(path)
    _, env = evaluation.load_eval_setup(tiny_experiment, None, None, seed=0)
    demonstrations.validate(arrays, env.time_step_spec(), env.action_spec(), path)
    env.close()
    step_type = arrays["step_type"]
    assert list(step_type[[0, -1]]) == [0, 2]
    assert (step_type == 0).sum() == 2 and (step_type == 2).sum() == 2
    returns = episode_returns(arrays)
    output = tiny_experiment / "evaluations" / f"{CHECKPOINT}_seed5"
    summary = json.loads((output / "summary.json").read_text())
    assert np.allclose(returns, summary["returns"], rtol=1e-6)
    printed = [float(r) for r in re.findall(r"episode \d+: return (-?[\d.]+)", out)]
    assert np.allclose(returns, printed, atol=0.006)
    assert f"recorded 2 episodes, {len(step_type)} steps, mean return " \
           f"{np.mean(returns):.2f}: {path}" in out
    assert not list(output.glob("*.mp4"))  # --record without --output: no videos
    assert [p.name for p in tmp_path.iterdir()] == ["demo.npz"]


def test_record_refuses_an_existing_file_a_bad_suffix_and_other_tasks(tiny_experiment, tmp_path,
                                                                     capsys):
    existing = tmp_path / "demo.h5"
    existing.write_bytes(b"an earlier recording")
    line = one_error_line(capsys, cli("--exp_dir", tiny_experiment, "--record", existing))
    assert str(existing) in line and "exists; choose another name or delete it" in line
    assert existing.read_bytes() == b"an earlier recording"
    line = one_error_line(capsys, cli("--exp_dir", tiny_experiment, "--record",
                                      tmp_path / "demo.csv"))
    assert "demo.csv" in line and "name it .npz, .h5 or .hdf5" in line
    for extra in (["--list"], ["--sweep_config", "sweep.json"]):
        line = one_error_line(capsys, cli("--exp_dir", tiny_experiment, "--record",
                                          tmp_path / "new.npz", *extra))
        assert f"drop {extra[0]}" in line
    line = one_error_line(capsys, cli("--ensemble", tiny_experiment, "--record",
                                      tmp_path / "new.npz"))
    assert "drop --ensemble" in line
    assert [p.name for p in tmp_path.iterdir()] == ["demo.h5"]
