"""Supervision: crashes, hangs, crash loops, preemption and the status command,
with the real scripts, the real supervisord and real processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time

import launch_helpers as lh
import pytest

pytestmark = pytest.mark.e2e

# One gradient step per env step: the learner only advances while workers collect.
RATIO = "samples_per_insert = 32.0\n"



def train_step(exp):
    try:
        return json.loads((exp / "status" / "learner.json").read_text())["train_step"]
    except (OSError, ValueError, KeyError):
        return 0


def status_of(exp) -> str:
    result = subprocess.run([str(lh.REPO / "run_script.sh"), "--status", str(exp)],
                            capture_output=True, text=True, env=lh.launch_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_crashed_programs_are_restarted_and_training_completes(workdir):
    # One gradient step per 4 env steps keeps the learner busy long enough to
    # kill each program while the others are working.
    lh.write_params(workdir / "params.py", num_iter=60, steps=100, ckpt=2,
                 extra="samples_per_insert = 8.0\n")
    variables = lh.write_variables(workdir / "vars.sh")
    exp = workdir / "logs" / "tiny"
    logs = exp / "process_logs"

    def logged(name, text):
        return text in (logs / f"{name}.log").read_text()

    def worker_env_steps(exp):
        try:
            return json.loads((exp / "status" / "worker_0.json").read_text())["env_steps"]
        except (OSError, ValueError, KeyError):
            return 0

    proc = lh.start_script(variables, workdir / "run.log")
    try:
        assert lh.wait_for(lambda: train_step(exp) >= 600, 240), (workdir / "run.log").read_text()
        running = status_of(exp)
        assert ": running" in running
        for name in ("replay_server", "learner", "worker_0"):
            assert re.search(rf"^{name}\s+RUNNING\s+\d+\s+0\s+\d+:\d\d:\d\d$", running,
                             re.M), running
        assert re.search(r"^train step\s+\d+ / 6000", running, re.M), running

        # The replay server: restarted, restores its tables; the others reconnect to it
        # and go on (the learner samples and the worker inserts again).
        step, env_steps = train_step(exp), worker_env_steps(exp)
        lh.program_processes(exp)["replay_server"].kill()
        assert lh.wait_for(lambda: lh.launches_in_log(logs / "replay_server.log") == 2, 120)
        assert lh.wait_for(lambda: train_step(exp) > step + 300
                        and worker_env_steps(exp) > env_steps + 300, 180)
        assert lh.launches_in_log(logs / "learner.log") == 1
        assert lh.launches_in_log(logs / "worker_0.log") == 1
        # The learner: restarted, resumes from its last checkpoint.
        step = train_step(exp)
        lh.program_processes(exp)["learner"].kill()
        assert lh.wait_for(lambda: logged("learner", "resumed at train step"), 120)
        # A worker: restarted, goes on collecting.
        lh.program_processes(exp)["worker_0"].kill()
        assert lh.wait_for(lambda: lh.launches_in_log(logs / "worker_0.log") == 2, 120)
        assert lh.wait_for(lambda: train_step(exp) > step + 200, 180), "training did not go on"
        code = proc.wait(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, (workdir / "run.log").read_text()
    # The replay buffer is the learner's memory (packed_blocks): the replay
    # server's restart cost it nothing, and the restarted learner reloaded it.
    assert "packed_blocks" in (exp / "replay_layout.json").read_text()
    restored = [int(n) for n in re.findall(r"replay memory: (\d+) transitions restored",
                                           (logs / "learner.log").read_text())]
    assert len(restored) == 2 and restored[0] == 0 and restored[1] > 0, restored
    assert lh.latest_checkpoint_step(exp) == 6000
    finished = status_of(exp)
    assert ": finished" in finished and "train step      6000 / 6000 (100%)" in finished
    for name in ("learner", "replay_server", "worker_0"):
        assert re.search(rf"^{name}\s+STOPPED\s+-\s+1\s", finished, re.M), finished
    assert not lh.programs_of(exp)


HANGING_ENV = lh.TINY_BASE + '''
import os, time
from tf_agents.environments import wrappers
from tfagents_system.envs import load_gym_env


class HangOnce(wrappers.PyEnvironmentBaseWrapper):
    """Hangs forever at its 300th step, the first time in this experiment only."""

    def __init__(self, env, marker):
        super().__init__(env)
        self._marker, self._steps = marker, 0

    def _step(self, action):
        self._steps += 1
        if self._steps == 300 and not os.path.exists(self._marker):
            open(self._marker, "w").close()
            while True:
                time.sleep(1)
        return self._env.step(action)


class TrainParams(TinyParams):
    num_iter = 6
    num_steps_per_iter = 100
    eval_period_itrs = 3
    checkpoint_period_itrs = 2

    def env_ctor(self, seed=None, role="collect"):
        env = load_gym_env("Pendulum-v1", seed=seed, max_episode_steps=50)
        return HangOnce(env, self.env_config["marker"]) if role == "collect" else env

    def eval_env_args_kwargs(self):
        return (), {"role": "eval"}
'''


def test_hung_worker_is_detected_and_restarted(workdir):
    (workdir / "params.py").write_text(HANGING_ENV)
    (workdir / "config.json").write_text(json.dumps({"marker": str(workdir / "hung")}))
    variables = lh.write_variables(workdir / "vars.sh", SAC_CONFIG="config.json",
                                SAC_HANG_TIMEOUT=40)
    exp = workdir / "logs" / "tiny"
    start = time.monotonic()
    result = lh.run_script(variables, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (workdir / "hung").exists(), "the environment never hung: the test proves nothing"
    monitor = (exp / "process_logs" / "monitor.log").read_text()
    assert re.search(r"worker_0 made no progress for \d+s \(hang timeout 40s\)", monitor)
    assert lh.launches_in_log(exp / "process_logs" / "worker_0.log") == 2
    assert time.monotonic() - start < 300


CRASHING_WORKER = '''
import sys
from tfagents_system.envs import load_gym_env
from tfagents_system.params import TrainParamsBase


class TrainParams(TrainParamsBase):
    num_iter = 5
    num_steps_per_iter = 100
    batch_size = 32
    min_replay_size = 64

    def env_ctor(self, seed=None):
        if sys.argv[0].endswith("collect_worker.py"):
            raise RuntimeError("robot driver missing on this host")
        return load_gym_env("Pendulum-v1", seed=seed)
'''


def test_crash_loop_stops_the_run_with_a_clear_message(workdir):
    (workdir / "params.py").write_text(CRASHING_WORKER)
    variables = lh.write_variables(workdir / "vars.sh", SAC_MAX_RESTARTS=2)
    exp = workdir / "logs" / "tiny"
    start = time.monotonic()
    result = lh.run_script(variables, timeout=400)
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - start < 240, "the crash loop was not bounded"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "worker_0" in errors[0], result.stderr
    assert "RuntimeError: robot driver missing on this host" in result.stderr  # its last lines
    assert str(exp / "process_logs" / "worker_0.log") in result.stderr
    assert not lh.programs_of(exp)
    assert "failed" in status_of(exp)


def test_non_finite_training_stops_the_run_naming_the_train_step(workdir):
    """A reward scale that overflows the critic: the learner used to crash-loop on
    'Critic loss is inf or nan' until the restart limit; now the run stops at once with
    one line naming the train step, and nothing non-finite is published."""
    lh.write_params(workdir / "params.py", num_iter=3, steps=100,
                 extra="reward_scale_factor = 1e38")
    variables = lh.write_variables(workdir / "vars.sh")
    exp = workdir / "logs" / "tiny"
    result = lh.run_script(variables, timeout=400)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert re.search(r"training became non-finite after train step \d+ \(Critic loss is inf "
                     r"or nan", errors[0]), errors[0]
    restarts = json.loads((exp / "run" / "restarts.json").read_text())["restarts"] \
        if (exp / "run" / "restarts.json").is_file() else {}
    assert not restarts.get("learner"), restarts  # stopped, not restarted in a loop
    assert not lh.programs_of(exp)
    assert "failed" in status_of(exp)


def test_preemption_checkpoints_and_relaunch_resumes_everything(workdir):
    # Long enough that a 600 grad steps/s learner is still training when SIGTERM lands.
    lh.write_params(workdir / "params.py", num_iter=70, steps=200, ckpt=1000, extra=RATIO)
    config = workdir / "dr.json"
    config.write_text(json.dumps({
        "env_id": "InvertedPendulumBulletEnv-v0", "domain_randomization": True,
        "curriculum": {"mass_scale_spread": {"iters": [0, 3, 6, 9], "range": [0.0, 0.3]}}}))
    variables = lh.write_variables(workdir / "vars.sh", SAC_CONFIG=config)
    exp = workdir / "logs" / "tiny"
    logs = exp / "process_logs"
    proc = lh.start_script(variables, workdir / "first.log")
    try:
        assert lh.wait_for(lambda: train_step(exp) >= 800, 300)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what SLURM preemption and scancel send
        assert proc.wait(timeout=60) == 143
        assert time.monotonic() - t0 < 30
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not lh.programs_of(exp)
    # No periodic checkpoint was due: these were written because of the SIGTERM.
    stopped_at = lh.latest_checkpoint_step(exp)
    assert 800 <= stopped_at < 14000
    assert any((exp / "replay_checkpoints").iterdir())

    result = lh.run_script(variables, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    learner_log = (logs / "learner.log").read_text()
    assert f"resumed at train step {stopped_at} of 14000" in learner_log
    restored = [int(n) for n in re.findall(r"replay memory: (\d+) transitions restored",
                                           learner_log)]
    assert restored[-1] > 0, "the replay buffer was not restored"
    second_launch = lh.log_sections(logs / "worker_0.log")[-1]
    first_stage = re.search(r"curriculum: collect env set_state (\{.*\}) at iteration (\d+)",
                            second_launch)
    assert first_stage, second_launch[-2000:]
    assert int(first_stage.group(2)) >= stopped_at // 200
    assert json.loads(first_stage.group(1))["mass_scale_spread"] > 0, "restarted from stage 0"
