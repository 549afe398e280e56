"""The learner's in-RAM replay buffer respects a memory cgroup's limit (SLURM --mem, a
container), cgroup v2 or v1, not only the machine's free memory."""

from tfagents_system.replay import budget


def _tree(tmp_path, files: dict, membership: str):
    for name, text in files.items():
        path = tmp_path / "cg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "cgroup").write_text(membership)
    return tmp_path / "cg", tmp_path / "cgroup"


def test_cgroup_v2_limit_less_usage(tmp_path):
    root, membership = _tree(tmp_path, {"job/memory.max": "4294967296\n",
                                        "job/memory.current": "1073741824\n"}, "0::/job\n")
    assert budget.cgroup_memory_room(root, membership) == 3 * 2**30


def test_cgroup_v1_limit_less_usage(tmp_path):
    root, membership = _tree(tmp_path, {
        "memory/slurm/job_7/memory.limit_in_bytes": "2147483648\n",
        "memory/slurm/job_7/memory.usage_in_bytes": "147483648\n"},
        "4:memory:/slurm/job_7\n3:cpuset:/slurm/job_7\n")
    assert budget.cgroup_memory_room(root, membership) == 2 * 10**9


def test_no_limit_means_none(tmp_path):
    root, membership = _tree(tmp_path, {"memory.max": "max\n",
                                        "memory/memory.limit_in_bytes": "9223372036854771712\n"},
                             "0::/\n")
    assert budget.cgroup_memory_room(root, membership) is None


def test_the_budget_is_a_quarter_of_the_smaller(monkeypatch):
    monkeypatch.setattr(budget, "cgroup_memory_room", lambda: 4 * 2**20)
    assert budget.memory_budget_bytes() == 2**20
    monkeypatch.setattr(budget, "cgroup_memory_room", lambda: None)
    assert budget.memory_budget_bytes() > 2**20  # the machine's free RAM / 4
