"""What a launch learns from SLURM: the job's nodes, their CPUs, the array task.

Outside a SLURM job every function here returns None and the launch is a plain
workstation launch. Inside one, the CPUs of this node still come from the
process affinity (`cpu_layout.available_cpus`); the other nodes' CPU counts come
from `SLURM_JOB_CPUS_PER_NODE`.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from dataclasses import dataclass


class SlurmError(RuntimeError):
    """The job's SLURM variables cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Allocation:
    """A SLURM job's nodes and CPUs, and which node this is."""

    job_id: str
    nodes: tuple[str, ...]  # in SLURM's order: the first is the batch (head) node
    cpus: tuple[int, ...]  # CPUs of the job on each node
    this_node: str

    @property
    def head(self) -> str:
        return self.nodes[0]


def parse_cpus_per_node(text: str) -> list[int]:
    """SLURM_JOB_CPUS_PER_NODE, e.g. '4(x2),2' -> [4, 4, 2]."""
    counts = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not match:
            raise SlurmError(f"SLURM_JOB_CPUS_PER_NODE={text!r}: cannot parse {part!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def expand_nodelist(nodelist: str, env: dict | None = None) -> list[str]:
    """Node names of a SLURM hostlist ('n[1-3]'), expanded by `scontrol show hostnames`."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                             text=True, check=True, timeout=30, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SlurmError(f"cannot expand SLURM_JOB_NODELIST={nodelist!r} with scontrol: "
                         f"{exc}") from exc
    return out.stdout.split()


def allocation(env: dict | None = None) -> Allocation | None:
    """The SLURM job this process runs in, or None outside SLURM."""
    env = os.environ if env is None else env
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return None
    nodelist = env.get("SLURM_JOB_NODELIST", "")
    if nodelist and not any(c in nodelist for c in "[,"):
        nodes = [nodelist]  # one plain node name: nothing to expand
    else:
        nodes = expand_nodelist(nodelist, dict(env)) if nodelist else []
    if not nodes:
        raise SlurmError("SLURM_JOB_ID is set but SLURM_JOB_NODELIST is empty; run inside "
                         "an sbatch or salloc allocation")
    cpus = parse_cpus_per_node(env.get("SLURM_JOB_CPUS_PER_NODE", "") or "1")
    if len(cpus) != len(nodes):
        raise SlurmError(f"SLURM_JOB_CPUS_PER_NODE lists {len(cpus)} node(s) but "
                         f"SLURM_JOB_NODELIST {len(nodes)}")
    this_node = env.get("SLURMD_NODENAME")
    if not this_node:  # e.g. an salloc shell on a login node
        host = socket.gethostname().split(".")[0]
        if len(nodes) > 1 and host not in nodes:
            raise SlurmError(
                f"this host {host} is not a node of SLURM job {job_id} ({','.join(nodes)}); "
                f"launch on the job's first node: sbatch slurm/train.sbatch VARS, or "
                f"srun -N1 -w {nodes[0]} --overlap ./run_script.sh VARS"
            )
        this_node = host if host in nodes else nodes[0]
    return Allocation(job_id, tuple(nodes), tuple(cpus), this_node)


def array_task_id(env: dict | None = None) -> int | None:
    """The task id of this run: SAC_TASK_ID if set (workstation), else the array task's."""
    env = os.environ if env is None else env
    ids = {}
    for name in ("SAC_TASK_ID", "SLURM_ARRAY_TASK_ID"):
        raw = env.get(name)
        if raw not in (None, ""):
            if not raw.isdigit():
                raise SlurmError(f"{name}={raw!r}: must be an integer >= 0")
            ids[name] = int(raw)
    if len(set(ids.values())) > 1:  # jobs inherit the submitter's exported SAC_TASK_ID
        raise SlurmError(f"SAC_TASK_ID={ids['SAC_TASK_ID']} but this is array task "
                         f"{ids['SLURM_ARRAY_TASK_ID']}; unset SAC_TASK_ID before sbatch")
    return next(iter(ids.values()), None)


def step_command(node: str, cpus: int, command: list[str]) -> list[str]:
    """srun arguments running `command` as one task with `cpus` CPUs on `node`.

    `--overlap` lets the step share the node with other steps of the job (the
    batch step holds the head node's CPUs). The launcher watches the step: if it
    ends before training is complete, the run stops.
    """
    return ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={node}", f"--cpus-per-task={cpus}",
            "--overlap", f"--job-name=sac-workers-{node}", *command]
