"""Where the learner's batches come from: one small interface, `DataSource`, with an
implementation per kind of replay buffer. The learner's loop only calls these
methods, so it does not know which layout it runs.

- `MemorySource` (packed_blocks): the learner's own `ReplayMemory`, fed from
  Reverb's experience queue; it applies `min_replay_size` and `samples_per_insert`
  itself (`RatioLimit`) and samples inside the compiled train loop.
- `ReverbSource` (packed_transition, steps2): batches sampled from Reverb's
  experience table, whose rate limiter holds the ratio.

`DemoMixSource` (`demo_store`) wraps either. The builder makes the experiment's
source (`builder.Builder.data_source`); the learner only calls these methods.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path

from tfagents_system.core import constants as C
from tfagents_system.replay import frames
from tfagents_system.replay import memory as replay_memory
from tfagents_system.replay.auth import BlockCheck, Rejections, RowCheck
from tfagents_system.replay.client import SERVER_CALL_TIMEOUT_S, ServerLink
from tfagents_system.replay.datasets import experience_dataset
from tfagents_system.replay.format import ReplayFormat
from tfagents_system.replay.limits import RatioLimit, ReplaySettings

# Blocks taken from the experience queue per drain without a replay ratio
# (x BLOCK_ROWS transitions).
DRAIN_MAX_BLOCKS = 1024


class RefusalReport:
    """Logs how many items were refused, and why, when the count has grown: at most
    once a minute (a stranger's flood must not flood the log)."""

    def __init__(self, log, text: str):
        self._log = log
        self._text = text  # with %d (the total) and %s (the reasons)
        self._logged = 0
        self._next = 0.0

    def __call__(self, rejected: Rejections) -> None:
        total = rejected.total
        if self._log is None or total <= self._logged or time.monotonic() < self._next:
            return
        self._log.warning(self._text, total, rejected.describe())
        self._logged = total
        self._next = time.monotonic() + 60.0


class DataSource(abc.ABC):
    """The learner's replay data: take in new experience, say how many gradient steps
    are allowed now, and hand batches to the compiled train loop."""

    def take_in(self, train_step: int) -> None:  # noqa: B027 (a no-op unless overridden)
        """Move newly collected experience into the buffer (between training calls)."""

    def steps_allowed(self, train_step: int, wanted: int) -> int:
        """How many of `wanted` gradient steps may run now (0: data is short)."""
        return wanted

    @abc.abstractmethod
    def next_batch(self, *loop_args):
        """One batch, inside the compiled train loop (graph code)."""

    def loop_args(self) -> tuple:
        """The arguments the compiled loop passes to `next_batch` at each step."""
        return ()

    @abc.abstractmethod
    def sample(self):
        """One batch, eagerly (for summaries such as the policy entropy)."""

    @abc.abstractmethod
    def size(self) -> int:
        """Transitions in the buffer (-1 when it cannot be told now)."""

    def restart_sampling(self) -> None:  # noqa: B027 (a no-op unless overridden)
        """After a sampling timeout (no data yet) or a reconnection."""

    def summaries(self) -> dict[str, float]:
        """The source's own TensorBoard scalars (the demonstrations' share)."""
        return {}

    def rejected(self) -> dict[str, int]:
        """Experience items refused so far (forged, replayed, malformed), by reason."""
        return {}

    def sampling_failed(self, exc: Exception) -> bool:
        """Whether a failed batch (`exc`) was a sampled item of another structure, which
        the source has counted, sampling restarted (False: the caller handles it)."""
        return False

    def close(self) -> None:  # noqa: B027 (a no-op unless overridden)
        """Release files (the memory's log)."""


class MemorySource(DataSource):
    """The learner's own replay memory (restored, and filled by fine-tuning's import,
    by the builder), fed from Reverb's experience queue."""

    def __init__(self, memory: replay_memory.ReplayMemory, replay_format: ReplayFormat,
                 settings: ReplaySettings, link: ServerLink, should_stop, log,
                 sequences: Path | None = None):
        import tensorflow as tf

        self._link = link
        self._should_stop = should_stop
        self._log = log
        self._batch_size = int(settings.batch_size)
        self.packer = replay_format.packer()
        self.check = BlockCheck(link.signer, self.packer.size, sequences,
                                value_columns=getattr(self.packer, "value_columns", None))
        self._report = RefusalReport(log, "dropped %d block(s) from the experience queue so "
                                          "far, never stored: %s")
        self.memory = memory
        self.limit = RatioLimit(settings, replay_format)
        self._sample = tf.function(self.next_batch)

    def take_in(self, train_step: int) -> None:
        # With samples_per_insert one block at a time, up to the limiter's slack.
        blocks = DRAIN_MAX_BLOCKS if self.limit.spi is None else 1
        while not self._should_stop() and self.limit.may_take_in(self._inserted(), train_step):
            rows = self._link.call(
                lambda: replay_memory.drain_queue(self._link.client, self.check, blocks))
            self._report(self.check.rejected)
            if rows is None:
                return
            self.check.save()  # before the rows: a copy of these blocks is never let in
            self.memory.add(rows)
            if self.limit.spi is None:
                return

    def _inserted(self) -> int:
        """Rows this experiment's workers inserted."""
        return self.memory.collected


    def rejected(self) -> dict[str, int]:
        return dict(self.check.rejected.counts)

    def steps_allowed(self, train_step: int, wanted: int) -> int:
        allowed = self.limit.steps_allowed(self.size(), self._inserted(), train_step, wanted)
        if not allowed:
            time.sleep(0.1)  # data is short: let the workers catch up
        return allowed

    def next_batch(self):
        history = getattr(self.packer, "history", 0)
        if history:  # frames: a transition row and its block's rows before it
            return self.packer.unpack(self.memory.sample_with_history(
                self._batch_size, history, frames.POSITION, self.packer.valid))
        return self.packer.unpack(self.memory.sample(self._batch_size))

    def sample(self):
        return self._sample()

    def size(self) -> int:
        return int(self.memory.size.numpy())

    def close(self) -> None:
        self.memory.close()


class ReverbSource(DataSource):
    """Batches sampled from Reverb's experience table."""

    # Sampling gives up after this long without data, so the learner regains control
    # (heartbeat, stop requests) while it waits for experience.
    SAMPLE_TIMEOUT_MS = 5000

    def __init__(self, replay_format: ReplayFormat, settings: ReplaySettings, link: ServerLink,
                 collect_data_spec, log=None):
        self._link = link
        self._format = replay_format
        self._spec = collect_data_spec
        self._batch_size = int(settings.batch_size)
        self._log = log
        self.check = (RowCheck(link.signer, replay_format.packer().size)
                      if replay_format.signed_rows else None)
        self.malformed = Rejections()
        self._report = RefusalReport(log, "dropped %d sampled row(s) of the experience "
                                          "table so far, never trained on: %s")
        self.restart_sampling()

    def restart_sampling(self) -> None:
        self._iterator = iter(experience_dataset(
            self._link.address, self._format, self._batch_size,
            rate_limiter_timeout_ms=self.SAMPLE_TIMEOUT_MS, collect_data_spec=self._spec,
            row_check=self.check))

    def take_in(self, train_step: int) -> None:
        """Nothing to move (Reverb holds the buffer); logs the rows refused so far."""
        if self.check is not None:
            self._report(self.check.rejected)

    def rejected(self) -> dict[str, int]:
        return dict(self.malformed.counts, **({} if self.check is None
                                              else self.check.rejected.counts))

    def sampling_failed(self, exc: Exception) -> bool:
        """The batch is lost; the sampling stream goes on past the item (it stays in the
        table until the oldest items are evicted, and fails every batch it is drawn in)."""
        if "incompatible tensor" not in str(exc):
            return False
        self.malformed("malformed item")
        total = self.malformed.total
        if self._log is not None and (total == 1 or total % 100 == 0):
            self._log.warning("dropped a batch holding an item of another structure from "
                              "the experience table (%d so far): not this experiment's",
                              total)
        return True

    def next_batch(self, iterator):
        return next(iterator)

    def loop_args(self) -> tuple:
        return (self._iterator,)

    def sample(self):
        return next(self._iterator)

    def size(self) -> int:
        return self._link.call(
            lambda: self._link.client.server_info(timeout=SERVER_CALL_TIMEOUT_S)[
                C.EXPERIENCE_TABLE].current_size, -1)
