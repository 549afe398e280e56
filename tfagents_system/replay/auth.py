"""Authenticating and validating what travels through the replay server.

Reverb 0.14 serves on every interface without authentication: anyone who reaches
the port can insert, remove and read items. Each experiment therefore has a secret
key (`replay.key` in the experiment directory, created at its first launch, readable
by its owner only, never logged), and every item carries an HMAC-SHA256 made with it
over a canonical encoding (`Signer`: a type tag, the table, each part's dtype and
shape, then the bytes), so that no part can be reshaped, split or relabelled:

- a worker's `BlockExperienceWriter` signs each block with its writer id and a
  sequence number; the learner's `BlockCheck` refuses, and counts, a block of
  another shape (before hashing it), whose signature fails, whose sequence number
  does not advance (kept across learner restarts), or whose rows are not
  transitions, before anything reaches its replay memory or the memory's log;
- the learner's `WeightsExchange.publish` signs the weights with the train step and
  a publication number that grows over the experiment's life
  (`PublicationCounter`); a worker's `WeightsGate` refuses weights of another
  structure (before hashing them), with a bad signature, older than the newest it
  acted with (kept across worker restarts), or not finite;
- in the Reverb-sampled packed layout each row carries its own signature; the
  learner's input pipeline replaces rows that fail (`RowCheck`).

Checking an item never raises: whatever fails is a refusal, counted by reason.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path

import numpy as np

from tfagents_system.core import constants as C
from tfagents_system.core.files import read_json_or_none, write_json_atomic
from tfagents_system.replay.packing import PAD_STEP_TYPE

KEY_BYTES = 32
DIGEST_BYTES = 32
# Part of every signed encoding: items signed by an earlier scheme never verify.
SIGNING_VERSION = "tfagents_system signed item v2"
BLOCK_TAG, WEIGHTS_TAG, ROW_TAG = "experience block", "weights", "experience row"
# The most rows a queue block may have; a larger one is refused before it is hashed.
MAX_BLOCK_ROWS = 4096
# A signed row's signature, as float32 columns after the row's own.
SIGNATURE_FLOATS = DIGEST_BYTES // 4
# The most bytes a weights item may hold before the worker knows its policy's shapes.
MAX_WEIGHTS_BYTES = 1 << 30
# Step types a transition row may hold (FIRST, MID, LAST); padding rows are dropped first.
STEP_TYPES = (0.0, 1.0, 2.0)


class ForgedItem(ValueError):
    """An item whose signature or contents fail, or an item that is not there: not
    from this experiment's programs."""


def create_key(path: Path) -> None:
    """A new random key at `path`, readable and writable by its owner only; an existing
    key is kept. It is written whole under a temporary name in the same directory, then
    linked into place (a link never replaces a file), so a kill or a full disk leaves a
    whole key or none, never an empty one."""
    path = Path(path)
    if os.path.lexists(path):
        return
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            if os.write(fd, os.urandom(KEY_BYTES)) != KEY_BYTES:
                raise OSError(f"{tmp}: short write (disk full?)")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
    except FileExistsError:
        return  # made meanwhile by another launch: that one is kept
    finally:
        os.unlink(tmp)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the name, durable too
    finally:
        os.close(directory)


def read_key(path: Path) -> bytes:
    """The experiment's key; ValueError naming the file if it is missing or damaged."""
    try:
        key = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: the experiment's replay key cannot be read ({exc}); "
                         "relaunch the experiment with ./run_script.sh to create it") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: the experiment's replay key is damaged ({len(key)} bytes, "
                         f"not {KEY_BYTES}); delete it and relaunch (the queue's blocks in "
                         "flight are then dropped)")
    return key


