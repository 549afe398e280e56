"""The learner's replay memory for the packed_blocks layout.

Workers send blocks of packed transitions through Reverb's FIFO queue table;
the learner drains the queue between training calls into a ring buffer held in
a TF variable and samples its batches there, inside the compiled train loop.
Reverb then moves each transition once instead of once per time it is sampled
(about 256 times at one gradient step per env step), which is what made Reverb's
per-item work the learner's bottleneck.

Durability: every transition the learner stores is appended to a log in
`<exp>/replay_memory/` (raw float32 rows in segment files, written and flushed
to the OS at each drain), so a learner that crashes or is preempted loses no
experience: a restarted learner reloads the newest `capacity` rows. Segments
wholly older than that are deleted. Transitions still in the queue are kept by
the replay server's own checkpoints. A replay server restored from a checkpoint
may hand over again blocks the learner had already taken after that checkpoint:
their sequence numbers tell (`auth.BlockCheck`), and they are dropped (after a
learner restart too, those few are stored twice); none is lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfagents_system.core import constants as C
from tfagents_system.core.files import JsonRecord
from tfagents_system.replay.auth import BlockCheck
from tfagents_system.replay.client import SERVER_CALL_TIMEOUT_S


@dataclass(frozen=True)
class LogMeta(JsonRecord):
    """A replay log's meta.json: the floats in each of its rows."""

    row_size: int

    def refusal(self, row_size: int, path: Path) -> str | None:
        """Why a log of these rows cannot take rows of `row_size` (None: it can)."""
        if self.row_size == row_size:
            return None
        return (f"{path}: transitions of {self.row_size} floats, but this experiment's "
                f"specs give {row_size}: the env's observation or action spec changed")


@dataclass(frozen=True)
class ImportedRows(JsonRecord):
    """imported.json: how many of the memory's first rows fine-tuning imported."""

    rows: int


def log_segments(directory: Path) -> list[tuple[int, Path]]:
    """The (first row index, path) of a replay log's segments, oldest first."""
    found = []
    for path in Path(directory).glob("rows_*.f32"):
        try:
            found.append((int(path.stem.split("_")[1]), path))
        except ValueError:
            continue
    return sorted(found)


