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

import json
import os
from pathlib import Path

import numpy as np

from tfagents_system import constants as C
from tfagents_system.replay.packing import make_packer
from tfagents_system.replay.sources import DataSource
from tfagents_system.runtime import FatalError, write_json_atomic

ROWS_FILE = "rows.f32"
META_FILE = "meta.json"


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
        from tfagents_system.demonstrations import DemonstrationError

        raise DemonstrationError(f"{listed!r} is not a list of files; give e.g. "
                                 '["demos/pendulum.npz"]')
    return [(base / os.path.expanduser(name)).resolve() for name in listed]


def build_rows(files: list[Path], time_step_spec, action_spec, sequence, n_step,
               ) -> tuple[np.ndarray, dict]:
    """(rows, meta) of the demonstration files: the rows the workers would write for
    their steps. Raises demonstrations.DemonstrationError naming a bad file."""
    from tfagents_system import demonstrations

    packer = make_packer(time_step_spec.observation, action_spec, sequence, n_step)
    rows = demonstrations.pack_rows(files, time_step_spec, action_spec, packer)
    meta = {"files": [str(f) for f in files], "rows": int(len(rows)),
            "row_size": int(packer.size),
            "sequence": None if sequence is None else list(sequence),
            "n_step": None if n_step is None else list(n_step)}
    return rows, meta


def store(directory: Path, rows: np.ndarray, meta: dict) -> None:
    """Write the rows, then their meta (the sentinel: a store without it is torn)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ROWS_FILE, "wb") as fh:
        fh.write(np.ascontiguousarray(rows, np.float32).tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    write_json_atomic(directory / META_FILE, meta, durable=True)


def load(directory: Path, row_size: int) -> tuple[np.ndarray, dict] | None:
    """(rows, meta) of an experiment's stored demonstrations; None without any.
    FatalError if the store is damaged or holds rows of another size."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        rows = np.fromfile(directory / ROWS_FILE, np.float32)
    except (OSError, ValueError) as exc:
        raise FatalError(f"{directory} is damaged ({exc}): restore it from a backup, or "
                         "start a new experiment with the demonstrations") from exc
    if meta.get("row_size") != row_size or len(rows) != meta.get("rows", -1) * row_size:
        raise FatalError(f"{directory}: holds {len(rows)} floats in rows of "
                         f"{meta.get('row_size')}, this experiment's rows take {row_size}: "
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


class DemoMixSource(DataSource):
    """Another data source's batches with their first round(share x batch) rows
    replaced by demonstration rows drawn uniformly (inside the compiled loop)."""

    def __init__(self, inner: DataSource, rows: np.ndarray, packer, batch_size: int,
                 share: DemoShare):
        import tensorflow as tf

        self.inner = inner
        self.packer = packer
        self.count = len(rows)
        self._rows = tf.Variable(rows, trainable=False, name="demonstration_rows")
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

    def demo_batch(self, batch_size: int | None = None):
        """Demonstration rows drawn uniformly with replacement, unpacked (graph code)."""
        import tensorflow as tf

        index = tf.random.uniform([batch_size or self._batch_size], maxval=self.count,
                                  dtype=tf.int64)
        return self.packer.unpack(tf.gather(self._rows, index))

    def next_batch(self, *loop_args):
        import tensorflow as tf

        replay = self.inner.next_batch(*loop_args)
        demo = self.demo_batch()
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

    def restart_sampling(self) -> None:
        self.inner.restart_sampling()

    def close(self) -> None:
        self.inner.close()


def with_demonstrations(source: DataSource, params, paths, collect_data_spec, log,
                        ) -> DataSource:
    """The learner's data source, mixed with the experiment's stored demonstrations
    when it has some (else `source` itself)."""
    packer = make_packer(collect_data_spec.observation, collect_data_spec.action,
                         params.sequence)
    found = load(paths.demonstrations, packer.size)
    if found is None:
        if params.env_config.get("demonstrations") or params.demonstrations:
            raise FatalError(f"{paths.demonstrations} is missing: the experiment's "
                             "demonstrations are stored there when the launcher creates it; "
                             "start a new experiment to load them")
        return source
    rows, meta = found
    share = DemoShare(params.demo_ratio, len(rows))
    log.info("demonstrations: %d rows from %s (stored at creation), share of each batch: "
             "%s", len(rows), ", ".join(meta.get("files", [])),
             "their share of all rows" if params.demo_ratio is None else params.demo_ratio)
    return DemoMixSource(source, rows, packer, params.batch_size, share)
