"""The experience-item layout of an experiment, chosen at its creation (by the
launcher; by the learner at its first start for experiments created before),
recorded in `replay_layout.json` with the observation's structure and kept for
the experiment's life.

- `steps2` (LAYOUT_STEPS): the TF-Agents layout. An item is two consecutive
  trajectory steps (2 x every field of the Trajectory), one column per field:
  any specs, any agent.
- `packed_transition` (LAYOUT_PACKED): an item is one step holding the whole
  transition (s, a, r, s', step types, discount) in a single float32 vector,
  sampled from Reverb. Reverb's per-item costs grow with the columns and steps an
  item spans: this layout costs the learner's sampling and the workers' writes
  several times less CPU (docs/performance.md). For SAC on float32 transitions
  whose collect policy has no info.
- `packed_blocks` (LAYOUT_BLOCKS): the packed vectors travel in blocks through a
  FIFO queue table to the learner, which keeps the replay buffer in its own
  memory (`replay.memory`) and samples it there: neither side pays Reverb's
  per-item costs per transition. Chosen over packed_transition when the buffer
  fits comfortably in the learner's RAM.
"""

from __future__ import annotations

import time
from pathlib import Path

from tfagents_system.paths import ExperimentPaths
from tfagents_system.replay.packing import TransitionPacker, item_capacity, make_packer
from tfagents_system.runtime import FatalError, StopRequested, read_json, write_json_atomic

LAYOUT_STEPS = "steps2"
LAYOUT_PACKED = "packed_transition"
LAYOUT_BLOCKS = "packed_blocks"
LAYOUTS = (LAYOUT_STEPS, LAYOUT_PACKED, LAYOUT_BLOCKS)


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


class LayoutError(FatalError, ValueError):
    """The agent cannot be trained as the params ask: a launch error, and a learner
    that meets it stops (it would meet it again on every restart)."""


def choose_layout(agent, capacity: int | None = None, learner_keeps: bool = True,
                  sequence: tuple[int, int] | None = None,
                  n_step: tuple[int, float] | None = None) -> tuple[str, str]:
    """(layout, reason) for an agent: packed where it is exact, else the TF-Agents one.

    With a capacity (and `learner_keeps`), packed rows go in blocks to the learner's
    own replay memory if capacity x row size fits in `memory_budget_bytes()`; else
    the learner samples them from Reverb. `sequence` (the params' window of recurrent
    training): rows are windows, and a configuration SAC cannot train raises
    LayoutError. `n_step` (n, discount): rows are n-step transitions, which only the
    packed layouts write (LayoutError otherwise).
    """
    from tf_agents.agents.sac import sac_agent

    from tfagents_system import recurrent

    refusal = recurrent.refusal(agent, sequence is not None)
    if refusal:
        raise LayoutError(refusal)
    reason = (f"the agent is a {type(agent).__name__}, not a SacAgent"
              if not isinstance(agent, sac_agent.SacAgent)
              else TransitionPacker.unsupported_reason(agent.collect_data_spec))
    if reason and sequence is not None:
        raise LayoutError(f"recurrent training needs packed windows, but {reason}")
    if reason and n_step is not None:
        raise LayoutError(f"n_step={n_step[0]} needs the packed replay layouts, but {reason}; "
                          "set n_step = 1")
    if reason:
        return LAYOUT_STEPS, reason
    what = "SacAgent on float32 transitions" + (
        "" if sequence is None else f" in windows of {sequence[1]}+{sequence[0]} steps") + (
        "" if n_step is None else f" of {n_step[0]}-step returns")
    if capacity is None:
        return LAYOUT_PACKED, what
    if not learner_keeps:
        return LAYOUT_PACKED, f"{what}; learner_keeps_replay = False, so Reverb keeps the buffer"
    spec = agent.collect_data_spec
    need = (item_capacity(capacity, sequence)
            * make_packer(spec.observation, spec.action, sequence).size * 4)
    budget = memory_budget_bytes()
    if need > budget:
        return LAYOUT_PACKED, (f"{what}; a replay memory of {need / 2**30:.2f} GiB exceeds a "
                               f"quarter of the available RAM ({budget / 2**30:.2f} GiB), so "
                               "Reverb keeps the buffer")
    return LAYOUT_BLOCKS, f"{what}; the learner keeps the buffer ({need / 2**30:.2f} GiB)"


def layout_record(agent, capacity: int | None = None, learner_keeps: bool = True,
                  sequence: tuple[int, int] | None = None,
                  n_step: tuple[int, float] | None = None) -> dict:
    """The record of a new experiment: its layout, why, the observation's structure
    (leaf paths, shapes, dtypes: the packed vectors' meaning) and, for recurrent
    training, the replay window; for n-step returns, n and the discount the rows
    were summed with."""
    from tfagents_system.observations import structure_record

    layout, reason = choose_layout(agent, capacity, learner_keeps, sequence, n_step)
    record = {"layout": layout, "reason": reason,
              "observation": structure_record(agent.collect_data_spec.observation)}
    if sequence is not None:
        record["sequence"] = {"length": sequence[0], "burn_in": sequence[1]}
    if n_step is not None:
        record["n_step"] = {"n": n_step[0], "discount": n_step[1]}
    return record


