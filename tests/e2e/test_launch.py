"""End-to-end: the real ./run_script.sh, real processes, tiny budgets."""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import time

import launch_helpers as lh
import psutil
import pytest

from tfagents_system import process

pytestmark = pytest.mark.e2e



def test_tiny_run_completes_with_every_artifact(tiny_finished):
    result, exp = tiny_finished.result, tiny_finished.exp
    variables = tiny_finished.variables
    assert not lh.programs_of(exp), "a program outlived the launcher"

    # The launcher reported its CPU layout and where everything is.
    for word in ("replay_server", "learner", "worker_0", "worker_1", "training complete",
                 str(exp / "checkpoints"), str(exp / "process_logs")):
        assert word in result.stdout

    # Every program ran, pinned, and logged to its own file.
    layout = json.loads((exp / "launches.jsonl").read_text().splitlines()[-1])["cpu_layout"]
    for name, cpus in [("replay_server", layout["replay_server"]),
                       ("learner", layout["learner"]),
                       ("worker_0", layout["workers"][0]), ("worker_1", layout["workers"][1])]:
        log = (exp / "process_logs" / f"{name}.log").read_text()
        intra, inter = process.thread_pools(len(cpus))
        assert f"pinned to CPUs {cpus}, {intra} TF intra-op threads, {inter} inter-op" in log, \
            name

    # The buffer filled, training reached its target, workers collected and evaluated.
    learner = json.loads((exp / "status" / "learner.json").read_text())
    assert learner["train_step"] == 300
    assert learner["replay_size"] >= 64
    # SAC on float32 vectors: the learner kept the buffer, and logged every
    # transition it stored.
    assert json.loads((exp / "replay_layout.json").read_text())["layout"] == "packed_blocks"
    assert (exp / "replay_memory" / "meta.json").is_file()
    logged = sum(p.stat().st_size for p in (exp / "replay_memory").glob("rows_*.f32"))
    assert logged >= 4 * 64 * json.loads((exp / "replay_memory" / "meta.json").read_text())[
        "row_size"]
    for w in ("worker_0", "worker_1"):
        status = json.loads((exp / "status" / f"{w}.json").read_text())
        assert status["env_steps"] > 0 and status.get("finished")
    assert json.loads((exp / "TRAINING_COMPLETE.json").read_text())["train_step"] == 300
    assert lh.latest_checkpoint_step(exp) == 300
    for policy in ("collect_policy", "greedy_policy", "final/collect_policy",
                   "final/greedy_policy"):
        assert (exp / "policies" / policy / "READY").is_file(), policy
        assert (exp / "policies" / policy / "saved_model.pb").is_file(), policy
    evals = lh.eval_returns(exp)
    assert set(evals) == {"worker_0", "worker_1"}
    assert all(steps[-1][0] == 300 for steps in evals.values()), evals
    for tb in ("train", "collect/worker_0", "collect/worker_1"):
        assert any((exp / tb).glob("events.out.tfevents.*")), tb
    for copy in ("config.json", "params.py", "settings.json"):
        assert (exp / copy).is_file()
    assert (exp / "params.py").read_text() == (tiny_finished.workdir / "params.py").read_text()

    # The run ends with a video of the final greedy policy and the learning curves.
    last = result.stdout.strip().splitlines()[-2:]
    video = exp / "evaluations" / "final_seed0" / "episode_000.mp4"
    assert last[0].split()[:2] == ["video", str(video)], last
    assert last[1].split() == ["learning", "curves", str(exp / "learning_curves.png")], last
    assert video.stat().st_size > 1000
    assert (exp / "learning_curves.png").stat().st_size > 10_000

    # Launching it again: finished, exit 0, nothing touched.
    before = {p: p.stat().st_mtime_ns for p in exp.rglob("*") if p.is_file()}
    again = lh.run_script(variables)
    assert again.returncode == 0
    assert "already finished" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in exp.rglob("*") if p.is_file()} == before


