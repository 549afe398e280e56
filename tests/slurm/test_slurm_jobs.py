"""The shipped slurm/train.sbatch on a real local SLURM cluster (slurmctld, slurmd, munge).

Tiny InvertedPendulum experiments: a one-node job pinned inside its CPUs, a
2-task array from a sweep file, a two-node job whose second node reaches the
replay server by hostname, and a job that is requeued twice (by `scontrol
requeue`, and by the time-limit warning signal the script handles itself) and
resumes each time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import (
    REPO,
    kill_leftovers,
    latest_checkpoint_step,
    wait_for,
    write_params,
    write_variables,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

SBATCH = str(REPO / "slurm" / "train.sbatch")
JOB_TIMEOUT_S = 600


@pytest.fixture
def jobdir(tmp_path):
    """A test's directory; no process of its experiments may outlive the test."""
    yield tmp_path
    leftovers = kill_leftovers(tmp_path)
    assert not leftovers, f"processes left behind: {leftovers}"


def job_env() -> dict:
    # Jobs inherit the submitter's environment: run with the interpreter running the tests.
    return {"SAC_PYTHON": sys.executable, "PYTHONUNBUFFERED": "1"}


def tiny_variables(workdir: Path, **values) -> Path:
    return write_variables(workdir / "vars.sh", **values)


def submit(cluster, workdir: Path, *options: str) -> int:
    return cluster.sbatch([*options, f"--output={workdir}/slurm-%j.out", SBATCH,
                           str(workdir / "vars.sh")], cwd=REPO, env_extra=job_env())


def job_output(workdir: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(workdir.glob("slurm-*.out")))


def assert_all_completed(states: dict[str, str], workdir: Path) -> None:
    assert states and all(s == "COMPLETED" for s in states.values()), (
        f"{states}\n{job_output(workdir)}")


def launches(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "launches.jsonl").read_text().splitlines()]


def pinned_cpus(log: Path) -> list[set[int]]:
    """The CPU set each start of a program logged."""
    return [set(json.loads(m)) for m in re.findall(r"pinned to CPUs (\[[\d, ]*\])",
                                                   log.read_text())]


def assert_trained(exp: Path) -> None:
    assert (exp / "TRAINING_COMPLETE.json").is_file()
    assert latest_checkpoint_step(exp) == json.loads((exp / "settings.json").read_text())[
        "total_train_steps"]
    assert (exp / "policies" / "final" / "greedy_policy" / "READY").is_file()
    assert list((exp / "train").glob("events.out.tfevents.*"))
    assert list((exp / "eval").glob("worker_*/events.out.tfevents.*"))


def test_single_node_job_trains_inside_its_cpus(single_node_cluster, jobdir):
    cluster = single_node_cluster
    write_params(jobdir / "params.py", num_iter=3, steps=100, ckpt=2)
    tiny_variables(jobdir)
    job = submit(cluster, jobdir, "-c", "1")
    assert_all_completed(cluster.wait_done(job, JOB_TIMEOUT_S), jobdir)

    exp = jobdir / "logs" / "tiny"
    assert_trained(exp)
    (launch,) = launches(exp)
    assert launch["slurm_job"] == str(job) and launch["address"].startswith("localhost:")
    available = set(launch["cpu_layout"]["available"])
    # The node has more CPUs than the job: the job's one CPU is all the launch used.
    assert len(available) == 1 < len(os.sched_getaffinity(0))
    for program in ("replay_server", "learner", "worker_0"):
        starts = pinned_cpus(exp / "process_logs" / f"{program}.log")
        assert starts and all(cpus <= available for cpus in starts), (program, starts)
    assert "training complete" in job_output(jobdir)


