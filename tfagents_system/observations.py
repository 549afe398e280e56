"""The names params files written before the agents package import for networks of
their own over structured observations (`from tfagents_system.observations import
...`, as the README once showed). They live in `agents.encoders` and
`agents.networks` now; new code imports them from there."""

from tfagents_system.agents.encoders import (
    NumpyCombiner,
    ObservationCombiner,
    ObservationError,
    actor_combiner_kwargs,
    needs_combiner,
    resolve_normalization,
)
from tfagents_system.agents.networks import CombinedCriticNetwork

__all__ = ["CombinedCriticNetwork", "NumpyCombiner", "ObservationCombiner", "ObservationError",
           "actor_combiner_kwargs", "needs_combiner", "resolve_normalization"]