def test_sigint_leaves_a_resumable_experiment(workdir):
    # samples_per_insert paces the learner by collection (one gradient step per 40 env
    # steps), so the run cannot finish between its first checkpoint and the signal.
    lh.write_params(workdir / "params.py", num_iter=8, steps=100, ckpt=1,
                 extra="samples_per_insert = 0.8\n")
    variables = lh.write_variables(workdir / "vars.sh")
    exp = workdir / "logs" / "tiny"
    stopped_at = lh.interrupt_after_first_checkpoint(variables, exp, workdir / "first.log")
    assert not lh.programs_of(exp)
    assert not (exp / "TRAINING_COMPLETE.json").exists()
    assert 0 < stopped_at < 800

    result = lh.run_script(variables)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming experiment" in result.stdout
    learner_log = (exp / "process_logs" / "learner.log").read_text()
    assert f"resumed at train step {stopped_at} of 800" in learner_log
    assert lh.latest_checkpoint_step(exp) == 800
    assert len((exp / "launches.jsonl").read_text().splitlines()) == 2


def test_sigterm_stops_every_program_within_seconds(long_run):
    exp = long_run.exp
    assert lh.wait_for(lambda: (exp / "status" / "learner.json").is_file(), 240)
    assert set(lh.program_processes(exp)) == {"replay_server", "learner", "worker_0"}
    t0 = time.monotonic()
    long_run.proc.send_signal(signal.SIGTERM)
    assert long_run.proc.wait(timeout=60) == 143
    assert time.monotonic() - t0 < 30
    assert not lh.programs_of(exp)
    # The learner saved its progress, and the replay buffer, on the way out.
    assert lh.latest_checkpoint_step(exp) > 0
    assert any((exp / "replay_checkpoints").iterdir())


