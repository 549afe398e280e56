"""What the learner's batches are, whichever replay format they come from."""

from __future__ import annotations

from typing import NamedTuple


class SequenceBatch(NamedTuple):
    """A batch of replay windows: a Transition of [B, T, ...] tensors and the [B, T]
    mask of the steps to train on (`agents.sac.SacAgent` takes it as the weights)."""

    experience: object
    mask: object
