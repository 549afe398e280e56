"""Which CPUs each program gets.

The CPUs this launch may use come from the process affinity
(`os.sched_getaffinity`), which already reflects cgroups, `taskset` and SLURM
allocations. Explicit requests must fit; values left on `auto` fill what is
left. On a very small machine (1 or 2 CPUs) the replay server and the workers
share the CPUs the learner does not have to itself, and the learner (on auto)
may use those too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tfagents_system.core import constants as C


class LayoutError(ValueError):
    """The requested CPU layout does not fit; the message names the numbers."""


@dataclass(frozen=True)
class CpuLayout:
    """Which CPUs each program of one node gets."""

    replay_server: tuple[int, ...]
    learner: tuple[int, ...]
    workers: tuple[tuple[int, ...], ...]
    available: tuple[int, ...]
    shared: bool  # True when some programs share CPUs

    def describe(self, worker_indices: list[int] | None = None) -> str:
        indices = worker_indices if worker_indices is not None else range(len(self.workers))
        lines = [
            f"CPUs available to this launch: {format_cpus(self.available)} "
            f"({len(self.available)})" + ("; some programs share CPUs" if self.shared else ""),
            f"  {'replay_server':<14} CPUs {format_cpus(self.replay_server)}",
            f"  {'learner':<14} CPUs {format_cpus(self.learner)}",
        ]
        lines += [f"  {C.worker_name(i):<14} CPUs {format_cpus(c)}"
                  for i, c in zip(indices, self.workers)]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "available": list(self.available), "shared": self.shared,
            "replay_server": list(self.replay_server), "learner": list(self.learner),
            "workers": [list(c) for c in self.workers],
        }


def format_cpus(cpus) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (taskset -c syntax)."""
    cpus = sorted(cpus)
    parts, start = [], None
    for i, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if i + 1 == len(cpus) or cpus[i + 1] != cpu + 1:
            parts.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(parts)


def available_cpus() -> list[int]:
    """The CPUs this process may run on (cgroups, taskset, SLURM)."""
    return sorted(os.sched_getaffinity(0))


def plan_layout(
    available: list[int],
    num_workers: int | None = None,
    reverb_cpus: int | None = None,
    train_cpus: int | None = None,
    worker_cpus: int | None = None,
) -> CpuLayout:
    """Lay programs out on `available`; None means auto for that value."""
    n = len(available)
    explicit = {
        "SAC_REVERB_CPUS": reverb_cpus,
        "SAC_TRAIN_CPUS": train_cpus,
        "SAC_NUM_COLLECT_WORKERS": num_workers,
        "SAC_COLLECT_WORKER_CPUS": worker_cpus,
    }
    requested = (reverb_cpus or 0) + (train_cpus or 0)
    if num_workers is not None or worker_cpus is not None:
        requested += (num_workers or 1) * (worker_cpus or 1)
    if requested > n:
        asked = ", ".join(f"{k}={v}" for k, v in explicit.items() if v is not None)
        raise LayoutError(
            f"{asked} need {requested} CPUs but this launch may use {n} "
            f"(CPUs {format_cpus(available)}); lower them or set them to auto"
        )

    reverb = reverb_cpus or (1 if n < 32 else 2)
    train = train_cpus or max(1, min(8, n // 4))
    per_worker = worker_cpus or 1
    left = n - reverb - train
    workers = num_workers or max(1, left // per_worker)
    if reverb + train + workers * per_worker <= n:
        cpus = list(available)
        replay, cpus = cpus[:reverb], cpus[reverb:]
        learner, cpus = cpus[:train], cpus[train:]
        slices = [tuple(cpus[i * per_worker:(i + 1) * per_worker]) for i in range(workers)]
        return CpuLayout(tuple(replay), tuple(learner), tuple(slices), tuple(available), False)
    return _shared_layout(available, reverb, train, per_worker, workers,
                          (reverb_cpus, train_cpus, worker_cpus))


def _shared_layout(available: list[int], reverb: int, train: int, per_worker: int,
                   workers: int, explicit: tuple) -> CpuLayout:
    """Auto values did not fit: the learner keeps its own CPUs when it can and the
    replay server and workers share the rest, round robin. Explicit values
    (`explicit`: SAC_REVERB_CPUS, SAC_TRAIN_CPUS, SAC_COLLECT_WORKER_CPUS) are never
    shrunk to make this work."""
    n = len(available)
    reverb_cpus, train_cpus, worker_cpus = explicit
    shrunk = [f"{name}={value}" for name, value, room in (
        ("SAC_TRAIN_CPUS", train_cpus, max(1, n - 1)),
        ("SAC_REVERB_CPUS", reverb_cpus, max(1, n - min(train, max(1, n - 1)))),
        ("SAC_COLLECT_WORKER_CPUS", worker_cpus, max(1, n - min(train, max(1, n - 1)))),
    ) if value is not None and value > room]
    if shrunk:
        raise LayoutError(
            f"{', '.join(shrunk)} leaves no CPU for the other programs on the {n} CPUs this "
            f"launch may use (CPUs {format_cpus(available)}); lower it or set it to auto"
        )
    train = min(train, max(1, n - 1))
    own = tuple(available[n - train:]) if n > 1 else tuple(available)
    rest = [c for c in available if c not in own] or list(available)
    # With auto, the learner may also use the shared CPUs: it has one to itself, and
    # runs a second stream of work (the other half of its inter-op parallelism) on
    # whatever the replay server and the workers leave free there.
    learner = own if train_cpus is not None else tuple(available)
    per_worker = min(per_worker, len(rest))
    replay = tuple(rest[:min(reverb, len(rest))])
    slices = []
    for i in range(workers):
        start = (i * per_worker) % len(rest)
        slices.append(tuple((rest + rest)[start:start + per_worker]))
    return CpuLayout(replay, learner, tuple(slices), tuple(available), True)


def spread_workers(head_capacity: int, remote_cpus: list[int], num_workers: int | None,
                   worker_cpus: int | None) -> list[list[int]]:
    """Worker indices per node of a multi-node job, the head node first.

    The head node holds `head_capacity` workers (what its layout fits beside the
    replay server and the learner), every other node `cpus // SAC_COLLECT_WORKER_CPUS`
    (at least one). Workers are dealt round robin, so they spread over all nodes;
    auto (`num_workers` None) fills every node.
    """
    per_worker = worker_cpus or 1
    capacity = [max(1, head_capacity)] + [max(1, c // per_worker) for c in remote_cpus]
    total = num_workers if num_workers is not None else sum(capacity)
    if total > sum(capacity):
        raise LayoutError(
            f"SAC_NUM_COLLECT_WORKERS={num_workers} with {per_worker} CPU(s) each does not fit "
            f"the job's nodes (room for {sum(capacity)}: {', '.join(map(str, capacity))} per "
            "node); lower it or ask SLURM for more CPUs or nodes"
        )
    nodes: list[list[int]] = [[] for _ in capacity]
    index = 0
    for round_ in range(max(capacity)):
        for node, room in enumerate(capacity):
            if index < total and round_ < room:
                nodes[node].append(index)
                index += 1
    return nodes


def worker_slices(available: list[int], count: int, per_worker: int | None) -> list[tuple]:
    """CPU slices for `count` workers on a node that runs only workers (shared round robin
    when they do not fit)."""
    per_worker = min(per_worker or 1, len(available))
    cpus = list(available)
    return [tuple((cpus + cpus)[(i * per_worker) % len(cpus):][:per_worker])
            for i in range(count)]
