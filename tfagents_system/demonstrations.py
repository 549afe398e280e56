"""Demonstrations: recorded episodes in one file, to seed SAC's replay buffer.

Teleoperation logs, an older controller's runs or a trained policy's episodes
(`python -m tfagents_system.run --exp_dir EXP --record FILE`) are stored in one
file as per-time-step arrays of equal length T, in TF-Agents' TimeStep
convention:

- `step_type` int [T]: 0 FIRST, 1 MID, 2 LAST. Episodes follow one another; each
  starts with FIRST and ends with LAST, so FIRST is only at index 0 or right after
  a LAST. A file may end mid-episode: its last steps then have no successor and
  give no transition.
- `observation` [T, ...] for a flat observation; for a dict (nested) observation
  one array per leaf, `observation/<leaf path>` (the path of
  `core.specs.leaves(spec)`: `observation/position`, `observation/arm/joints`).
- `action` [T, ...]: the action taken at that step. A LAST step takes none: any
  finite value (the Recorder writes zeros), never used or bound-checked.
- `reward` [T] and `discount` [T]: received on arriving at that step (a FIRST
  step's are 0 and 1, not used). At a LAST step discount 0 is a terminal state,
  1 a time-limit truncation (the critic bootstraps from it).

Files are `.npz` (`numpy.savez`, keys as above) or HDF5 (`.h5`, `.hdf5`:
datasets of the same names; h5py stores `observation/position` as the dataset
`position` in the group `observation`). A transition is every pair of steps
(i, i + 1) where step i is not LAST: (s, a, r, discount, s') with a = action[i]
and r, discount, s' those of step i + 1, exactly what a worker writes.

`read_file` and `validate` report a bad file as one `DemonstrationError` line
naming the file, the field, the first bad index and the fix; `transitions`
yields TF-Agents time steps and `pack_rows` the replay rows of a packer;
`Recorder` writes the format.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from tfagents_system.core.specs import leaves

FIRST, MID, LAST = 0, 1, 2
STEP_TYPE_NAMES = {FIRST: "FIRST", MID: "MID", LAST: "LAST"}
STEP_TYPE, OBSERVATION, ACTION, REWARD, DISCOUNT = (
    "step_type", "observation", "action", "reward", "discount")
NPZ_SUFFIXES = (".npz",)
HDF5_SUFFIXES = (".h5", ".hdf5")
# Actions may exceed the spec's bounds by this fraction of the range (float rounding).
ACTION_TOLERANCE = 1e-5
FORMAT_HINT = "see README 'Demonstrations: file format and recording'"


class DemonstrationError(ValueError):
    """A demonstrations file that cannot be used; the message is one line naming the
    file, the field and the fix."""


def _error(path, field: str, problem: str, fix: str) -> DemonstrationError:
    return DemonstrationError(f"{path}: {field}: {problem}; {fix}")


def _kind(path: Path) -> str:
    """'npz' or 'hdf5' by the suffix; DemonstrationError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix in NPZ_SUFFIXES:
        return "npz"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    raise DemonstrationError(f"{path}: unknown demonstrations file type {suffix or '(none)'!r}; "
                             "name it .npz, .h5 or .hdf5")


def check_new_file(path: Path) -> None:
    """A recording may go to `path`: a known suffix and no file there yet (recordings
    never overwrite one; the check runs before any episode is played)."""
    _kind(path)
    if Path(path).exists():
        raise DemonstrationError(f"{path}: the file exists; choose another name or delete it "
                                 "(a recording never overwrites a file)")


def observation_fields(observation_spec) -> list[str]:
    """The file's field of each observation leaf, in tf.nest order."""
    import tensorflow as tf

    if not tf.nest.is_nested(observation_spec):
        return [OBSERVATION]
    return [f"{OBSERVATION}/{leaf.path}" for leaf in leaves(observation_spec)]


# --- reading ---------------------------------------------------------------------------