class Signer:
    """HMAC-SHA256 under the experiment's key of an item's canonical encoding: a type
    tag, the table, the number of parts and each part's dtype and shape, then the
    parts' bytes. Reshaping, splitting, joining or relabelling the parts of a signed
    item, or moving it to another table, breaks its signature."""

    def __init__(self, key: bytes):
        self._base = hmac.new(bytes(key), digestmod=hashlib.sha256)
        self._prefixes: dict[tuple, hmac.HMAC] = {}

    def started(self, tag: str, table: str, parts) -> hmac.HMAC:
        """A MAC that has taken in the encoding of an item of the parts' structure up to
        its bytes (cached per structure: a worker signs thousands of items of one
        shape); `.update(bytes)` then `.digest()` signs one."""
        layout = (tag, table, tuple((p.dtype.str, p.shape) for p in parts))
        started = self._prefixes.get(layout)
        if started is None:
            started = self._base.copy()
            started.update(repr((SIGNING_VERSION, tag, table, len(parts),
                                 layout[2])).encode())
            if len(self._prefixes) < 64:
                self._prefixes[layout] = started
        return started.copy()

    def sign(self, tag: str, table: str, parts) -> np.ndarray:
        """The signature of an item's parts (numpy arrays), as uint8[32]."""
        parts = [np.ascontiguousarray(p) for p in parts]
        mac = self.started(tag, table, parts)
        for part in parts:
            if part.dtype.hasobject:
                raise ValueError("an item of Python objects cannot be signed")
            mac.update(part.data)
        return np.frombuffer(mac.digest(), np.uint8)

    def verify(self, signature, tag: str, table: str, parts) -> bool:
        """Whether `signature` is the item's signature (compared in constant time).
        Never raises: anything that is not a uint8[32] signature over numeric parts of
        this tag and table is a forgery."""
        try:
            if not (isinstance(signature, np.ndarray) and signature.dtype == np.uint8
                    and signature.shape == (DIGEST_BYTES,)):
                return False
            expected = self.sign(tag, table, parts)
            return hmac.compare_digest(expected.tobytes(), signature.tobytes())
        except Exception:  # any failure while checking is a rejection
            return False


def one_step(data) -> list[np.ndarray] | None:
    """An item's columns as sampled from Reverb without their time axis (every item of
    ours is one step), or None if they are not arrays of one step."""
    columns = []
    for column in data:
        if not isinstance(column, np.ndarray) or column.ndim < 1 or column.shape[0] != 1:
            return None
        columns.append(column[0])
    return columns


