"""Authenticating and validating what travels through the replay server.

Reverb 0.14 serves on every interface without authentication: anyone who reaches
the port can insert experience or replace the weights. Each experiment therefore
has a secret key (`replay.key` in the experiment directory, created at its first
launch, readable by its owner only, never logged), and every experience block and
every weights item carries an HMAC-SHA256 of its contents made with it:

- a worker's `BlockExperienceWriter` signs each block with its writer id and a
  sequence number; the learner (`BlockCheck`) drops, and logs, a block whose
  signature fails, whose sequence number does not advance, or whose rows are not
  transitions (width, step types, finite values), before anything reaches its
  replay memory or the memory's log;
- the learner's `WeightsExchange.publish` signs the weights with the train step,
  a nonce of the learner's run and a sequence number; a worker refuses weights
  that fail (`ForgedItem`) and goes on with the ones it has.

The Reverb-sampled layouts (packed_transition, steps2), used where the buffer does
not fit in the learner's RAM, sample items inside TensorFlow's input pipeline and
are not authenticated (README, "Security").
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import numpy as np

from tfagents_system.replay.packing import PAD_STEP_TYPE

KEY_BYTES = 32
DIGEST_BYTES = 32
# Step types a transition row may hold (FIRST, MID, LAST); padding rows are dropped first.
STEP_TYPES = (0.0, 1.0, 2.0)


class ForgedItem(ValueError):
    """An item whose signature or contents fail: not from this experiment's programs."""


def create_key(path: Path) -> None:
    """A new random key at `path`, readable and writable by its owner only; an existing
    key is kept."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(os.urandom(KEY_BYTES))
        fh.flush()
        os.fsync(fh.fileno())


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
    """HMAC-SHA256 of byte strings under the experiment's key."""

    def __init__(self, key: bytes):
        self._key = bytes(key)

    def sign(self, *parts) -> np.ndarray:
        """The signature of the concatenated parts (bytes or arrays), as uint8[32]."""
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part if isinstance(part, bytes) else np.ascontiguousarray(part).data)
        return np.frombuffer(mac.digest(), np.uint8)

    def verify(self, signature, *parts) -> bool:
        """Whether `signature` is the parts' signature (compared in constant time)."""
        signature = np.asarray(signature, np.uint8).reshape(-1)
        if signature.size != DIGEST_BYTES:
            return False
        return hmac.compare_digest(self.sign(*parts).tobytes(), signature.tobytes())


class BlockCheck:
    """The learner's gate for the experience queue's blocks: signature, sequence, shape,
    step types and finite values; counts what it rejects and why."""

    def __init__(self, signer: Signer, row_size: int):
        self._signer = signer
        self.row_size = int(row_size)
        self._last_seq: dict[int, int] = {}
        self.rejected: dict[str, int] = {}

    def _reject(self, why: str) -> None:
        self.rejected[why] = self.rejected.get(why, 0) + 1

    def rows(self, data) -> np.ndarray | None:
        """The block's transitions (padding dropped), or None if it is rejected."""
        if len(data) != 3:
            return self._reject("unsigned or malformed item")
        block, meta, signature = (np.asarray(d) for d in data)
        if block.dtype != np.float32 or meta.dtype != np.int64 or meta.size != 2:
            return self._reject("unsigned or malformed item")
        if not self._signer.verify(signature, block, meta):
            return self._reject("bad signature")
        writer, seq = (int(v) for v in meta.reshape(-1))
        if seq <= self._last_seq.get(writer, -1):
            return self._reject("already taken")
        if block.ndim < 2 or block.shape[-1] != self.row_size:
            return self._reject(f"rows of {block.shape[-1:]} floats, not {self.row_size}")
        rows = block.reshape(-1, self.row_size)
        rows = rows[rows[:, 0] != PAD_STEP_TYPE]
        steps_ok = np.isin(rows[:, 0], STEP_TYPES).all() and np.isin(rows[:, 1], STEP_TYPES).all()
        if not steps_ok or not np.isfinite(rows).all():
            return self._reject("not transitions (step types or non-finite values)")
        self._last_seq[writer] = seq
        return rows
