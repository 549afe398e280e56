"""Calls to a replay server that stopped answering (a stopped process, a saturated
node) end at a deadline instead of blocking a program without its heartbeat."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest

reverb = pytest.importorskip("reverb")

from tfagents_system.replay import client as replay_client
from tfagents_system.replay import memory as replay_memory
from tfagents_system.replay.auth import BlockCheck, Signer

SERVER = """
import sys, time, reverb
server = reverb.Server([reverb.Table.queue("experience_queue", 10),
                        reverb.Table.queue("variables", 1)], port=None)
print(server.port, flush=True)
time.sleep(600)
"""


@pytest.fixture
def frozen_server():
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        client = reverb.Client(f"localhost:{port}")
        client.server_info(timeout=30)  # it answers...
        proc.send_signal(signal.SIGSTOP)  # ...then stops answering
        stopped = psutil.Process(proc.pid)
        deadline = time.monotonic() + 10  # the signal is delivered, not waited for
        while stopped.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stopped.status() == psutil.STATUS_STOPPED
        yield client
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_draining_the_queue_of_a_frozen_server_ends_at_the_deadline(frozen_server,
                                                                     monkeypatch):
    monkeypatch.setattr(replay_memory, "SERVER_CALL_TIMEOUT_S", 2)
    started = time.monotonic()
    with pytest.raises(Exception, match="(?i)deadline|timeout"):
        replay_memory.drain_queue(frozen_server, BlockCheck(Signer(b"k" * 32), 4))
    assert time.monotonic() - started < 20


def test_waiting_for_weights_on_a_frozen_server_ends_at_the_deadline(frozen_server,
                                                                     monkeypatch):
    monkeypatch.setattr(replay_client, "SERVER_CALL_TIMEOUT_S", 2)
    exchange = replay_client.WeightsExchange(frozen_server, Signer(b"k" * 32))
    started = time.monotonic()
    with pytest.raises(Exception, match="(?i)deadline|timeout"):
        exchange.wait_until_available(lambda: False)
    assert time.monotonic() - started < 20