class Rejections:
    """Items refused, counted by reason."""

    def __init__(self):
        self.counts: dict[str, int] = {}

    def __call__(self, why: str) -> None:
        self.counts[why] = self.counts.get(why, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        """e.g. `3 bad signature, 1 already taken`."""
        return ", ".join(f"{n} {why}" for why, n in sorted(self.counts.items()))


class BlockCheck:
    """The learner's gate for the experience queue's blocks: shape and size (before any
    hashing), signature, sequence, step types and finite values; counts what it
    rejects and why. The last sequence number of every writer is kept in `state_path`
    (when given), so a captured block is refused after a learner restart too."""

    def __init__(self, signer: Signer, row_size: int, state_path: Path | None = None,
                 max_rows: int = MAX_BLOCK_ROWS, value_columns: slice | None = None):
        self._signer = signer
        # The columns that hold numbers (None: all); the others are bytes (`frames`).
        self._values = slice(None) if value_columns is None else value_columns
        self.row_size = int(row_size)
        self.max_rows = int(max_rows)
        self._state_path = None if state_path is None else Path(state_path)
        self._last_seq: dict[int, int] = self._load()
        self._saved = dict(self._last_seq)
        self.rejected = Rejections()

    def _load(self) -> dict[int, int]:
        """The kept sequences; none if the file is missing or damaged (a power cut can
        leave it empty): the learner then starts afresh rather than crash-looping, and
        a captured block could be let in once more."""
        if self._state_path is None or not self._state_path.is_file():
            return {}
        try:
            with np.load(self._state_path) as state:
                return dict(zip(state["writers"].tolist(), state["seqs"].tolist()))
        except Exception:  # a torn or foreign file: start afresh, never crash-loop
            return {}

    def save(self) -> None:
        """Record the writers' last sequence numbers (before their rows are stored: a
        crash between loses those rows, which the queue no longer holds anyway, but
        never lets a copy of them in)."""
        if self._state_path is None or self._last_seq == self._saved:
            return
        tmp = self._state_path.with_name(f".{self._state_path.name}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, writers=np.array(list(self._last_seq), np.int64),
                     seqs=np.array(list(self._last_seq.values()), np.int64))
        os.replace(tmp, self._state_path)
        self._saved = dict(self._last_seq)

    def rows(self, data) -> np.ndarray | None:
        """The block's transitions (padding dropped), or None if it is rejected."""
        try:
            return self._rows(data)
        except Exception:  # whatever a stranger sends is a rejection
            return self.rejected("malformed item")

    def _rows(self, data) -> np.ndarray | None:
        # The block writer's items are sampled as they were appended: no time axis.
        if len(data) != 3 or not all(isinstance(c, np.ndarray) for c in data):
            return self.rejected("malformed item")
        block, meta, signature = data
        if block.dtype != np.float32 or block.ndim != 2 or meta.dtype != np.int64 \
                or meta.shape != (2,):
            return self.rejected("malformed item")
        if block.shape[1] != self.row_size or not 0 < block.shape[0] <= self.max_rows:
            return self.rejected("wrong block shape")
        if not self._signer.verify(signature, BLOCK_TAG, C.QUEUE_TABLE, [block, meta]):
            return self.rejected("bad signature")
        writer, seq = (int(v) for v in meta)
        if seq <= self._last_seq.get(writer, -1):
            return self.rejected("already taken")
        rows = block[block[:, 0] != PAD_STEP_TYPE]
        steps_ok = np.isin(rows[:, 0], STEP_TYPES).all() and np.isin(rows[:, 1], STEP_TYPES).all()
        if not steps_ok or not np.isfinite(rows[:, self._values]).all():
            return self.rejected("not transitions (step types or non-finite values)")
        self._last_seq[writer] = seq
        return rows


class RowSigning:
    """Rows of the Reverb-sampled packed layout that carry their signature in
    `SIGNATURE_FLOATS` extra float32 columns (one Reverb column: a second one would
    cost the learner's sampling, which decodes every column of every item apart)."""

    def __init__(self, signer: Signer, size: int):
        self.size = int(size)
        self._start = signer.started(ROW_TAG, C.EXPERIENCE_TABLE, [np.empty(size, np.float32)])

    def signed(self, row: np.ndarray) -> np.ndarray:
        """The row (float32[size]) with its signature appended."""
        mac = self._start.copy()
        mac.update(np.ascontiguousarray(row, np.float32).data)
        return np.concatenate([row, np.frombuffer(mac.digest(), np.float32)])


class RowCheck(RowSigning):
    """The learner's gate for rows sampled from Reverb's experience table (the
    Reverb-sampled packed layout): a batch's rows whose signature fails are counted
    and replaced (`datasets.experience_dataset`)."""

    def __init__(self, signer: Signer, size: int):
        super().__init__(signer, size)
        self.rejected = Rejections()

    def valid(self, rows: np.ndarray) -> np.ndarray:
        """Which rows of a batch (float32[batch, size + SIGNATURE_FLOATS]) carry their
        signature (bool[batch])."""
        rows = np.ascontiguousarray(rows, np.float32)
        ok = np.zeros(len(rows), bool)
        if rows.ndim != 2 or rows.shape[1] != self.size + SIGNATURE_FLOATS:
            return ok
        signatures = rows[:, self.size:]
        for i, row in enumerate(rows[:, :self.size]):
            mac = self._start.copy()
            mac.update(row.tobytes())
            ok[i] = hmac.compare_digest(mac.digest(), signatures[i].tobytes())
        bad = int(len(ok) - ok.sum())
        if bad:
            self.rejected.counts["bad signature"] = self.rejected.counts.get(
                "bad signature", 0) + bad
        return ok


class PublicationCounter:
    """The learner's weights publication numbers: strictly increasing over the
    experiment's whole life, across learner restarts and crashes. The file records a
    ceiling no number handed out exceeds, raised (durably) `LEASE` numbers at a time;
    a learner starts above it, and above the newest number any worker acted with
    (`floor`: a lost file must not leave every worker refusing the new weights)."""

    LEASE = 1000

    def __init__(self, path: Path, floor: int = 0):
        self._path = Path(path)
        self._ceiling = max(_recorded_int(self._path, "ceiling"), int(floor))
        self._next = self._ceiling + 1

    def next(self) -> int:
        """The next publication number."""
        if self._next > self._ceiling:
            self._ceiling = self._next - 1 + self.LEASE
            write_json_atomic(self._path, {"ceiling": self._ceiling}, durable=True)
        number, self._next = self._next, self._next + 1
        return number


def _recorded_int(path: Path, key: str) -> int:
    """An integer of a small JSON record; 0 if the file is missing or damaged."""
    recorded = read_json_or_none(Path(path))
    try:
        return int(recorded[key])
    except (TypeError, KeyError, ValueError):
        return 0


def newest_acted(path: Path) -> int:
    """The newest publication a worker acted with, from its state file (0: none)."""
    return _recorded_int(path, "publication")


def variable_specs(variables) -> list[tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of each TF variable, as `WeightsGate.expect` takes them."""
    return [(tuple(v.shape.as_list()), np.dtype(v.dtype.as_numpy_dtype)) for v in variables]


class WeightsGate:
    """A worker's gate for the weights it fetches: structure and size (before any
    hashing), signature, age and finite values. It never lets the worker act with
    weights older than the newest it has acted with (`state_path` keeps that number
    across worker restarts; the learner's numbers only grow, `PublicationCounter`).
    Refusals are counted by reason, with the time the current run of refusals began."""

    def __init__(self, signer: Signer, state_path: Path | None = None):
        self._signer = signer
        self._state_path = None if state_path is None else Path(state_path)
        self.newest = 0 if state_path is None else newest_acted(self._state_path)
        self.expected: list[tuple[tuple[int, ...], np.dtype]] | None = None
        self.rejected = Rejections()
        self.refused_since: float | None = None

    def expect(self, specs) -> None:
        """The policy's variables as (shape, dtype) pairs (`variable_specs`): only weights
        of exactly these shapes and dtypes are hashed and accepted from now on."""
        self.expected = [(tuple(shape), np.dtype(dtype)) for shape, dtype in specs]

    def refuse(self, reason: str, detail: str = "") -> ForgedItem:
        """Count a refusal; the exception to raise."""
        self.rejected(reason)
        if self.refused_since is None:
            self.refused_since = time.time()
        return ForgedItem(reason + (f" ({detail})" if detail else ""))

    def check(self, data) -> tuple[list[np.ndarray], int, int]:
        """(arrays, train step, publication) of a sampled weights item's columns (with
        their time axis); ForgedItem (counted) if it is refused."""
        try:
            columns = one_step(data)
            malformed = columns is None or len(columns) < 3
        except Exception:  # whatever a stranger sends is a rejection
            malformed = True
        if malformed:
            raise self.refuse("malformed item")
        *arrays, header, signature = columns
        if header.dtype != np.int64 or header.shape != (2,):
            raise self.refuse("malformed item")
        if self.expected is not None:
            if [(a.shape, a.dtype) for a in arrays] != self.expected:
                raise self.refuse("wrong structure",
                                  f"{len(arrays)} arrays, the policy has {len(self.expected)}")
        elif sum(a.nbytes for a in arrays) > MAX_WEIGHTS_BYTES:
            raise self.refuse("oversized item")
        if not self._signer.verify(signature, WEIGHTS_TAG, C.WEIGHTS_TABLE, [header, *arrays]):
            raise self.refuse("bad signature")
        train_step, publication = (int(v) for v in header)
        if publication < self.newest:
            raise self.refuse("older than the weights acted with",
                              f"publication {publication} after {self.newest}")
        if not all(np.isfinite(a).all() for a in arrays if a.dtype.kind == "f"):
            raise self.refuse("non-finite values")
        return arrays, train_step, publication

    def acted(self, publication: int) -> None:
        """The worker now acts with this publication: refusals end, and a newer number
        is recorded (before the worker acts with it)."""
        self.refused_since = None
        if publication > self.newest:
            self.newest = publication
            if self._state_path is not None:
                write_json_atomic(self._state_path, {"publication": publication})
