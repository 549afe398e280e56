"""SLURM facts: CPUs per node, task ids, worker spreading over nodes."""

import pytest

from tfagents_system import cpu_layout, slurm


@pytest.mark.parametrize("text, counts", [
    ("8", [8]), ("4(x2)", [4, 4]), ("4(x2),2", [4, 4, 2]), ("1,3(x3)", [1, 3, 3, 3]),
])
def test_cpus_per_node(text, counts):
    assert slurm.parse_cpus_per_node(text) == counts


def test_cpus_per_node_rejects_garbage():
    with pytest.raises(slurm.SlurmError, match="cannot parse"):
        slurm.parse_cpus_per_node("4(y2)")


def test_task_id_from_either_variable_and_validated():
    assert slurm.array_task_id({}) is None
    assert slurm.array_task_id({"SLURM_ARRAY_TASK_ID": "3"}) == 3
    assert slurm.array_task_id({"SAC_TASK_ID": "1"}) == 1
    assert slurm.array_task_id({"SLURM_ARRAY_TASK_ID": "3", "SAC_TASK_ID": "3"}) == 3
    # An exported SAC_TASK_ID would send every array task to one directory.
    with pytest.raises(slurm.SlurmError, match="unset SAC_TASK_ID before sbatch"):
        slurm.array_task_id({"SLURM_ARRAY_TASK_ID": "3", "SAC_TASK_ID": "1"})
    with pytest.raises(slurm.SlurmError, match="SAC_TASK_ID='x'"):
        slurm.array_task_id({"SAC_TASK_ID": "x"})


def test_a_launch_off_the_job_nodes_is_refused(monkeypatch):
    monkeypatch.setattr(slurm, "expand_nodelist", lambda nodelist, env=None: ["n1", "n2"])
    monkeypatch.setattr(slurm.socket, "gethostname", lambda: "login1")
    with pytest.raises(slurm.SlurmError, match=r"this host login1 is not a node .* srun -N1 -w n1"):
        slurm.allocation({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-2]",
                          "SLURM_JOB_CPUS_PER_NODE": "2(x2)"})
    # A plain one-node list needs no scontrol.
    job = slurm.allocation({"SLURM_JOB_ID": "8", "SLURM_JOB_NODELIST": "gpu07",
                            "SLURM_JOB_CPUS_PER_NODE": "4"})
    assert job.nodes == ("gpu07",) and job.this_node == "gpu07"


def test_allocation_outside_and_inside_a_job(monkeypatch):
    assert slurm.allocation({}) is None
    monkeypatch.setattr(slurm, "expand_nodelist", lambda nodelist, env=None: ["n1", "n2"])
    job = slurm.allocation({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-2]",
                            "SLURM_JOB_CPUS_PER_NODE": "2(x2)", "SLURMD_NODENAME": "n1"})
    assert job == slurm.Allocation("7", ("n1", "n2"), (2, 2), "n1") and job.head == "n1"
    with pytest.raises(slurm.SlurmError, match="lists 1 node"):
        slurm.allocation({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "n[1-2]",
                          "SLURM_JOB_CPUS_PER_NODE": "2"})


def test_step_command_pins_one_task_to_the_node():
    cmd = slurm.step_command("n2", 4, ["python", "-m", "x"])
    assert cmd[0] == "srun" and "--nodelist=n2" in cmd and "--cpus-per-task=4" in cmd
    assert "--overlap" in cmd and cmd[-3:] == ["python", "-m", "x"]


def test_workers_spread_round_robin_over_nodes():
    # head fits 2 workers, two more nodes of 4 CPUs with 2 CPUs per worker
    assert cpu_layout.spread_workers(2, [4, 4], None, 2) == [[0, 3], [1, 4], [2, 5]]
    assert cpu_layout.spread_workers(2, [4, 4], 4, 2) == [[0, 3], [1], [2]]
    assert cpu_layout.spread_workers(1, [1], None, None) == [[0], [1]]
    assert cpu_layout.spread_workers(1, [1, 1], 1, None) == [[0], [], []]
    with pytest.raises(cpu_layout.LayoutError, match=r"SAC_NUM_COLLECT_WORKERS=5 .*\(room for 4"):
        cpu_layout.spread_workers(2, [2], 5, None)


def test_worker_slices_share_when_short():
    assert cpu_layout.worker_slices([4, 5, 6, 7], 2, 2) == [(4, 5), (6, 7)]
    assert cpu_layout.worker_slices([3], 2, 1) == [(3,), (3,)]
    assert cpu_layout.worker_slices([0, 1], 3, 1) == [(0,), (1,), (0,)]
