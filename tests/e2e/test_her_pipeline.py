"""HER through ./run_script.sh on a gymnasium goal env (PointGoal, by its
`module:EnvId` id): two workers relabel their episodes into the learner's memory
across a learner crash and a worker crash, every stored reward is the env's own for
the row's goal, and each transition is stored with exactly its four copies; on the
Reverb-sampled layout one gradient step per env step still holds and the final video
renders; an env without goals is refused at launch in one line."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
from launch_helpers import (
    REPO,
    kill_leftovers,
    latest_checkpoint_step,
    program_processes,
    run_script,
    start_script,
    wait_for,
    write_variables,
)

pytestmark = pytest.mark.e2e

GOALS = 4
GOAL_DIMS = 3
THRESHOLD = 0.05  # PointGoal's
PARAMS = f"""
import sys
sys.path.insert(0, {str(REPO / "examples")!r})
from manipulation import TrainParams as Base


class TrainParams(Base):
    num_iter = {{num_iter}}
    num_steps_per_iter = 200
    batch_size = 64
    samples_per_insert = 64.0
    samples_per_insert_error_buffer = 64.0 * 400
    n_buffer_init_steps = 200
    min_replay_size = 200
    replay_capacity = 100_000
    actor_fc_layers = (32, 32)
    critic_joint_fc_layers = (32, 32)
    n_eval_episodes = 1
    eval_period_itrs = 2
    checkpoint_period_itrs = 1
    her_goals_per_transition = {GOALS}
    learner_keeps_replay = {{keeps}}
"""


def experiment(workdir, num_iter: int, keeps: bool, workers: int, env_id: str | None = None,
               video: int = 0):
    (workdir / "params.py").write_text(PARAMS.format(num_iter=num_iter, keeps=keeps))
    config = {"env_id": env_id or "tfagents_system.testing_envs:PointGoal-v0"}
    (workdir / "config.json").write_text(json.dumps(config))
    return write_variables(workdir / "vars.sh", SAC_CONFIG=str(workdir / "config.json"),
                           SAC_NUM_COLLECT_WORKERS=workers, SAC_FINAL_VIDEO=video)


def stored_rows(exp):
    """The learner's replay log as (rows, observation columns) with the layout's leaves."""
    meta = json.loads((exp / "replay_memory" / "meta.json").read_text())
    rows = np.concatenate([np.fromfile(p, np.float32).reshape(-1, meta["row_size"])
                           for p in sorted((exp / "replay_memory").glob("rows_*.f32"))])
    layout = json.loads((exp / "replay_layout.json").read_text())
    sizes = [int(np.prod(leaf["shape"])) for leaf in layout["observation"]]
    paths = [leaf["path"] for leaf in layout["observation"]]
    return rows, paths, sizes


def test_two_workers_relabel_every_episode_across_a_learner_and_a_worker_crash(workdir):
    variables = experiment(workdir, num_iter=8, keeps=True, workers=2)
    exp = workdir / "logs" / "tiny"
    proc = start_script(variables, workdir / "run.log")
    try:
        assert wait_for(lambda: (exp / "checkpoints" / "checkpoint").is_file()
                        and latest_checkpoint_step(exp) >= 400, 300), \
            (workdir / "run.log").read_text()[-3000:]
        program_processes(exp)["learner"].send_signal(signal.SIGKILL)
        assert wait_for(lambda: latest_checkpoint_step(exp) >= 800, 300)
        program_processes(exp)["worker_1"].send_signal(signal.SIGKILL)  # mid-episode
        proc.wait(timeout=600)
    finally:
        leftovers = kill_leftovers(workdir)
    log = (workdir / "run.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    assert not leftovers
    restarts = json.loads((exp / "run" / "restarts.json").read_text()) \
        if (exp / "run" / "restarts.json").is_file() else {}
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert learner_log.count(" pinned to CPUs ") >= 2, restarts  # it crashed and resumed
    worker_log = (exp / "process_logs" / "worker_1.log").read_text()
    assert worker_log.count(" pinned to CPUs ") >= 2, restarts

    rows, paths, sizes = stored_rows(exp)
    assert paths == ["achieved_goal", "desired_goal", "observation"]
    obs_size = sum(sizes)
    at = np.cumsum([4] + sizes)
    obs, action = rows[:, 4:4 + obs_size], rows[:, 4 + obs_size:4 + obs_size + GOAL_DIMS]
    next_obs = rows[:, 4 + obs_size + GOAL_DIMS:]
    assert next_obs.shape[1] == obs_size
    desired = rows[:, at[1]:at[2]]
    next_achieved = next_obs[:, 0:GOAL_DIMS]
    np.testing.assert_array_equal(next_obs[:, GOAL_DIMS:2 * GOAL_DIMS], desired)
    # every stored reward is the env's sparse reward of the row's own goal
    distance = np.linalg.norm(next_achieved - desired, axis=1)
    expected = -(distance > THRESHOLD).astype(np.float32)
    assert np.array_equal(rows[:, 2], expected)
    assert (rows[:, 3] == 1.0).all()  # PointGoal never terminates: every row bootstraps
    # a transition (all but its goal) is stored with exactly its GOALS copies
    key = np.concatenate([obs[:, :GOAL_DIMS], obs[:, 2 * GOAL_DIMS:], action,
                          next_obs[:, :GOAL_DIMS], next_obs[:, 2 * GOAL_DIMS:]], axis=1)
    _, counts = np.unique(key, axis=0, return_counts=True)
    whole = counts % (1 + GOALS) == 0
    # the partly collected episode of each worker at the end goes out without copies;
    # the killed worker's episode in progress went nowhere (its block was not sent)
    assert (~whole).sum() <= 2 * 25, np.bincount(counts)
    assert whole.sum() >= 1000
    # the copies learned from: many successes the env itself almost never gives
    assert (rows[:, 2] == 0.0).mean() > 0.1


def test_one_gradient_step_per_env_step_holds_on_the_reverb_sampled_layout(workdir):
    variables = experiment(workdir, num_iter=4, keeps=False, workers=1, video=1)
    try:
        result = run_script(variables, timeout=600)
    finally:
        leftovers = kill_leftovers(workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not leftovers
    exp = workdir / "logs" / "tiny"
    assert json.loads((exp / "replay_layout.json").read_text())["layout"] == \
        "packed_transition"
    learner = json.loads((exp / "status" / "learner.json").read_text())
    worker = json.loads((exp / "status" / "worker_0.json").read_text())
    assert learner["rejected"] == {}  # the signed relabeled rows pass the learner's check
    # 800 gradient steps of 64 rows drew from 1 + GOALS rows per env step: the ratio
    # is per env step, so about 800 env steps after the 200 of the warm-up (far fewer
    # if each stored row counted as an env step)
    assert learner["train_step"] == 800
    assert worker["env_steps"] >= 800, worker
    # the final video renders the gymnasium env's rgb_array frames
    videos = list((exp / "evaluations").glob("final_*/episode_000.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_her_on_an_env_without_goals_is_refused_at_launch(workdir):
    variables = experiment(workdir, num_iter=1, keeps=True, workers=1,
                           env_id="InvertedPendulumBulletEnv-v0")
    result = run_script(variables, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "her_strategy='future': HER needs a dict observation with 'observation', " \
        "'achieved_goal' and 'desired_goal'" in errors[0]
    assert not (workdir / "logs" / "tiny").exists()
