"""The local SLURM cluster fixtures behave like a real cluster in the ways the project relies on."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import portpicker
import pytest

from tests.slurm.cluster import HOSTS_FILE, HOSTS_MARKER, LocalCluster

pytestmark = pytest.mark.slurm


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/bash\nset -u\n" + body)
    path.chmod(0o755)
    return path


def _cpu_count(cpu_list: str) -> int:
    """Number of CPUs in a list like '0', '0-1' or '0,2-3'."""
    count = 0
    for part in cpu_list.split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


def _wait_for_file(path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} not written in {timeout} s"
        time.sleep(0.1)
    return path.read_text()


def test_single_node_job_is_pinned_to_its_cpus(single_node_cluster, tmp_path):
    out = tmp_path / "cpus.txt"
    script = _script(tmp_path / "job.sh", f"grep Cpus_allowed_list /proc/self/status > {out}\n")
    job = single_node_cluster.sbatch(["-c", "1", "-o", str(tmp_path / "slurm.out"), str(script)])
    states = single_node_cluster.wait_done(job, timeout=60)
    assert states == {str(job): "COMPLETED"}, single_node_cluster.log_report()
    cpus = out.read_text().split(":", 1)[1].strip()
    assert _cpu_count(cpus) == 1, cpus


def test_requeued_job_runs_again(single_node_cluster, tmp_path):
    log = tmp_path / "starts.txt"
    script = _script(
        tmp_path / "job.sh",
        f'echo "restart=${{SLURM_RESTART_COUNT-unset}}" >> {log}\n'
        'if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then sleep 300; fi\n',
    )
    cluster = single_node_cluster
    job = cluster.sbatch(["-o", str(tmp_path / "slurm.out"), str(script)])
    _wait_for_file(log, timeout=30)
    cluster.wait_state(job, "RUNNING", timeout=10)
    requeued = time.monotonic()
    cluster.run(["scontrol", "requeue", str(job)])
    states = cluster.wait_done(job, timeout=90)
    assert states == {str(job): "COMPLETED"}, cluster.log_report()
    # cred_expire=5 and sched_interval=1: back in ~6 s rather than 2-3 minutes.
    assert time.monotonic() - requeued < 60
    assert log.read_text().splitlines() == ["restart=unset", "restart=1"]


def test_array_job_states_per_task(single_node_cluster, tmp_path):
    job = single_node_cluster.sbatch(
        ["-a", "0-2", "-o", "/dev/null", "--wrap", 'exit "$SLURM_ARRAY_TASK_ID"'], cwd=tmp_path
    )
    states = single_node_cluster.wait_done(job, timeout=60)
    assert states == {f"{job}_0": "COMPLETED", f"{job}_1": "FAILED", f"{job}_2": "FAILED"}


def test_two_nodes_have_their_own_hostnames(two_node_cluster, tmp_path):
    assert two_node_cluster.nodes == ["n1", "n2"]
    script = _script(
        tmp_path / "job.sh",
        f"hostname > {tmp_path}/batch.txt\n"
        f"srun -N1 -n1 -w n2 --overlap hostname > {tmp_path}/step.txt\n",
    )
    job = two_node_cluster.sbatch(
        ["-N2", "--ntasks-per-node=1", "-o", str(tmp_path / "slurm.out"), str(script)]
    )
    states = two_node_cluster.wait_done(job, timeout=60)
    assert states == {str(job): "COMPLETED"}, (tmp_path / "slurm.out").read_text()
    assert (tmp_path / "batch.txt").read_text().strip() == "n1"
    assert (tmp_path / "step.txt").read_text().strip() == "n2"


def test_server_on_n1_is_reachable_from_n2(two_node_cluster, tmp_path):
    port = portpicker.pick_unused_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello from n1\n")
    fetch = (
        "import time, urllib.request\n"
        "for _ in range(100):\n"
        "    try:\n"
        f"        print(urllib.request.urlopen('http://n1:{port}/hello.txt', timeout=2)"
        ".read().decode(), end='')\n"
        "        break\n"
        "    except OSError:\n"
        "        time.sleep(0.2)\n"
    )
    (tmp_path / "fetch.py").write_text(fetch)
    py = sys.executable
    script = _script(
        tmp_path / "job.sh",
        f"{py} -m http.server --bind 0.0.0.0 --directory {tmp_path}/www {port} "
        f"> {tmp_path}/server.log 2>&1 &\n"
        "server=$!\n"
        f"srun -N1 -n1 -w n2 --overlap {py} {tmp_path}/fetch.py > {tmp_path}/fetched.txt\n"
        "rc=$?\n"
        'kill "$server"\n'
        'exit "$rc"\n',
    )
    job = two_node_cluster.sbatch(
        ["-N2", "--ntasks-per-node=1", "-o", str(tmp_path / "slurm.out"), str(script)]
    )
    states = two_node_cluster.wait_done(job, timeout=60)
    assert states == {str(job): "COMPLETED"}, (tmp_path / "slurm.out").read_text()
    assert (tmp_path / "fetched.txt").read_text() == "hello from n1\n"


def test_stop_leaves_nothing_behind(slurm_available, tmp_path):
    hosts_before = HOSTS_FILE.read_text()
    cluster = LocalCluster(tmp_path / "cluster", two_nodes=True)
    cluster.start()
    try:
        assert HOSTS_MARKER in HOSTS_FILE.read_text()
        with pytest.raises(RuntimeError, match="already running"):
            LocalCluster(tmp_path / "other").start()
        job = cluster.sbatch(
            ["-N2", "-o", "/dev/null", "--wrap", "srun -w n2 --overlap sleep 600 & sleep 600"],
            cwd=tmp_path,
        )
        cluster.wait_state(job, "RUNNING", timeout=30)
        assert len(cluster.processes()) >= 3  # slurmctld, 2 slurmd, the job's
    finally:
        cluster.stop()
    cluster.stop()  # idempotent
    assert not cluster.processes()
    assert HOSTS_FILE.read_text() == hosts_before