def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _read_hdf5(path: Path) -> dict[str, np.ndarray]:
    import h5py

    arrays = {}

    def take(name, item):
        if isinstance(item, h5py.Dataset):
            arrays[name] = np.asarray(item[()])

    with h5py.File(path, "r") as fh:
        fh.visititems(take)
    return arrays


def _check_fields_present(arrays: Mapping, path: Path) -> None:
    for field in (STEP_TYPE, ACTION, REWARD, DISCOUNT):
        if field not in arrays:
            raise _error(path, field, f"missing (the file has {', '.join(sorted(arrays))})",
                         f"add one value per time step ({FORMAT_HINT})")
    if not any(name == OBSERVATION or name.startswith(OBSERVATION + "/") for name in arrays):
        raise _error(path, OBSERVATION, "missing (no 'observation' or 'observation/<leaf>')",
                     f"add the observations ({FORMAT_HINT})")


def read_file(path: Path) -> dict[str, np.ndarray]:
    """The file's arrays by field name (dict leaves as `observation/<path>`)."""
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise DemonstrationError(f"{path}: no such file; check the path")
    try:
        arrays = _read_npz(path) if kind == "npz" else _read_hdf5(path)
    except Exception as exc:  # any damage: a torn zip or HDF5 file, pickled objects
        reason = (str(exc).splitlines() or [""])[0]
        raise DemonstrationError(
            f"{path}: unreadable {kind} file ({type(exc).__name__}: {reason}); write it again "
            f"with numpy.savez or h5py, or with demonstrations.Recorder") from exc
    _check_fields_present(arrays, path)
    return arrays


# --- validation ------------------------------------------------------------------------

def _first_bad_step(bad: np.ndarray) -> int | None:
    """The first time index where `bad` ([T, ...]) holds anywhere, or None."""
    steps = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))
    return int(steps[0]) if len(steps) else None


def _np_dtype(spec) -> np.dtype:
    import tensorflow as tf

    return np.dtype(tf.as_dtype(spec.dtype).as_numpy_dtype)


def _check_lengths(arrays: Mapping, fields: list[str], path: Path) -> int:
    """T, the number of time steps every field has."""
    length = None
    for field in [STEP_TYPE, *fields, ACTION, REWARD, DISCOUNT]:
        if field not in arrays:
            fix = (f"write one array per leaf of the env's observation: {', '.join(fields)}"
                   if field in fields else f"add one value per time step ({FORMAT_HINT})")
            raise _error(path, field, "missing", fix)
        array = arrays[field]
        if array.ndim == 0:
            raise _error(path, field, "is a single value", "give one per time step ([T, ...])")
        if length is not None and len(array) != length:
            raise _error(path, field, f"has {len(array)} time steps, step_type has {length}",
                         "every field has one entry per time step")
        length = len(array) if length is None else length
    if not length:
        raise _error(path, STEP_TYPE, "no time steps", "record at least two steps of an episode")
    return length


def _step_type_problem(step_type: np.ndarray) -> tuple[int, str, str] | None:
    """(index, problem, fix) of the first step that breaks the episode structure."""
    before, after = step_type[:-1], step_type[1:]
    rules = [(np.array([step_type[0] != FIRST]), "starts the file",
              "start the file with an episode's FIRST step (0)"),
             ((before == LAST) & (after != FIRST), "follows a LAST",
              "the step after an episode's LAST is the next episode's FIRST (0)"),
             ((before != LAST) & (after == FIRST), "is a FIRST inside an episode",
              "end the episode before it with a LAST (2)")]
    # The first rule looks at step 0, the others at the step after each pair's first.
    found = [(int(np.flatnonzero(bad)[0]) + (rule > 0), problem, fix)
             for rule, (bad, problem, fix) in enumerate(rules) if bad.any()]
    return min(found) if found else None