def read_rows(directory: Path, row_size: int, limit: int) -> tuple[np.ndarray, int]:
    """(the newest `limit` rows of a replay log, rows ever appended to it), opening
    nothing for writing: a torn last row is left out here, not cut from the file, so
    another experiment's log (fine-tuning) is read without changing it."""
    segments = log_segments(directory)
    if not segments:
        return np.zeros((0, row_size), np.float32), 0
    parts, have = [], 0
    for _, path in reversed(segments):
        rows = np.fromfile(path, np.float32)
        parts.append(rows[:len(rows) // row_size * row_size].reshape(-1, row_size))
        have += len(parts[-1])
        if have >= limit:
            break
    rows = np.concatenate(parts[::-1]) if len(parts) > 1 else parts[0]
    return rows[len(rows) - min(limit, len(rows)):], segments[-1][0] + len(parts[0])


class ReplayLog:
    """Append-only segments of float32 rows; the rows' global indices name the files."""

    SEGMENT_ROWS = 1 << 17
    META = "meta.json"

    def __init__(self, directory: Path, row_size: int, capacity: int):
        self._dir = Path(directory)
        self._row_size = row_size
        self._capacity = capacity
        self._file = None
        self._file_start = 0
        self._file_rows = 0
        self._dir.mkdir(parents=True, exist_ok=True)
        meta = self._dir / self.META
        if not meta.is_file():
            LogMeta(row_size).write(meta, durable=True)
            return
        recorded = self.row_size_of(self._dir)  # None: torn by a power cut
        if recorded is None and not self._segments():
            LogMeta(row_size).write(meta, durable=True)
        elif recorded is None:
            raise ValueError(f"{meta} is damaged and the log holds rows: write "
                             f'{{"row_size": {row_size}}} into it if this experiment\'s '
                             "specs are unchanged, then relaunch")
        elif problem := LogMeta(recorded).refusal(row_size, meta):
            raise ValueError(problem)

    @classmethod
    def row_size_of(cls, directory: Path) -> int | None:
        """The row size a log's meta.json records; None if it is missing or torn."""
        try:
            return int(LogMeta.read(Path(directory) / cls.META).row_size)
        except (OSError, ValueError, TypeError):
            return None

    def _segments(self) -> list[tuple[int, Path]]:
        return log_segments(self._dir)

    def load(self) -> tuple[np.ndarray, int]:
        """(the newest `capacity` rows, rows ever appended). Cuts a torn last row."""
        segments = self._segments()
        if segments:  # appends continue the last segment: cut its torn row on disk
            last_start, last_path = segments[-1]
            whole = os.path.getsize(last_path) // (4 * self._row_size)
            if os.path.getsize(last_path) != whole * 4 * self._row_size:
                os.truncate(last_path, whole * 4 * self._row_size)
            self._file_start, self._file_rows = last_start, whole
        return read_rows(self._dir, self._row_size, self._capacity)

    def append(self, rows: np.ndarray, total_before: int) -> None:
        """Append rows whose global indices start at `total_before`; flush to the OS.

        A segment is continued while it ends at `total_before` and is not full."""
        if self._file_rows >= self.SEGMENT_ROWS or (
                self._file_start + self._file_rows != total_before):
            self.close()
            self._file_start, self._file_rows = total_before, 0
        if self._file is None:
            self._file = open(self._dir / f"rows_{self._file_start:015d}.f32", "ab")
            self._prune(total_before)
        self._file.write(np.ascontiguousarray(rows, np.float32).tobytes())
        self._file.flush()
        self._file_rows += len(rows)

    def _prune(self, total: int) -> None:
        """Delete segments whose every row has left the ring buffer."""
        segments = self._segments()
        for (_, path), (next_start, _) in zip(segments, segments[1:]):
            if next_start <= total - self._capacity:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ReplayMemory:
    """A ring buffer of packed rows in a TF variable, with its log. Rows imported from
    another experiment (fine-tuning) are counted apart (`imported`): they are no
    inserts of this experiment's workers."""

    def __init__(self, capacity: int, row_size: int, directory: Path | None):
        import tensorflow as tf

        self.capacity = int(capacity)
        self.row_size = int(row_size)
        with tf.device("/CPU:0"):  # host RAM (the layout's budget), also with a GPU
            self.rows = tf.Variable(tf.zeros([self.capacity, self.row_size], tf.float32),
                                    trainable=False, name="replay_rows")
        self.size = tf.Variable(0, dtype=tf.int64, trainable=False, name="replay_size")
        # Where the oldest stored row is (0 until the ring is full).
        self.first = tf.Variable(0, dtype=tf.int64, trainable=False, name="replay_first")
        self.inserted = 0  # rows ever stored (the log's row count)
        self.imported = 0  # of which imported from another experiment
        self._directory = None if directory is None else Path(directory)
        self._log = ReplayLog(directory, self.row_size, self.capacity) if directory else None

    def restore(self) -> int:
        """Reload the logged rows; returns how many are in memory."""
        if self._log is None:
            return 0
        rows, total = self._log.load()
        self._store(rows, total - len(rows))
        self.inserted = total
        imported = self._directory / C.REPLAY_IMPORTED_FILE
        self.imported = ImportedRows.read(imported).rows if imported.is_file() else 0
        return len(rows)

    @property
    def collected(self) -> int:
        """Rows this experiment's workers inserted (imported ones left out)."""
        return self.inserted - self.imported

    def import_rows(self, rows: np.ndarray) -> None:
        """Store another experiment's rows first, outside the workers' count (the count
        is recorded before the rows: a crash between leaves a replay ratio that waits a
        little longer, never one that lets the learner run ahead)."""
        if self._directory is not None:
            ImportedRows(len(rows)).write(self._directory / C.REPLAY_IMPORTED_FILE,
                                          durable=True)
        self.add(rows)
        self.imported = len(rows)

    def _store(self, rows: np.ndarray, first_index: int) -> None:
        if not len(rows):
            return
        positions = (first_index + np.arange(len(rows))) % self.capacity
        self.rows.scatter_nd_update(positions[:, None], rows)
        end = first_index + len(rows)
        self.size.assign(min(end, self.capacity))
        self.first.assign(max(0, end - self.capacity) % self.capacity)

    def add(self, rows: np.ndarray) -> None:
        """Store rows (a [n, row_size] float32 array), oldest overwritten first."""
        if not len(rows):
            return
        if self._log is not None:
            self._log.append(rows, self.inserted)
        skipped = max(0, len(rows) - self.capacity)
        self._store(rows[skipped:], self.inserted + skipped)
        self.inserted += len(rows)

    def sample(self, batch_size: int):
        """A [batch_size, row_size] batch drawn uniformly with replacement (graph code)."""
        import tensorflow as tf

        index = tf.random.uniform([batch_size], maxval=self.size, dtype=tf.int64)
        return tf.gather(self.rows, index)

    def sample_with_history(self, batch_size: int, history: int, position_column: int,
                            valid):
        """[batch_size, history + 1, row_size]: rows drawn uniformly among those
        `valid(positions, ages)` accepts (their `position_column` value, and the rows
        stored before them), each with the `history` rows stored just before it
        (`frames`: a transition and its block's frames). Graph code; rejected draws
        are drawn again."""
        import tensorflow as tf

        def draw():
            return tf.random.uniform([batch_size], maxval=self.size, dtype=tf.int64)

        def accepted(index):
            column = tf.fill(tf.shape(index), tf.constant(position_column, tf.int64))
            positions = tf.gather_nd(self.rows, tf.stack([index, column], axis=1))
            return valid(positions, (index - self.first) % self.capacity)

        index = tf.while_loop(lambda i: tf.logical_not(tf.reduce_all(accepted(i))),
                              lambda i: [tf.where(accepted(i), i, draw())], [draw()])[0]
        offsets = tf.range(history, -1, -1, dtype=tf.int64)
        return tf.gather(self.rows, (index[:, None] - offsets[None]) % self.capacity)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()


def drain_queue(client, check: BlockCheck, limit: int | None = None) -> np.ndarray | None:
    """Take the blocks waiting in the experience queue (at most `limit`); the
    transitions of those `check` accepts as one array (maybe empty), or None if no
    block was waiting."""
    waiting = client.server_info(timeout=SERVER_CALL_TIMEOUT_S)[C.QUEUE_TABLE].current_size
    if limit is not None:
        waiting = min(waiting, limit)
    if waiting <= 0:
        return None
    blocks = [check.rows(sample.data) for sample in
              client.sample(C.QUEUE_TABLE, num_samples=waiting, emit_timesteps=False)]
    blocks = [rows for rows in blocks if rows is not None]
    return np.concatenate(blocks) if blocks else np.zeros((0, check.row_size), np.float32)
