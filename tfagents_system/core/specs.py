"""Array specs as data: the leaves of a (nested) spec by path, shape and dtype, the
JSON structure the replay format records, and what two specs must share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The name of a non-nested observation's only leaf.
SINGLE_LEAF = "observation"


@dataclass(frozen=True)
class Leaf:
    """One leaf of a spec: its nest path, shape and dtype name."""

    path: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        """Values in one array of this leaf."""
        return int(np.prod(self.shape, dtype=np.int64))

    def as_record(self) -> dict:
        """The leaf in the replay format's JSON."""
        return {"path": self.path, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_record(cls, record: dict) -> Leaf:
        """The leaf of `as_record`'s JSON."""
        return cls(str(record["path"]), tuple(int(n) for n in record["shape"]),
                   str(record["dtype"]))

    def describe(self) -> str:
        """e.g. `position float32(2,)`."""
        return f"{self.path} {self.dtype}{list(self.shape)}"


def leaves(spec) -> list[Leaf]:
    """The spec's leaves in tf.nest order (the order of the packed vector and the
    combined features); a non-nested spec's one leaf is named "observation"."""
    import tensorflow as tf
    from tensorflow.python.util import nest  # tf.nest has no public flatten-with-paths

    if not tf.nest.is_nested(spec):
        return [Leaf(SINGLE_LEAF, tuple(spec.shape), tf.as_dtype(spec.dtype).name)]
    return [Leaf(path, tuple(leaf.shape), tf.as_dtype(leaf.dtype).name)
            for path, leaf in nest.flatten_with_joined_string_paths(spec, separator="/")]


def spec_shapes(spec) -> list[tuple]:
    """(shape, dtype name) of every array in a spec nest: what two specs must share."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    return [(tuple(s.shape), tf.as_dtype(s.dtype).name)
            for s in tf.nest.flatten(tensor_spec.from_spec(spec))]
