"""Demonstrations in the replay buffer: stored with the experiment, never evicted.

At an experiment's creation the launcher reads the demonstration files
(`tfagents_system.demonstrations`: format and validation), turns them into the
rows the workers would write for the same steps (transitions, n-step transitions
or replay windows: the same row builders) and stores them in
`<exp>/demonstrations/` (the rows, then `meta.json` last, as the sentinel). The
learner loads that copy at every start, so the demonstrations survive crashes,
preemptions and resumes, and a later change to the source files changes nothing.

They stay out of the replay memory's FIFO ring: `DemoMixSource` puts a share of
demonstration rows into every batch of the experiment's own data source (any
packed layout), drawn uniformly from all of them. The share is `demo_ratio` (a
number, or a schedule over train steps); without one, the demonstrations' share
of all rows (demonstrations + replay buffer), as if they sat in the buffer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfagents_system.core import constants as C
from tfagents_system.core.errors import FatalError
from tfagents_system.core.files import JsonRecord
from tfagents_system.demonstrations import DemonstrationError, pack_rows
from tfagents_system.replay.format import ReplayFormat
from tfagents_system.replay.sources import DataSource

ROWS_FILE = "rows.f32"
META_FILE = "meta.json"


@dataclass(frozen=True)
class DemoMeta(JsonRecord):
    """meta.json of a demonstration store (written last: a store without it is torn):
    the source files, the rows and their size, and the window and n-step they were
    packed with (None: transitions, one-step)."""

    files: list
    rows: int
    row_size: int
    sequence: list | None = None
    n_step: list | None = None


def requested_files(params, params_file: Path, config_file: Path) -> list[Path]:
    """The demonstration files a new experiment loads: the config's "demonstrations"
    (relative to the config file) when it has them, else the params' (relative to the
    params file)."""
    listed = params.env_config.get("demonstrations")
    base = Path(config_file).parent
    if listed is None:
        listed, base = params.demonstrations, Path(params_file).parent
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, (list, tuple)) or not all(
            isinstance(name, str) and name.strip() for name in listed):
        raise DemonstrationError(f"{listed!r} is not a list of files; give e.g. "
                                 '["demos/pendulum.npz"]')
    return [(base / os.path.expanduser(name)).resolve() for name in listed]


def build_rows(files: list[Path], replay_format: ReplayFormat, time_step_spec
               ) -> tuple[np.ndarray, DemoMeta]:
    """(rows, meta) of the demonstration files: the rows the workers would write for
    their steps in this replay format (bound to the env's specs). Raises
    demonstrations.DemonstrationError naming a bad file."""
    packer = replay_format.packer()
    rows = pack_rows(files, time_step_spec, replay_format.action_spec, packer)
    window, n_step = replay_format.window, replay_format.n_step
    meta = DemoMeta([str(f) for f in files], int(len(rows)), int(packer.size),
                    None if window is None else [window.length, window.burn_in],
                    None if n_step is None else [n_step.n, n_step.discount])
    return rows, meta


def store(directory: Path, rows: np.ndarray, meta: DemoMeta) -> None:
    """Write the rows, then their meta (the sentinel: a store without it is torn)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ROWS_FILE, "wb") as fh:
        fh.write(np.ascontiguousarray(rows, np.float32).tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    meta.write(directory / META_FILE, durable=True)


def load(directory: Path, row_size: int) -> tuple[np.ndarray, DemoMeta] | None:
    """(rows, meta) of an experiment's stored demonstrations; None without any.
    FatalError if the store is damaged or holds rows of another size."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = DemoMeta.read(meta_path)
        rows = np.fromfile(directory / ROWS_FILE, np.float32)
    except (OSError, ValueError) as exc:
        raise FatalError(f"{directory} is damaged ({exc}): restore it from a backup, or "
                         "start a new experiment with the demonstrations") from exc
    if meta.row_size != row_size or len(rows) != meta.rows * row_size:
        raise FatalError(f"{directory}: holds {len(rows)} floats in rows of "
                         f"{meta.row_size}, this experiment's rows take {row_size}: "
                         "restore the store from a backup, or start a new experiment")
    return rows.reshape(-1, row_size), meta


class DemoShare:
    """The share of each batch drawn from the demonstrations at a train step."""

    def __init__(self, ratio, demo_rows: int):
        self._ratio = ratio
        self._demo_rows = demo_rows

    def __call__(self, train_step: int, replay_rows: int) -> float:
        ratio = self._ratio
        if ratio is None:  # as if they were in the buffer, never evicted
            return self._demo_rows / max(1, self._demo_rows + max(0, replay_rows))
        if isinstance(ratio, (int, float)):
            return float(ratio)
        steps = [float(step) for step, _ in ratio]
        return float(np.interp(train_step, steps, [float(r) for _, r in ratio]))


class Demonstrations:
    """An experiment's demonstration rows in a TF variable, drawn uniformly with
    replacement (the batches of `DemoMixSource` and of the behaviour-cloning warm
    start)."""

    def __init__(self, rows: np.ndarray, packer):
        import tensorflow as tf

        self.packer = packer
        self.count = len(rows)
        self._rows = tf.Variable(rows, trainable=False, name="demonstration_rows")

    def batch(self, batch_size: int):
        """`batch_size` rows drawn uniformly with replacement, unpacked (graph code)."""
        import tensorflow as tf

        index = tf.random.uniform([batch_size], maxval=self.count, dtype=tf.int64)
        return self.packer.unpack(tf.gather(self._rows, index))


class DemoMixSource(DataSource):
    """Another data source's batches with their first round(share x batch) rows
    replaced by demonstration rows drawn uniformly (inside the compiled loop)."""

    def __init__(self, inner: DataSource, demonstrations: Demonstrations, batch_size: int,
                 share: DemoShare):
        import tensorflow as tf

        self.inner = inner
        self._demonstrations = demonstrations
        self._batch_size = int(batch_size)
        self._share_at = share
        self.share = tf.Variable(0.0, trainable=False, name="demonstration_share")

    def take_in(self, train_step: int) -> None:
        self.inner.take_in(train_step)
        replay = self.inner.size()
        if replay >= 0:  # -1: the server cannot tell now; keep the last share
            self.share.assign(self._share_at(train_step, replay))

    def steps_allowed(self, train_step: int, wanted: int) -> int:
        return self.inner.steps_allowed(train_step, wanted)

    def next_batch(self, *loop_args):
        import tensorflow as tf

        replay = self.inner.next_batch(*loop_args)
        demo = self._demonstrations.batch(self._batch_size)
        take = tf.range(self._batch_size) < tf.cast(
            tf.round(self.share * self._batch_size), tf.int32)

        def pick(from_demo, from_replay):
            rank = from_replay.shape.rank
            return tf.where(tf.reshape(take, [-1] + [1] * (rank - 1)), from_demo, from_replay)

        return tf.nest.map_structure(pick, demo, replay)

    def loop_args(self) -> tuple:
        return self.inner.loop_args()

    def sample(self):
        return self.inner.sample()

    def size(self) -> int:
        return self.inner.size()

    def summaries(self) -> dict[str, float]:
        return {**self.inner.summaries(), C.M_DEMO_SHARE: float(self.share.numpy())}

    def rejected(self) -> dict[str, int]:
        return self.inner.rejected()

    def sampling_failed(self, exc: Exception) -> bool:
        return self.inner.sampling_failed(exc)

    def restart_sampling(self) -> None:
        self.inner.restart_sampling()

    def close(self) -> None:
        self.inner.close()