def test_two_experiments_at_once_do_not_collide(workdir):
    lh.write_params(workdir / "params.py", num_iter=2, steps=100, ckpt=1)
    first = lh.write_variables(workdir / "a.sh", SAC_EXP_NAME="a")
    second = lh.write_variables(workdir / "b.sh", SAC_EXP_NAME="b")
    procs = [lh.start_script(first, workdir / "a.log"), lh.start_script(second, workdir / "b.log")]
    try:
        codes = [p.wait(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0], (workdir / "a.log").read_text() + (workdir / "b.log").read_text()
    ports = [json.loads((workdir / "logs" / n / "launches.jsonl").read_text())["port"]
             for n in ("a", "b")]
    assert ports[0] != ports[1]


@pytest.mark.parametrize("example,config,obs_size", [
    ("minitaur", "minitaur.json", 28),
    ("locomotion", "halfcheetah.json", 26 + 1),  # + the remaining-time feature
    ("locomotion", "hopper.json", 15 + 1),
])
def test_shipped_examples_collect_train_and_checkpoint(workdir, example, config, obs_size):
    """The big examples start for a few iterations with their own env and networks."""
    warmup = "n_buffer_init_steps = 300" if example == "locomotion" else ""
    lh.write_params(workdir / "params.py", num_iter=2, steps=50, ckpt=1, base=example, extra=f"""
        n_buffer_init_episodes = 1
        {warmup}
        n_eval_episodes = 0
        actor_fc_layers = Base.actor_fc_layers
        critic_joint_fc_layers = Base.critic_joint_fc_layers
    """)
    variables = lh.write_variables(workdir / "vars.sh", SAC_CONFIG=str(lh.REPO / "config" / config))
    result = lh.run_script(variables, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    exp = workdir / "logs" / "tiny"
    assert lh.latest_checkpoint_step(exp) == 100
    assert json.loads((exp / "status" / "worker_0.json").read_text())["env_steps"] >= 1
    assert json.loads((exp / "status" / "learner.json").read_text())["replay_size"] >= 64
    settings = json.loads((exp / "settings.json").read_text())
    assert settings["env_config"] == json.loads((lh.REPO / "config" / config).read_text())
    # Replay rows: step types, reward, discount, then s, a, s' (the observation as built).
    action_size = {"minitaur.json": 8, "halfcheetah.json": 6, "hopper.json": 3}[config]
    meta = json.loads((exp / "replay_memory" / "meta.json").read_text())
    assert meta["row_size"] == 4 + 2 * obs_size + action_size
    if example == "locomotion":
        assert "uniform random actions: 300 steps" in (
            exp / "process_logs" / "worker_0.log").read_text()


def test_default_training_variables_are_valid():
    """The shipped training_variables.sh names existing files and only known variables."""
    from tfagents_system import settings

    variables = settings.load_training_variables(lh.REPO / "training_variables.sh")
    assert variables.params.is_file() and variables.config.is_file()
    assert variables.num_workers is None  # auto: scales with the machine
    assert variables.logs_dir == lh.REPO / "logs"


def test_usage_without_argument():
    result = lh.run_script(None)
    assert result.returncode == 2
    assert "usage: ./run_script.sh TRAINING_VARIABLES.sh" in result.stderr


def test_help():
    result = subprocess.run([str(lh.REPO / "run_script.sh"), "--help"], capture_output=True,
                            text=True)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_no_orphans_when_the_launcher_is_killed(long_run):
    """Even SIGKILL to run_script.sh (no cleanup code runs) leaves no program behind."""
    exp = long_run.exp
    assert lh.wait_for(lambda: len(lh.program_processes(exp)) == 3, 240)
    long_run.proc.kill()
    long_run.proc.wait(timeout=10)
    assert lh.wait_for(lambda: not lh.programs_of(exp), 60), lh.programs_of(exp)


def test_a_second_launch_is_refused_while_the_first_runs_or_stops(long_run):
    """Two launches of one experiment: the second is refused, also right after the first
    launcher was killed with SIGKILL while its programs are still stopping, and nothing
    of the running experiment is touched."""
    exp = long_run.exp
    variables = long_run.log.parent / "vars.sh"
    assert lh.wait_for(lambda: len(lh.program_processes(exp)) == 3, 240)
    conf = exp / "run" / "supervisord.conf"
    before = (conf.stat().st_mtime_ns, (exp / "launches.jsonl").read_text())

    result = lh.run_script(variables, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is already running" in result.stderr

    # Programs that take long to stop: SIGTERM stays pending while they are stopped.
    slow = [lh.program_processes(exp)[name] for name in ("learner", "replay_server")]
    for proc in slow:
        proc.suspend()
    try:
        long_run.proc.kill()
        long_run.proc.wait(timeout=10)
        result = lh.run_script(variables, timeout=120)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "is already running" in result.stderr and "may still be stopping" in result.stderr
        assert lh.programs_of(exp)  # the window was real: the old programs were still there
        assert (conf.stat().st_mtime_ns, (exp / "launches.jsonl").read_text()) == before
    finally:
        for proc in slow:
            try:
                proc.resume()
            except psutil.NoSuchProcess:
                pass
    assert lh.wait_for(lambda: not lh.programs_of(exp), 90), lh.programs_of(exp)
    # The last program gone, the lock is free: within seconds (a process that has just
    # left the process table may not have closed its descriptors yet on a busy machine).
    assert lh.wait_for(lambda: lock_is_free(exp / ".launch.lock"), 15)


def lock_is_free(path) -> bool:
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_no_orphans_when_supervisord_is_killed(long_run):
    """SIGKILL to supervisord itself: the programs stop, the launcher says so."""
    exp = long_run.exp
    assert lh.wait_for(lambda: len(lh.program_processes(exp)) == 3, 240)
    supervisord = next(p for p in lh.programs_of(exp) if "supervisord" in " ".join(p.cmdline()))
    supervisord.kill()
    assert long_run.proc.wait(timeout=60) == 1
    assert lh.wait_for(lambda: not lh.programs_of(exp), 60), lh.programs_of(exp)
    assert "supervisord exited unexpectedly" in long_run.log.read_text()


def test_paths_with_spaces_and_quotes_train(workdir):
    """A logs directory whose name holds spaces and both kinds of quotes: every program
    starts (their command lines reach supervisord quoted) and training completes."""
    lh.write_params(workdir / "params.py", num_iter=2, steps=50, ckpt=1)
    variables = workdir / "vars.sh"
    variables.write_text(f"SAC_PARAMS=params.py\nSAC_CONFIG={lh.REPO / 'config' / 'default.json'}\n"
                         "SAC_EXP_NAME=tiny\nSAC_FINAL_VIDEO=0\n"
                         "SAC_LOGS_DIR=\"run's \\\"logs\\\" dir\"\n")
    result = lh.run_script(variables, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    exp = workdir / "run's \"logs\" dir" / "tiny"
    assert json.loads((exp / "TRAINING_COMPLETE.json").read_text())["train_step"] == 100
    assert json.loads((exp / "status" / "worker_0.json").read_text())["env_steps"] > 0