def _check_step_types(step_type: np.ndarray, path: Path) -> None:
    if step_type.ndim != 1 or step_type.dtype.kind not in "iu":
        raise _error(path, STEP_TYPE, f"has shape {step_type.shape} and dtype {step_type.dtype}",
                     "give one integer per time step: 0 FIRST, 1 MID, 2 LAST")
    unknown = _first_bad_step(~np.isin(step_type, (FIRST, MID, LAST)))
    if unknown is not None:
        raise _error(path, STEP_TYPE, f"step {unknown} is {step_type[unknown]}",
                     "use 0 FIRST, 1 MID, 2 LAST")
    problem = _step_type_problem(step_type)
    if problem is not None:
        index, what, fix = problem
        name = STEP_TYPE_NAMES[int(step_type[index])]
        raise _error(path, STEP_TYPE, f"step {index} ({name}) {what}", fix)


def _check_scalar_field(array: np.ndarray, field: str, path: Path, low: float | None = None,
                        high: float | None = None) -> None:
    """A reward or discount: one finite number per step (within [low, high] if given)."""
    if array.ndim != 1 or array.dtype.kind not in "fiu":
        raise _error(path, field, f"has shape {array.shape} and dtype {array.dtype}",
                     "give one number per time step")
    bad = _first_bad_step(~np.isfinite(array.astype(np.float64)))
    if bad is not None:
        raise _error(path, field, f"step {bad} is {array[bad]:g}", "every value must be finite")
    if low is not None:
        bad = _first_bad_step((array < low) | (array > high))
        if bad is not None:
            raise _error(path, field, f"step {bad} is {array[bad]:g}, outside [{low}, {high}]",
                         "discount is 0 at a terminal state and 1 otherwise")


def _check_integer_range(array: np.ndarray, dtype: np.dtype, field: str, path: Path) -> None:
    """An integer or bool leaf: integer or bool values that fit its dtype."""
    if array.dtype.kind not in "iub":
        raise _error(path, field, f"has dtype {array.dtype}, the leaf is {dtype}",
                     "write integer or bool values")
    if array.dtype.kind == "b":
        return
    low, high = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    bad = _first_bad_step((array < low) | (array > high))
    if bad is not None:
        raise _error(path, field, f"step {bad} has a value outside {dtype}'s range "
                     f"[{low}, {high}]", "record the env's observations as they are")


def _check_float_values(array: np.ndarray, dtype: np.dtype, field: str, path: Path) -> None:
    """A float leaf: float or integer values, finite once cast to its dtype."""
    if array.dtype.kind not in "fiu":
        raise _error(path, field, f"has dtype {array.dtype}, the leaf is {dtype}",
                     "write float or integer values")
    with np.errstate(over="ignore", invalid="ignore"):
        bad = _first_bad_step(~np.isfinite(array.astype(dtype)))
    if bad is not None:
        raise _error(path, field, f"step {bad} is not finite as {dtype}",
                     "every value must be finite")


def _check_leaf_shape(array: np.ndarray, spec, field: str, path: Path) -> None:
    shape = tuple(spec.shape)
    if array.shape[1:] != shape:
        raise _error(path, field, f"has shape {array.shape[1:]} per step, the env's is {shape}",
                     "record the env's own observations and actions")


def _check_observations(arrays: Mapping, observation_spec, path: Path) -> None:
    import tensorflow as tf

    for field, spec in zip(observation_fields(observation_spec),
                           tf.nest.flatten(observation_spec)):
        _check_leaf_shape(arrays[field], spec, field, path)
        dtype = _np_dtype(spec)
        check = _check_float_values if dtype.kind == "f" else _check_integer_range
        check(arrays[field], dtype, field, path)


def _used_steps(step_type: np.ndarray) -> np.ndarray:
    """Which steps start a transition: not LAST, and not the file's last step."""
    used = step_type != LAST
    used[-1] = False
    return used


