"""Reaching the replay server: a program's link to it (a client and the weights
exchange, rebuilt when the server restarts) and the weights exchange itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfagents_system.core import constants as C
from tfagents_system.core.errors import StopRequested
from tfagents_system.replay.auth import WEIGHTS_TAG, PublicationCounter, Signer, WeightsGate

# A bound on a server-info call: a server that does not answer within it is treated as
# lost (the caller reconnects) instead of blocking a program without its heartbeat.
SERVER_CALL_TIMEOUT_S = 60


def wait_for_server(address: str, should_stop: Callable[[], bool], timeout_s: float = 600):
    """A reverb.Client once the server answers; StopRequested if asked to stop."""
    import reverb

    client = reverb.Client(address)
    deadline = time.monotonic() + timeout_s
    while True:
        if should_stop():
            raise StopRequested()
        try:
            client.server_info(timeout=2)
            return client
        except Exception:  # not up yet (any gRPC error)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replay server at {address} did not answer in {timeout_s}s") from None
            time.sleep(0.5)


def server_alive(client) -> bool:
    """Whether the replay server answers now (any gRPC failure means no)."""
    try:
        client.server_info(timeout=5)
        return True
    except Exception:
        return False


class WeightsExchange:
    """Publishes and fetches (policy variables, train step) through the one-slot table.

    The table keeps the latest item and sampling does not remove it, so neither
    side ever waits for the other once the learner has published once. Every item is
    signed (`auth`): [arrays..., header int64[2] (train step, publication number),
    signature]. The learner numbers its publications with `publications` (a
    PublicationCounter, increasing over the experiment's life); a worker checks what
    it fetches with its `gate` (an auth.WeightsGate).
    """

    # A fetch that gets no item within this long (the item was removed) is a refusal.
    FETCH_TIMEOUT_S = 10.0

    def __init__(self, client, signer: Signer, publications: PublicationCounter | None = None,
                 gate: WeightsGate | None = None):
        self._client = client
        self._signer = signer
        self._publications = publications
        self._unnumbered = 0  # without a counter (tests): numbers of this object's life
        self.gate = gate if gate is not None else WeightsGate(signer)

    def publish(self, variables, train_step: int) -> None:
        """Replace the published weights by `variables` (TF variables) at `train_step`."""
        arrays = [v.numpy() for v in variables]
        if self._publications is not None:
            publication = self._publications.next()
        else:
            self._unnumbered += 1
            publication = self._unnumbered
        header = np.array([train_step, publication], np.int64)
        signature = self._signer.sign(WEIGHTS_TAG, C.WEIGHTS_TABLE, [header, *arrays])
        self._client.insert(arrays + [header, signature], {C.WEIGHTS_TABLE: 1.0})

    def wait_until_available(self, should_stop: Callable[[], bool]) -> None:
        """Wait for the learner's first publication (a learner restoring a large buffer
        takes minutes; the worker's `should_stop` is its heartbeat too); StopRequested
        if asked to stop."""
        while self._client.server_info(timeout=SERVER_CALL_TIMEOUT_S)[
                C.WEIGHTS_TABLE].current_size == 0:
            if should_stop():
                raise StopRequested()
            time.sleep(0.5)

    def _sample(self, timeout_s: float) -> list | None:
        """The weights item's columns, or None if none came within `timeout_s`. Reverb's
        sampler has no deadline, so it waits in a thread of its own; one left waiting
        ends at the learner's next publication."""
        result: list = []

        def take() -> None:
            try:
                result.append(next(iter(self._client.sample(
                    C.WEIGHTS_TABLE, num_samples=1, emit_timesteps=False))).data)
            except Exception as exc:  # handed to the caller
                result.append(exc)

        thread = threading.Thread(target=take, name="weights-fetch", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if not result:
            return None
        if isinstance(result[0], Exception):
            raise result[0]
        return result[0]

    def fetch(self, timeout_s: float | None = None) -> tuple[list[np.ndarray], int, int]:
        """(the published policy variables as arrays, their train step, their
        publication number); ForgedItem (counted by the gate) if the item is refused or
        none is there."""
        data = self._sample(self.FETCH_TIMEOUT_S if timeout_s is None else timeout_s)
        if data is None:
            raise self.gate.refuse("no weights item", "removed from the table?")
        return self.gate.check([np.asarray(column) for column in data])

    def acted(self, publication: int) -> None:
        """The worker acts with this publication from now on (`gate.acted`)."""
        self.gate.acted(publication)

    @staticmethod
    def assign(arrays, variable_lists) -> None:
        """Assign fetched weights to each list of variables."""
        for variables in variable_lists:
            if len(variables) != len(arrays):
                raise ValueError(
                    f"published weights have {len(arrays)} tensors, the policy has "
                    f"{len(variables)}: the learner and worker build different networks"
                )
            for var, value in zip(variables, arrays):
                var.assign(value)


class ServerLink:
    """A program's connection to the replay server: `client` and `weights`, rebuilt
    when the server has gone away and come back (restored from its checkpoint).

    `reconnect` waits for the server, rebuilds the connection and calls every
    function added with `on_reconnect` (a new sampling iterator, a republication).
    Subclasses rebuild what they keep on the client in `on_connect`.
    """

    def __init__(self, address: str, should_stop: Callable[[], bool], log, signer: Signer,
                 publications: PublicationCounter | None = None,
                 gate: WeightsGate | None = None):
        self.address = address
        self.signer = signer
        self.publications = publications  # the learner's
        self.gate = gate  # a worker's (WeightsExchange makes one for a link without)
        self._should_stop = should_stop
        self._log = log
        self._listeners: list[Callable[[], None]] = []
        self.connect()

    def connect(self) -> None:
        """Wait for the server to answer, then (re)build the client and what hangs on it."""
        self.client = wait_for_server(self.address, self._should_stop)
        self.weights = WeightsExchange(self.client, self.signer, self.publications,
                                       self.gate)
        self.on_connect()

    def on_connect(self) -> None:
        """Called after every (re)connection."""

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every reconnection."""
        self._listeners.append(listener)

    def alive(self) -> bool:
        """Whether the server answers now: a failed call then was no lost server."""
        return server_alive(self.client)

    def reconnect(self, exc: Exception) -> None:
        """The server went away (`exc`): wait for it to come back and reconnect."""
        self._log.warning("replay server unreachable (%s: %s); waiting for it to come back",
                          type(exc).__name__, exc)
        self.connect()
        for listener in self._listeners:
            listener()
        self._log.info("reconnected to the replay server")

    def call(self, call: Callable, default=None):
        """A client call between training calls. If the server has gone away, wait for
        it, reconnect and return `default`; if it is already back (a quick restart broke
        the call), reconnect and make the call once more. While stopping, return
        `default`: SLURM signals every program at once, and a program must still write
        its checkpoint when the server has gone first."""
        try:
            return call()
        except Exception as exc:  # Reverb's client errors
            if self._should_stop():
                return default
            restarted = self.alive()
            self.reconnect(exc)
            if not restarted:
                return default
        return call()

    def checkpoint(self, checkpoints, on_wait=None) -> Path:
        """Reverb's own checkpoint of every table, kept by `checkpoints`
        (a replay.checkpoints.ReplayCheckpoints)."""
        return checkpoints.save(self.client.checkpoint, on_wait)


class WriterLink(ServerLink):
    """A worker's connection to the replay server, with its experience writers (one
    per collect env, each made by `open_writer(client)`), reopened when the server
    restarts."""

    def __init__(self, address: str, should_stop: Callable[[], bool], log, signer: Signer,
                 open_writer: Callable, count: int, gate: WeightsGate | None = None):
        self._open_writer = open_writer
        self._count = count
        self._opened = False
        self.writers: list = []
        super().__init__(address, should_stop, log, signer, gate=gate)

    def on_connect(self) -> None:
        if self._opened:
            self.open_writers()

    def open_writers(self) -> list:
        """(Re)open one experience writer per collect env."""
        self._opened = True
        self.writers = [self._open_writer(self.client) for _ in range(self._count)]
        return self.writers

    def close(self) -> None:
        """Close the writers (a block writer sends its last, partly filled block)."""
        for writer in self.writers:
            writer.close()