def test_array_job_runs_one_sweep_variant_per_task(single_node_cluster, jobdir):
    cluster = single_node_cluster
    write_params(jobdir / "params.py", num_iter=2, steps=100, ckpt=2, extra="seed = 20")
    (jobdir / "sweep.json").write_text(json.dumps(
        {"grid": {"params.target_update_tau": [0.01, 0.02]}}))
    tiny_variables(jobdir, SAC_SWEEP="sweep.json")
    array = subprocess.run([sys.executable, "-m", "tfagents_system.sweep", "--array",
                            str(jobdir / "sweep.json")], capture_output=True, text=True,
                           check=True, cwd=REPO).stdout.strip()
    assert array == "0-1"
    job = submit(cluster, jobdir, "-c", "1", f"--array={array}")
    states = cluster.wait_done(job, JOB_TIMEOUT_S)
    assert len(states) == 2, states
    assert_all_completed(states, jobdir)

    seeds, taus = set(), set()
    for task in (0, 1):
        exp = jobdir / "logs" / f"tiny_task_{task}"
        assert_trained(exp)
        variant = json.loads((exp / "variant.json").read_text())
        assert variant["task_id"] == task
        hyper = json.loads((exp / "settings.json").read_text())["hyperparameters"]
        assert hyper["seed"] == 20 + task == variant["params_overrides"]["seed"]
        seeds.add(hyper["seed"])
        taus.add(hyper["target_update_tau"])
    assert seeds == {20, 21} and taus == {0.01, 0.02}

    plot = subprocess.run([sys.executable, "-m", "tfagents_system.plot",
                           *(str(jobdir / "logs" / f"tiny_task_{t}") for t in (0, 1)),
                           "--output", str(jobdir / "sweep.png")],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert plot.returncode == 0, plot.stderr
    assert (jobdir / "sweep.png").stat().st_size > 10_000


def test_two_node_job_spreads_workers_and_reaches_the_head_by_name(two_node_cluster, jobdir):
    cluster = two_node_cluster
    write_params(jobdir / "params.py", num_iter=3, steps=100, ckpt=2)
    tiny_variables(jobdir)
    job = submit(cluster, jobdir, "--nodes=2", "--ntasks-per-node=1", "-c", "1")
    assert_all_completed(cluster.wait_done(job, JOB_TIMEOUT_S), jobdir)

    exp = jobdir / "logs" / "tiny"
    assert_trained(exp)
    (launch,) = launches(exp)
    port = launch["port"]
    assert launch["host"] == "n1" and launch["address"] == f"n1:{port}"
    assert launch["num_workers"] == 2 and launch["workers_here"] == [0]
    assert launch["other_nodes"] == [{"name": "n2", "cpus": 1, "worker_indices": [1]}]
    node_log = (exp / "process_logs" / "node-n2.log").read_text()
    assert "node n2 (host n2," in node_log and f"replay server n1:{port}" in node_log
    conf = (exp / "run" / "node-n2" / "supervisord.conf").read_text()
    assert f"--address n1:{port}" in conf and "localhost" not in conf
    # The worker on n2 collected and evaluated through the replay server on n1.
    status = json.loads((exp / "status" / "worker_1.json").read_text())
    assert status["env_steps"] > 0
    assert list((exp / "eval" / "worker_1").glob("events.out.tfevents.*"))
    # Each slurmd is pinned to its own CPU: the programs ran on their node's CPU.
    head_cpus = set().union(*pinned_cpus(exp / "process_logs" / "learner.log"))
    n2_cpus = set().union(*pinned_cpus(exp / "process_logs" / "worker_1.log"))
    assert head_cpus and n2_cpus and not head_cpus & n2_cpus


def test_requeued_job_resumes_from_its_checkpoint(single_node_cluster, jobdir):
    cluster = single_node_cluster
    # Paced by collection (samples_per_insert), so the job outlasts both interruptions.
    write_params(jobdir / "params.py", num_iter=20, steps=100, ckpt=2,
                 extra="samples_per_insert = 0.8\n")
    tiny_variables(jobdir)
    job = submit(cluster, jobdir, "-c", "2")
    exp = jobdir / "logs" / "tiny"

    def checkpoint_at_least(step: int) -> bool:
        try:
            return latest_checkpoint_step(exp) >= step
        except (OSError, AttributeError):
            return False

    # 1. Preemption-style: SLURM signals every process, the job goes back to the queue.
    assert wait_for(lambda: checkpoint_at_least(200), JOB_TIMEOUT_S), job_output(jobdir)
    cluster.run(["scontrol", "requeue", str(job)])
    assert wait_for(lambda: len(launches(exp)) == 2, JOB_TIMEOUT_S), job_output(jobdir)
    step_at_requeue = latest_checkpoint_step(exp)

    # 2. Time-limit warning: USR1 to the batch script, which checkpoints and requeues.
    assert wait_for(lambda: checkpoint_at_least(step_at_requeue + 200), JOB_TIMEOUT_S)
    cluster.run(["scancel", "--batch", "--signal=USR1", str(job)])
    assert wait_for(lambda: len(launches(exp)) == 3, JOB_TIMEOUT_S), job_output(jobdir)
    assert_all_completed(cluster.wait_done(job, JOB_TIMEOUT_S), jobdir)

    assert_trained(exp)
    runs = launches(exp)
    assert [r["resumed"] for r in runs] == [False, True, True]
    assert [r["slurm_restart_count"] for r in runs] == [None, "1", "2"]
    out = job_output(jobdir)
    assert "stopped by SIGTERM" in out
    assert f"requeueing job {job}" in out
    learner = (exp / "process_logs" / "learner.log").read_text()
    resumed = [int(s) for s in re.findall(r"resumed at train step (\d+)", learner)]
    assert len(resumed) >= 2 and resumed[0] >= 200 and resumed[-1] > resumed[0], resumed
    replay = (exp / "process_logs" / "replay_server.log").read_text()
    # Each requeued job's learner came back with the replay buffer it had (its
    # memory's log), and the replay server saved its queue when SLURM signalled
    # every program at once.
    assert "checkpointed the tables on stop" in replay
    restored = [int(n) for n in re.findall(r"replay memory: (\d+) transitions restored",
                                           learner)]
    assert len(restored) == 3 and restored[0] == 0 < restored[1] <= restored[2], restored
