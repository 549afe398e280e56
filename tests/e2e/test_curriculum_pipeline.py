"""The curriculum in the real multi-process pipeline, with an environment that
records every set_state call, and a worker killed mid-run (supervisord restarts it)."""

from __future__ import annotations

import json
import re

import pytest
from launch_helpers import (
    TINY_BASE,
    kill_leftovers,
    log_sections,
    program_processes,
    start_script,
    wait_for,
    write_variables,
)

pytestmark = pytest.mark.e2e

RECORDING_PARAMS = TINY_BASE + '''
import json, os
from tf_agents.environments import wrappers
from tfagents_system.envs import load_gym_env


class Recording(wrappers.PyEnvironmentBaseWrapper):
    """Appends every set_state call to a file: (pid, role, values)."""

    def __init__(self, env, path, role):
        super().__init__(env)
        self._path, self._role = path, role

    def set_state(self, state):
        with open(self._path, "a") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "role": self._role, "state": state}) + "\\n")


class TrainParams(TinyParams):
    # The learner waits while the worker is down (TinyParams' one gradient step per
    # env step), so the restarted worker still has stages ahead of it.
    num_iter = 12
    num_steps_per_iter = 100
    eval_period_itrs = 1
    checkpoint_period_itrs = 100

    def env_ctor(self, seed=None, role="collect"):
        env = load_gym_env("Pendulum-v1", seed=seed, max_episode_steps=20)
        return Recording(env, self.env_config["record_file"], role)

    def collect_env_args_kwargs(self):
        return (), {"role": "collect"}

    def eval_env_args_kwargs(self):
        return (), {"role": "eval"}
'''

APPLIED = re.compile(r"curriculum: (collect|eval) env set_state (\{.*\}) at iteration (\d+)")


def test_values_follow_the_schedule_and_survive_a_worker_restart(tmp_path):
    from tfagents_system.curriculum import parse_curriculum

    record = tmp_path / "set_state.jsonl"
    config = {
        "record_file": str(record),
        "curriculum": {
            "x": {"iters": [0, 3, 6, 9], "range": [0, 30]},
            "y": {"iters": [4], "range": [1.5, 1.5], "apply_to": ["collect", "eval"]},
        },
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "params.py").write_text(RECORDING_PARAMS)
    variables = write_variables(tmp_path / "vars.sh", SAC_CONFIG="config.json",
                                SAC_NUM_COLLECT_WORKERS=1)
    curriculum = parse_curriculum(config)
    exp = tmp_path / "logs" / "tiny"

    proc = start_script(variables, tmp_path / "run.log")
    try:
        status = exp / "status" / "worker_0.json"

        def worker_iteration():
            try:
                return json.loads(status.read_text())["train_step_seen"] // 100
            except (OSError, ValueError, KeyError):
                return -1

        assert wait_for(lambda: worker_iteration() >= 4, 240), (tmp_path / "run.log").read_text()
        worker = program_processes(exp)["worker_0"]
        first_pid = worker.pid
        worker.kill()  # supervisord restarts it
        assert proc.wait(timeout=400) == 0, (tmp_path / "run.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        leftovers = kill_leftovers(tmp_path)
    assert not leftovers
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    launches = log_sections(exp / "process_logs" / "worker_0.log")
    assert len(launches) == 2, "the worker ran twice"
    # (The launcher's own check tried every value on its throwaway envs first.)
    second_pid = calls[-1]["pid"]
    assert second_pid != first_pid
    for pid, text in zip((first_pid, second_pid), launches):
        applied = [(role, json.loads(values), int(k)) for role, values, k in APPLIED.findall(text)]
        recorded = [(c["role"], c["state"]) for c in calls if c["pid"] == pid]
        # Every logged application reached the environment, in the same order...
        assert [(r, v) for r, v, _ in applied] == recorded
        for role, values, k in applied:
            # ...with exactly the schedule's values for the worker's iteration.
            assert values == curriculum.values_at(k, role), (role, values, k)
            if role == "eval":
                assert set(values) == {"y"}, "x must not reach the eval env"
    first = [(r, json.loads(v), int(k)) for r, v, k in APPLIED.findall(launches[0])]
    second = [(r, json.loads(v), int(k)) for r, v, k in APPLIED.findall(launches[1])]
    assert [v["x"] for r, v, _ in first if r == "collect"][:2] == [0, 10]
    # After the restart the current stage is applied at once, not stage 0.
    restart_role, restart_values, restart_k = second[0]
    assert restart_role == "collect" and restart_k >= 4
    assert restart_values == curriculum.values_at(restart_k)
    assert restart_values["x"] >= 10 and restart_values["y"] == 1.5
    assert [v for r, v, _ in second if r == "collect"][-1] == {"x": 30, "y": 1.5}
    # The schedule is visible in TensorBoard.
    from tfagents_system.tools.plots import read_scalars

    scalars = read_scalars(exp / "collect" / "worker_0")
    assert set(scalars["curriculum/x"].values) <= {0, 10, 20, 30}
    assert scalars["curriculum/x"].values.max() == 30
