"""The replay format of an experiment: how its experience is packed, carried and kept.

`ReplayFormat` is one immutable record: the layout (below), why it was chosen, the
observation's and action's structure (leaf paths, shapes, dtypes: what the packed
rows mean), the replay window of recurrent training and the n and discount of
n-step rows. The launch decides it once, when it creates the experiment (`choose`),
and records it in `replay_layout.json`; an experiment from before such records gets
its record once, at its next launch (`legacy`). Packers, writers, the learner's data
sources and the demonstration store take only this record, bound to the env's specs
(`bind`), never loose arguments.

Layouts:
- `steps2` (LAYOUT_STEPS): the TF-Agents layout. An item is two consecutive
  trajectory steps, one column per field: any specs, any agent.
- `packed_transition` (LAYOUT_PACKED): an item is one row, a whole transition (or a
  replay window) in one float32 vector (`packing`), sampled from Reverb. For SAC on
  float32-exact transitions whose collect policy has no info.
- `packed_blocks` (LAYOUT_BLOCKS): the rows travel in blocks through a FIFO queue
  table to the learner, which keeps the replay buffer in its own memory (`memory`):
  neither side pays Reverb's per-item costs per transition. Chosen over
  packed_transition when the buffer fits in a quarter of the learner's RAM. An
  observation with one image leaf (uint8 [H, W, C]) has its frames stored once, as
  bytes (`frames`: `ReplayFormat.frames` is the frames an observation stacks); it
  needs this layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfagents_system.core.errors import FatalError
from tfagents_system.core.files import read_json, write_json_atomic
from tfagents_system.core.specs import SINGLE_LEAF, Leaf, leaves
from tfagents_system.replay.budget import memory_budget_bytes
from tfagents_system.replay.frames import FramePacker, frame_leaf_index
from tfagents_system.replay.packing import BLOCK_ROWS, TransitionPacker, make_packer

LAYOUT_STEPS = "steps2"
LAYOUT_PACKED = "packed_transition"
LAYOUT_BLOCKS = "packed_blocks"
LAYOUTS = (LAYOUT_STEPS, LAYOUT_PACKED, LAYOUT_BLOCKS)


class FormatError(FatalError, ValueError):
    """The agent cannot be trained as the params ask, or an experiment's replay data is
    not what its params say: a launch error, and a program that meets it stops (it
    would meet it again on every restart)."""


@dataclass(frozen=True)
class Window:
    """Recurrent training's replay window: `burn_in` steps that only warm the networks'
    state, then `length` trained steps, all of one episode."""

    length: int
    burn_in: int = 0

    @property
    def steps(self) -> int:
        """Transitions in one window."""
        return self.length + self.burn_in

    def describe(self) -> str:
        """e.g. `windows of 10+20 steps (burn-in + trained)`."""
        return f"windows of {self.burn_in}+{self.length} steps (burn-in + trained)"


@dataclass(frozen=True)
class NStep:
    """n-step rows: the discounted sum of up to n rewards, with this discount."""

    n: int
    discount: float


@dataclass(frozen=True)
class ReplayFormat:
    """An experiment's replay format (module docstring). `observation_spec` and
    `action_spec` are the env's specs, bound at run time (`bind`), never recorded."""

    layout: str
    reason: str = ""
    observation: tuple[Leaf, ...] | None = None  # None: recorded before structures were
    action: tuple[Leaf, ...] | None = None
    window: Window | None = None
    n_step: NStep | None = None
    frames: int | None = None  # frames per image observation, each stored once (`frames`)
    # packed_transition rows that carry their own signature (experiments created before
    # signed rows sample unsigned ones); not part of what a resume must match
    signed_rows: bool = field(default=False, compare=False)
    observation_spec: Any = field(default=None, compare=False, repr=False)
    action_spec: Any = field(default=None, compare=False, repr=False)

    @property
    def packed(self) -> bool:
        """Whether rows are packed float32 vectors (everything but steps2)."""
        return self.layout != LAYOUT_STEPS

    def items(self, transitions: int) -> int:
        """Replay items (rows) holding `transitions` transitions: one each, or one window
        of `window.length` trained steps each (rounded up)."""
        if self.frames is not None:  # and a block's context rows (full blocks)
            return int(transitions) + -(-int(transitions) * self.frames
                                        // (BLOCK_ROWS - self.frames)) + self.frames
        if self.window is None:
            return int(transitions)
        return -(-int(transitions) // self.window.length)

    def bind(self, observation_spec, action_spec) -> ReplayFormat:
        """This format with the env's specs, which packers and sources need."""
        return dataclasses.replace(self, observation_spec=observation_spec,
                                   action_spec=action_spec)

    def packer(self):
        """The row packer of this format (`packing`); needs the bound specs."""
        if self.observation_spec is None:
            raise ValueError("the replay format is not bound to the env's specs (bind)")
        if self.frames is not None:
            return FramePacker(self.observation_spec, self.action_spec, self.frames)
        return make_packer(self.observation_spec, self.action_spec, self.window, self.n_step)

    def rows(self) -> str:
        """What a row holds, e.g. ` of windows of 0+20 steps (burn-in + trained)`."""
        text = "" if self.window is None else f" of {self.window.describe()}"
        if self.frames is not None:
            text += f" with each image frame stored once ({self.frames} per observation)"
        return text + ("" if self.n_step is None else f" of {self.n_step.n}-step transitions")

    def describe(self) -> str:
        """The line programs log: the layout, its rows and why."""
        return f"experience items: {self.layout} layout{self.rows()} ({self.reason})"

    # --- the record ---

    def to_json(self) -> dict:
        """The record in replay_layout.json (the keys earlier revisions wrote, and the
        action's structure)."""
        record: dict = {"layout": self.layout, "reason": self.reason}
        if self.observation is not None:
            record["observation"] = [leaf.as_record() for leaf in self.observation]
        if self.action is not None:
            record["action"] = [leaf.as_record() for leaf in self.action]
        if self.window is not None:
            record["sequence"] = {"length": self.window.length, "burn_in": self.window.burn_in}
        if self.n_step is not None:
            record["n_step"] = {"n": self.n_step.n, "discount": self.n_step.discount}
        if self.frames is not None:
            record["frames"] = self.frames
        if self.signed_rows:
            record["signed_rows"] = True
        return record

    @classmethod
    def from_json(cls, data: dict) -> ReplayFormat:
        """The format of a record (ValueError if it is not one)."""
        layout = data["layout"]
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        structure = {key: None if data.get(key) is None
                     else tuple(Leaf.from_record(leaf) for leaf in data[key])
                     for key in ("observation", "action")}
        window, n_step = data.get("sequence"), data.get("n_step")
        return cls(layout, str(data.get("reason", "")), **structure,
                   window=None if window is None else Window(int(window["length"]),
                                                             int(window["burn_in"])),
                   n_step=None if n_step is None else NStep(int(n_step["n"]),
                                                            float(n_step["discount"])),
                   frames=None if data.get("frames") is None else int(data["frames"]),
                   signed_rows=data.get("signed_rows") is True)

    def write(self, path: Path) -> None:
        """Record the format (durable: losing it would orphan the replay data)."""
        write_json_atomic(path, self.to_json(), durable=True)

    @classmethod
    def read(cls, path: Path) -> ReplayFormat:
        """An experiment's recorded format; ValueError naming the fix if it is damaged."""
        try:
            return cls.from_json(read_json(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path} is damaged ({exc}); write the experiment's layout back, e.g. "
                f'{{"layout": "{LAYOUT_BLOCKS}", "reason": "restored"}} (see the learner\'s '
                "log for the one it used), then relaunch") from exc

    @classmethod
    def legacy(cls) -> ReplayFormat:
        """The format of an experiment that trained before formats were recorded: its
        replay data are TF-Agents 2-step items."""
        return cls(LAYOUT_STEPS, "experiment started before item layouts were recorded")

    # --- what a run must match ---

    def mismatch(self, observation_spec, action_spec, window: Window | None,
                 n_step: NStep | None, where: str) -> str | None:
        """One line saying how the env's observation or action, or the params' window or
        n-step, differ from this record (None: they match; a record from before the
        observation's or the action's structure was recorded is not checked on it)."""
        for name, recorded, spec in (("observation", self.observation, observation_spec),
                                     ("action", self.action, action_spec)):
            now = tuple(leaves(spec))
            if recorded is not None and recorded != now:
                brief, was = _structure(now), _structure(recorded)
                return (f"{where}: the env's {name} is now [{brief}], the experiment was "
                        f"created with [{was}] and its replay data and networks are packed "
                        "that way; resume with the env as it was, or start a new experiment "
                        "(another SAC_EXP_NAME)")
        if self.window != window:
            return (f"{where}: the replay buffer holds {_windows(self.window)}, but the params "
                    f"ask for {_windows(window)}: set recurrent, recurrent_sequence_length "
                    "and recurrent_burn_in back, or start a new experiment")
        if self.n_step != n_step:
            return (f"{where}: the replay buffer holds {_n_steps(self.n_step)}, but the "
                    f"params give {_n_steps(n_step)}: set n_step and discount back, or start "
                    "a new experiment")
        return None


def _structure(structure: tuple[Leaf, ...]) -> str:
    """e.g. `float32[3]` (one array), or `position float32[2], steps_left int32[]`."""
    return ", ".join(f"{leaf.dtype}{list(leaf.shape)}" if leaf.path == SINGLE_LEAF
                     else leaf.describe() for leaf in structure)


def _windows(window: Window | None) -> str:
    return "transitions (no recurrence)" if window is None else window.describe()


def _n_steps(n_step: NStep | None) -> str:
    return ("one-step rows" if n_step is None
            else f"rows of {n_step.n}-step returns with discount {n_step.discount}")


def choose(collect_data_spec, capacity: int | None = None, learner_keeps: bool = True,
           window: Window | None = None, n_step: NStep | None = None,
           unsupported: str | None = None, frame_stack: int = 1) -> ReplayFormat:
    """The format of a new experiment: packed where it is exact, else the TF-Agents one.

    `unsupported`: why the agent is not one the packed layouts train (not a SacAgent);
    else the collect data spec decides. With a capacity (and `learner_keeps`), packed
    rows go in blocks to the learner's own memory if capacity x row size fits in
    `memory_budget_bytes()`; else the learner samples them from Reverb. A window or
    n-step rows need the packed layouts (FormatError otherwise). An observation with one
    image leaf of `frame_stack` frames is stored frame by frame (`frames`) in the
    learner's memory; it needs the learner to keep the buffer (FormatError otherwise).
    """
    reason = unsupported or TransitionPacker.unsupported_reason(collect_data_spec)
    if reason and window is not None:
        raise FormatError(f"recurrent training needs packed windows, but {reason}")
    if reason and n_step is not None:
        raise FormatError(f"n_step={n_step.n} needs the packed replay layouts, but {reason}; "
                          "set n_step = 1")
    structure = {"observation": tuple(leaves(collect_data_spec.observation)),
                 "action": tuple(leaves(collect_data_spec.action)),
                 "window": window, "n_step": n_step}
    if reason:
        return ReplayFormat(LAYOUT_STEPS, reason, **structure)
    if frame_leaf_index(collect_data_spec.observation) is not None:
        return _frame_format(collect_data_spec, capacity, learner_keeps, window, n_step,
                             frame_stack, structure)
    what = "SacAgent on float32 transitions" + (
        "" if window is None else f" in {window.describe()}") + (
        "" if n_step is None else f" of {n_step.n}-step returns")
    if capacity is None:
        return ReplayFormat(LAYOUT_PACKED, what, **structure, signed_rows=True)
    if not learner_keeps:
        return ReplayFormat(LAYOUT_PACKED, f"{what}; learner_keeps_replay = False, so Reverb "
                            "keeps the buffer", **structure, signed_rows=True)
    row = make_packer(collect_data_spec.observation, collect_data_spec.action, window, n_step)
    need = ReplayFormat(LAYOUT_BLOCKS, window=window).items(capacity) * row.size * 4
    budget = memory_budget_bytes()
    if need > budget:
        return ReplayFormat(LAYOUT_PACKED, f"{what}; a replay memory of {need / 2**30:.2f} GiB "
                            f"exceeds a quarter of the available RAM ({budget / 2**30:.2f} "
                            "GiB), so Reverb keeps the buffer", **structure, signed_rows=True)
    return ReplayFormat(LAYOUT_BLOCKS, f"{what}; the learner keeps the buffer "
                        f"({need / 2**30:.2f} GiB)", **structure)


def _frame_format(collect_data_spec, capacity, learner_keeps, window, n_step, frame_stack,
                  structure) -> ReplayFormat:
    """The packed_blocks layout with frames stored once (`frames`), or FormatError."""
    if window is not None or n_step is not None:
        raise FormatError("image observations are stored frame by frame, which recurrent "
                          "windows and n-step rows do not support yet: set recurrent = False "
                          "and n_step = 1")
    if capacity is None or not learner_keeps:
        raise FormatError("image observations are stored frame by frame in the learner's "
                          "memory: set learner_keeps_replay = True")
    fmt = ReplayFormat(LAYOUT_BLOCKS, **structure, frames=int(frame_stack))
    packer = fmt.bind(collect_data_spec.observation, collect_data_spec.action).packer()
    need = fmt.items(capacity) * packer.row_bytes()
    budget = memory_budget_bytes()
    if need > budget:
        raise FormatError(
            f"a replay memory of {need / 2**30:.2f} GiB for {capacity} image transitions "
            f"exceeds a quarter of the available RAM ({budget / 2**30:.2f} GiB): lower "
            "replay_capacity, or use smaller images")
    per_transition = packer.row_bytes() * fmt.items(capacity) / capacity
    frame = "x".join(map(str, packer.frame_shape))
    return dataclasses.replace(fmt, reason=(
        f"SacAgent on image observations; the learner keeps the buffer ({need / 2**30:.2f} "
        f"GiB, {per_transition:,.0f} B per transition in full blocks; one {frame} frame "
        f"is {packer.frame_bytes:,} B)"))