def _check_action(action: np.ndarray, action_spec, used: np.ndarray, path: Path) -> None:
    import tensorflow as tf

    if len(tf.nest.flatten(action_spec)) != 1:
        raise _error(path, ACTION, "the env's action is nested",
                     "demonstrations hold one action array; flatten the env's action")
    _check_leaf_shape(action, action_spec, ACTION, path)
    _check_float_values(action, _np_dtype(action_spec), ACTION, path)
    if not hasattr(action_spec, "minimum"):
        return
    low = np.broadcast_to(np.asarray(action_spec.minimum, np.float64), action.shape[1:])
    high = np.broadcast_to(np.asarray(action_spec.maximum, np.float64), action.shape[1:])
    tolerance = ACTION_TOLERANCE * (high - low)
    outside = (action < low - tolerance) | (action > high + tolerance)
    bad = _first_bad_step(outside & used.reshape((-1,) + (1,) * (action.ndim - 1)))
    if bad is not None:
        values = np.array2string(action[bad].astype(np.float64), precision=6, separator=", ")
        raise _error(path, ACTION, f"step {bad} is {values}, outside the env's bounds "
                     f"[{low.min():g}, {high.max():g}]", "clip actions to the action spec")


def validate(arrays: Mapping[str, np.ndarray], time_step_spec, action_spec, path) -> None:
    """DemonstrationError (one line: file, field, first bad index, fix) unless the arrays
    hold episodes of this env that give at least one transition."""
    fields = observation_fields(time_step_spec.observation)
    _check_lengths(arrays, fields, path)
    step_type = arrays[STEP_TYPE]
    _check_step_types(step_type, path)
    _check_scalar_field(arrays[REWARD], REWARD, path)
    _check_scalar_field(arrays[DISCOUNT], DISCOUNT, path, 0, 1)
    _check_observations(arrays, time_step_spec.observation, path)
    used = _used_steps(step_type)
    _check_action(arrays[ACTION], action_spec, used, path)
    if not used.any():
        raise _error(path, STEP_TYPE, "no transition (a step that is not LAST followed by "
                     "the next step of its episode)", "record at least two steps of an episode")


# --- use -------------------------------------------------------------------------------

def transitions(arrays: Mapping[str, np.ndarray], time_step_spec,
                action_spec=None) -> Iterator[tuple]:
    """(time_step, action, next_time_step) of every step i that is not LAST and has a
    successor, as numpy values of the spec dtypes (the action float32 without an
    `action_spec`): the calls a worker makes to its row builder. Call `validate` first."""
    import tensorflow as tf
    from tf_agents.trajectories import time_step as ts

    obs_spec = time_step_spec.observation
    step_type = arrays[STEP_TYPE].astype(_np_dtype(time_step_spec.step_type))
    reward = arrays[REWARD].astype(_np_dtype(time_step_spec.reward))
    discount = arrays[DISCOUNT].astype(_np_dtype(time_step_spec.discount))
    leaves = [arrays[field].astype(_np_dtype(spec))
              for field, spec in zip(observation_fields(obs_spec), tf.nest.flatten(obs_spec))]
    action = arrays[ACTION].astype(np.float32 if action_spec is None else _np_dtype(action_spec))

    def step(i: int):
        observation = tf.nest.pack_sequence_as(obs_spec, [leaf[i] for leaf in leaves])
        return ts.TimeStep(step_type[i], reward[i], discount[i], observation)

    for i in np.flatnonzero(_used_steps(step_type)):
        yield step(i), action[i], step(i + 1)


def pack_rows(paths: list[Path], time_step_spec, action_spec, packer) -> np.ndarray:
    """The replay rows ([n, packer.size] float32) of the files' transitions, as a worker's
    row builder writes them. Every file is read and validated before any is packed, so
    a bad file costs no work; each file gets a fresh builder, so a file ending
    mid-episode leaves nothing in the next one's rows."""
    files = []
    for path in paths:
        arrays = read_file(path)
        validate(arrays, time_step_spec, action_spec, path)
        files.append(arrays)
    rows = [np.zeros((0, packer.size), np.float32)]
    for arrays in files:
        builder = packer.builder()
        out = np.empty((builder.max_rows, packer.size), np.float32)
        for time_step, action, next_time_step in transitions(arrays, time_step_spec,
                                                             action_spec):
            written = int(builder.write(time_step, action, next_time_step, out))
            rows.append(out[:written].copy())
    return np.concatenate(rows)


# --- recording -------------------------------------------------------------------------

