"""Signing and checking what travels through the replay server (tfagents_system.replay.auth):
only blocks signed with the experiment's key, in sequence, holding transitions, reach the
learner's memory; the key file is its owner's only."""

import os
import stat

import numpy as np
import pytest

from tfagents_system.replay.auth import BlockCheck, Signer, create_key, read_key

KEY = b"0123456789abcdef0123456789abcdef"
ROW = 6  # step type, next step type, reward, discount, observation, action (1 each)


def _block(rows=4, step_types=1.0):
    block = np.arange(rows * ROW, dtype=np.float32).reshape(rows, ROW)
    block[:, :2] = step_types
    return block


def _item(signer, block, writer=3, seq=0):
    meta = np.array([writer, seq], np.int64)
    return [block, meta, signer.sign(block, meta)]


def test_a_signed_block_in_sequence_is_accepted_once():
    signer = Signer(KEY)
    check = BlockCheck(signer, ROW)
    first, second = _item(signer, _block(), seq=0), _item(signer, _block(), seq=1)
    np.testing.assert_array_equal(check.rows(first), _block())
    np.testing.assert_array_equal(check.rows(second), _block())
    assert check.rows(first) is None  # the same block again: replayed
    assert check.rejected == {"already taken": 1}


@pytest.mark.parametrize(("make", "why"), [
    (lambda s: [_block()], "unsigned or malformed item"),
    (lambda s: _item(Signer(b"x" * 32), _block()), "bad signature"),
    (lambda s: [_block(), np.array([3, 0], np.int64), np.zeros(32, np.uint8)], "bad signature"),
    (lambda s: _item(s, np.ones((4, ROW + 1), np.float32)), "rows of (7,) floats, not 6"),
    (lambda s: _item(s, _block() * np.float32(np.nan)), "not transitions"),
    (lambda s: _item(s, _block(step_types=5.0)), "not transitions"),
    (lambda s: _item(s, _block().astype(np.float64)), "unsigned or malformed item"),
])
def test_forged_or_broken_blocks_are_rejected_and_counted(make, why):
    signer = Signer(KEY)
    check = BlockCheck(signer, ROW)
    assert check.rows(make(signer)) is None
    assert len(check.rejected) == 1 and next(iter(check.rejected)).startswith(why)


def test_a_block_altered_after_signing_fails():
    signer = Signer(KEY)
    item = _item(signer, _block())
    item[0] = item[0].copy()
    item[0][0, 2] += 1.0  # another reward
    assert BlockCheck(signer, ROW).rows(item) is None


def test_the_key_is_created_once_and_only_its_owner_reads_it(tmp_path):
    path = tmp_path / "replay.key"
    create_key(path)
    key = read_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    create_key(path)  # kept, not replaced
    assert read_key(path) == key
    path.write_bytes(b"short")
    with pytest.raises(ValueError, match="damaged"):
        read_key(path)
    with pytest.raises(ValueError, match="cannot be read"):
        read_key(tmp_path / "missing.key")


def test_a_host_with_a_public_address_is_refused_unless_allowed():
    from tfagents_system.core.errors import CheckError
    from tfagents_system.launch.host import check_exposure

    check_exposure(False, "v.sh", addresses=[])  # private addresses only: fine
    with pytest.raises(CheckError, match=r"v.sh: this host has public address\(es\) 8\.8\.4\.4"):
        check_exposure(False, "v.sh", addresses=["8.8.4.4"])
    check_exposure(True, "v.sh", addresses=["8.8.4.4"])  # SAC_ALLOW_PUBLIC_REPLAY=1


def test_public_addresses_are_only_global_ones(monkeypatch):
    import socket
    from types import SimpleNamespace

    import psutil

    from tfagents_system.launch.host import public_addresses

    def addr(ip, family=socket.AF_INET):
        return SimpleNamespace(family=family, address=ip)

    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {
        "lo": [addr("127.0.0.1")], "eth0": [addr("10.1.2.3"), addr("fe80::1%eth0",
                                                                  socket.AF_INET6)],
        "eth1": [addr("203.0.114.7"), addr("2a00:1450:4001::1", socket.AF_INET6)]})
    assert public_addresses() == ["203.0.114.7", "2a00:1450:4001::1"]
