"""How much RAM a learner's replay memory may take: a quarter of what is available,
within the process's memory cgroup (SLURM --mem, a container) if it has a limit."""

from __future__ import annotations

from pathlib import Path

# Above this a cgroup's memory limit means none (v1 writes "unlimited" as ~2**63).
_NO_LIMIT = 2**60


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def cgroup_memory_room(root: Path = Path("/sys/fs/cgroup"),
                       membership: Path = Path("/proc/self/cgroup")) -> int | None:
    """Bytes this process's memory cgroup (SLURM --mem, a container) may still take:
    its limit less its usage; None without a limit. Reads cgroup v2 and v1."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    own = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") or [""]:
            own[controller] = path.lstrip("/")
    places = [(root / own.get("", ""), "memory.max", "memory.current"), (root, "memory.max",
              "memory.current"), (root / "memory" / own.get("memory", ""),
              "memory.limit_in_bytes", "memory.usage_in_bytes"),
              (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    for directory, limit_file, usage_file in places:
        limit = _read_int(directory / limit_file)
        if limit is not None and limit < _NO_LIMIT:
            return max(0, limit - (_read_int(directory / usage_file) or 0))
    return None


def memory_budget_bytes() -> int:
    """The most a learner's replay memory may take: a quarter of the RAM available now,
    within the process's memory cgroup limit (SLURM --mem) if it has one."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 0
    room = cgroup_memory_room()
    return (available if room is None else min(available, room)) // 4