def _observation_items(observation) -> dict[str, np.ndarray]:
    """An observation's leaves by field name (the paths of `core.specs.leaves`)."""
    import tensorflow as tf
    from tensorflow.python.util import nest  # tf.nest has no public flatten-with-paths

    if not tf.nest.is_nested(observation):
        return {OBSERVATION: np.array(observation)}
    return {f"{OBSERVATION}/{name}": np.array(leaf)
            for name, leaf in nest.flatten_with_joined_string_paths(observation, separator="/")}


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:  # a file object: savez would append .npz to a name
        np.savez(fh, **arrays)


def _write_hdf5(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    import h5py

    with h5py.File(path, "w") as fh:
        for name, array in arrays.items():
            fh.create_dataset(name, data=array)


class Recorder:
    """Collects time steps and actions, then saves them in the format above.

    `add(time_step, action)` per step (action None at a LAST step), `save()` once:
    .npz or HDF5 by the path's suffix, written under a temporary name in the same
    directory and renamed, so a reader never sees a half-written file. The path is
    checked when the Recorder is made, so a run that would end unable to save fails
    before it plays.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        check_new_file(self.path)
        self._columns: dict[str, list] = {STEP_TYPE: [], REWARD: [], DISCOUNT: [], ACTION: []}
        self._observation_fields: list[str] | None = None

    @property
    def num_steps(self) -> int:
        return len(self._columns[STEP_TYPE])

    @property
    def num_episodes(self) -> int:
        """Episodes begun (their FIRST steps recorded)."""
        return sum(int(t) == FIRST for t in self._columns[STEP_TYPE])

    def add(self, time_step, action=None) -> None:
        """Record one time step and the action taken at it (None at a LAST step)."""
        observation = _observation_items(time_step.observation)
        if self._observation_fields is None:
            self._observation_fields = list(observation)
            self._columns.update({field: [] for field in observation})
        if list(observation) != self._observation_fields:
            raise _error(self.path, OBSERVATION, f"step {self.num_steps} has the leaves "
                         f"{list(observation)}, earlier steps {self._observation_fields}",
                         "record one env's observations")
        for field, value in observation.items():
            self._columns[field].append(value)
        self._columns[STEP_TYPE].append(int(time_step.step_type))
        self._columns[REWARD].append(np.asarray(time_step.reward))
        self._columns[DISCOUNT].append(np.asarray(time_step.discount))
        self._columns[ACTION].append(None if action is None else np.array(action))

    def arrays(self) -> dict[str, np.ndarray]:
        """The recording as the file's arrays (a LAST step's missing action as zeros)."""
        actions = self._columns[ACTION]
        template = next((a for a in actions if a is not None), None)
        if template is None:
            raise _error(self.path, ACTION, f"none recorded in {self.num_steps} steps",
                         "add(time_step, action) with the action taken at every step")
        arrays = {name: np.stack(values) for name, values in self._columns.items()
                  if name != ACTION}
        arrays[STEP_TYPE] = arrays[STEP_TYPE].astype(np.int32)
        arrays[ACTION] = np.stack([np.zeros_like(template) if a is None else a for a in actions])
        return arrays

    def save(self) -> Path:
        """Write the file (atomically; never over an existing file); its path."""
        arrays = self.arrays()
        check_new_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        write = _write_npz if _kind(self.path) == "npz" else _write_hdf5
        try:
            write(temporary, arrays)
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)
        return self.path

    def wrap(self, env) -> RecordingEnv:
        """`env`, recording every step it plays here (for `collection.play_episode`)."""
        return RecordingEnv(env, self)


class RecordingEnv:
    """A py environment that passes every time step, and the action taken at it, to a
    Recorder; anything else goes to the env it wraps (render, get_info, specs)."""

    def __init__(self, env, recorder: Recorder):
        self._env = env
        self._recorder = recorder
        self._current = None

    def __getattr__(self, name: str):
        return getattr(self._env, name)

    def reset(self):
        self._current = self._env.reset()
        return self._current

    def step(self, action):
        self._recorder.add(self._current, action)
        self._current = self._env.step(action)
        if self._current.is_last():
            self._recorder.add(self._current)
        return self._current