def recorded_n_step(record: dict) -> tuple[int, float] | None:
    """(n, discount) of a layout record's n-step rows; None: one-step transitions."""
    n_step = record.get("n_step")
    return None if n_step is None else (int(n_step["n"]), float(n_step["discount"]))


def n_step_mismatch(record: dict, n_step: tuple[int, float] | None, where: str) -> str | None:
    """Why a record's n-step rows are not what the params ask for (None: they are):
    rows summed with another n or discount must never be mixed or trained on."""
    if recorded_n_step(record) == n_step:
        return None
    return (f"{where}: the replay buffer holds rows of (n, discount) = "
            f"{recorded_n_step(record)} (None: one-step), but the params give {n_step}: set "
            "n_step and discount back, or start a new experiment")


def sequence_mismatch(record: dict, sequence: tuple[int, int] | None, where: str) -> str | None:
    """Why a record's replay window is not the params' (None: it is)."""
    if recorded_sequence(record) == sequence:
        return None
    return (f"{where}: the replay buffer holds windows of {recorded_sequence(record)} "
            f"(trained, burn-in) steps, but the params ask for {sequence} (None: no "
            "recurrence): set recurrent, recurrent_sequence_length and recurrent_burn_in "
            "back, or start a new experiment")


def structure_mismatch(record: dict, observation_spec, where: str) -> str | None:
    """One line saying how the env's observation differs from the recorded structure,
    or None (the same, or a record from before structures were recorded)."""
    from tfagents_system.observations import structure_record

    recorded = record.get("observation")
    now = structure_record(observation_spec)
    if recorded is None or recorded == now:
        return None
    brief = ", ".join(f"{leaf['path']} {leaf['dtype']}{leaf['shape']}" for leaf in now)
    was = ", ".join(f"{leaf['path']} {leaf['dtype']}{leaf['shape']}" for leaf in recorded)
    return (f"{where}: the env's observation is now [{brief}], the experiment was "
            f"created with [{was}] and its replay data and networks are packed that way; "
            "resume with the env as it was, or start a new experiment (another SAC_EXP_NAME)")


def resolve_layout(paths: ExperimentPaths, agent, log, capacity: int | None = None,
                   learner_keeps: bool = True, sequence: tuple[int, int] | None = None,
                   n_step: tuple[int, float] | None = None) -> str:
    """The experience-item layout of this experiment: its record, else chosen and
    recorded now. FatalError if the observation's structure, the replay window
    (`sequence`) or the n-step returns differ from the record.

    An experiment without the record but with checkpoints was started before
    layouts were recorded: its replay buffer holds TF-Agents 2-step items.
    """
    path = paths.layout
    if path.is_file():
        record = _read_record(path)
    else:
        started = paths.has_checkpoint or (
            paths.replay_checkpoints.is_dir() and any(paths.replay_checkpoints.iterdir()))
        if started:
            record = {"layout": LAYOUT_STEPS,
                      "reason": "experiment started before item layouts were recorded"}
        else:
            record = layout_record(agent, capacity, learner_keeps, sequence, n_step)
        write_json_atomic(path, record, durable=True)
    if record["layout"] not in LAYOUTS:
        raise ValueError(f"{path}: unknown layout {record['layout']!r}")
    mismatch = (structure_mismatch(record, agent.collect_data_spec.observation, str(path))
                or sequence_mismatch(record, sequence, str(path))
                or n_step_mismatch(record, n_step, str(path)))
    if mismatch:
        raise FatalError(mismatch)
    log.info("experience items: %s layout (%s)", record["layout"], record["reason"])
    return record["layout"]


def recorded_sequence(record: dict) -> tuple[int, int] | None:
    """The (trained steps, burn-in) of a layout record's windows; None: transitions."""
    sequence = record.get("sequence")
    return None if sequence is None else (int(sequence["length"]), int(sequence["burn_in"]))


def wait_for_layout(paths: ExperimentPaths, should_stop) -> tuple[str, tuple[int, int] | None,
                                                                  tuple[int, float] | None]:
    """(layout, window, n-step) the learner chose for this experiment (a worker waits
    for the record); the window is (trained steps, burn-in) of recurrent training, the
    n-step (n, discount) of n-step returns, each None without."""
    while not paths.layout.is_file():
        if should_stop():
            raise StopRequested()
        time.sleep(0.5)
    record = _read_record(paths.layout)
    return record["layout"], recorded_sequence(record), recorded_n_step(record)


def _read_record(path: Path) -> dict:
    try:
        record = read_json(path)
        record["layout"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is damaged ({exc}); write the experiment's layout back, "
                         f'e.g. {{"layout": "{LAYOUT_BLOCKS}", "reason": "restored"}} (see the '
                         "learner's log for the one it chose), then relaunch") from exc
    return record
