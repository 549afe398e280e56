"""Signing and checking what travels through the replay server (tfagents_system.replay.auth):
only blocks signed with the experiment's key, in sequence, holding transitions, reach the
learner's memory; the key file is its owner's only."""

import os
import stat

import numpy as np
import pytest

from tfagents_system.core import constants as C
from tfagents_system.replay.auth import (
    BLOCK_TAG,
    MAX_BLOCK_ROWS,
    ROW_TAG,
    WEIGHTS_TAG,
    BlockCheck,
    ForgedItem,
    PublicationCounter,
    RowCheck,
    RowSigning,
    Signer,
    WeightsGate,
    create_key,
    read_key,
)

KEY = b"0123456789abcdef0123456789abcdef"
ROW = 6  # step type, next step type, reward, discount, observation, action (1 each)


def _block(rows=4, step_types=1.0):
    block = np.arange(rows * ROW, dtype=np.float32).reshape(rows, ROW)
    block[:, :2] = step_types
    return block


def _sampled(columns):
    """Columns as Reverb's sampler returns them: with the item's time axis (one step)."""
    return [np.asarray(c)[None] for c in columns]


def _item(signer, block, writer=3, seq=0):
    """A queue block as sampled: the block writer's items have no time axis."""
    meta = np.array([writer, seq], np.int64)
    return [block, meta, signer.sign(BLOCK_TAG, C.QUEUE_TABLE, [block, meta])]


def test_a_signed_block_in_sequence_is_accepted_once():
    signer = Signer(KEY)
    check = BlockCheck(signer, ROW)
    first, second = _item(signer, _block(), seq=0), _item(signer, _block(), seq=1)
    np.testing.assert_array_equal(check.rows(first), _block())
    np.testing.assert_array_equal(check.rows(second), _block())
    assert check.rows(first) is None  # the same block again: replayed
    assert check.rejected.counts == {"already taken": 1}


def _reshaped(signer):
    """A genuine block's bytes as another shape: the old signature covered bytes only."""
    block = _block(rows=4)
    item = _item(signer, block)
    item[0] = block.reshape(2, 2 * ROW)
    return item


@pytest.mark.parametrize(("make", "why"), [
    (lambda s: [_block()], "malformed item"),
    (lambda s: [_block(), np.array([3, 0]), "x" * 32], "malformed item"),
    (lambda s: _item(Signer(b"x" * 32), _block()), "bad signature"),
    (lambda s: [_block(), np.array([3, 0], np.int64), np.zeros(32, np.uint8)],
     "bad signature"),
    # the review's finding: a text signature column crashed the learner's drain
    (lambda s: [_block(), np.array([3, 0], np.int64), np.array([b"x" * 32])],
     "bad signature"),
    (lambda s: [_block(), np.array([3, 0], np.int64), np.array(["x" * 32])],
     "bad signature"),
    (lambda s: [_block(), np.array([3, 0], np.int64), np.zeros(31, np.uint8)],
     "bad signature"),
    (lambda s: [_block(), np.array([3, 0], np.int64), np.array([object()] * 32)],
     "bad signature"),
    (lambda s: _item(s, np.ones((4, ROW + 1), np.float32)), "wrong block shape"),
    (lambda s: _item(s, np.ones((MAX_BLOCK_ROWS + 1, ROW), np.float32)), "wrong block shape"),
    (_reshaped, "wrong block shape"),
    (lambda s: _item(s, _block() * np.float32(np.nan)), "not transitions"),
    (lambda s: _item(s, _block(step_types=5.0)), "not transitions"),
    (lambda s: _item(s, _block().astype(np.float64)), "malformed item"),
    (lambda s: _sampled(_item(s, _block())), "malformed item"),  # a time axis added
])
def test_forged_or_broken_blocks_are_rejected_and_counted_never_raised(make, why):
    signer = Signer(KEY)
    check = BlockCheck(signer, ROW)
    assert check.rows(make(signer)) is None
    assert len(check.rejected.counts) == 1 and next(iter(check.rejected.counts)).startswith(why)


def test_a_block_altered_after_signing_fails():
    signer = Signer(KEY)
    item = _item(signer, _block())
    item[0] = item[0].copy()
    item[0][0, 2] += 1.0  # another reward
    assert BlockCheck(signer, ROW).rows(item) is None


def test_the_signature_covers_the_structure_the_tag_and_the_table():
    signer = Signer(KEY)
    a, b = np.arange(6, dtype=np.float32), np.arange(4, dtype=np.int64)
    signature = signer.sign(WEIGHTS_TAG, C.WEIGHTS_TABLE, [b, a])
    assert signer.verify(signature, WEIGHTS_TAG, C.WEIGHTS_TABLE, [b, a])
    for parts in ([b, a.reshape(2, 3)], [b, a[:3], a[3:]], [b, a.view(np.int32)],
                  [b.view(np.float64), a], [a, b]):
        assert not signer.verify(signature, WEIGHTS_TAG, C.WEIGHTS_TABLE, parts)
    assert not signer.verify(signature, BLOCK_TAG, C.WEIGHTS_TABLE, [b, a])
    assert not signer.verify(signature, WEIGHTS_TAG, C.QUEUE_TABLE, [b, a])
    assert not signer.verify(signature.astype(np.int64), WEIGHTS_TAG, C.WEIGHTS_TABLE, [b, a])


def test_block_sequences_survive_a_learner_restart(tmp_path):
    """A captured block inserted again after the learner restarted is refused."""
    signer = Signer(KEY)
    state = tmp_path / "block_sequences.npz"
    check = BlockCheck(signer, ROW, state)
    captured = _item(signer, _block(), writer=9, seq=4)
    assert check.rows(captured) is not None
    check.save()
    again = BlockCheck(signer, ROW, state)  # the restarted learner
    assert again.rows(captured) is None
    assert again.rejected.counts == {"already taken": 1}
    assert again.rows(_item(signer, _block(), writer=9, seq=5)) is not None
    assert BlockCheck(signer, ROW, tmp_path / "other.npz").rows(captured) is not None
    state.write_bytes(b"")  # left empty by a power cut: the learner starts, never loops
    assert BlockCheck(signer, ROW, state).rows(captured) is not None


def _weights(signer, train_step, publication, arrays=None):
    arrays = arrays if arrays is not None else [np.ones((2, 3), np.float32),
                                                np.zeros(3, np.float32)]
    header = np.array([train_step, publication], np.int64)
    return _sampled([*arrays, header,
                     signer.sign(WEIGHTS_TAG, C.WEIGHTS_TABLE, [header, *arrays])])


def _Var(shape):
    return (shape, np.float32)


def test_the_weights_gate_accepts_the_learners_newest_weights(tmp_path):
    signer = Signer(KEY)
    gate = WeightsGate(signer, tmp_path / "w.json")
    gate.expect([_Var((2, 3)), _Var((3,))])
    arrays, train_step, publication = gate.check(_weights(signer, 100, 7))
    assert (train_step, publication) == (100, 7) and arrays[0].shape == (2, 3)
    gate.acted(7)
    assert gate.check(_weights(signer, 100, 7))[2] == 7  # the same item again
    with pytest.raises(ForgedItem, match="older than the weights acted with"):
        gate.check(_weights(signer, 200, 6))  # captured earlier, inserted again
    restarted = WeightsGate(signer, tmp_path / "w.json")  # a worker restart
    with pytest.raises(ForgedItem, match="older"):
        restarted.check(_weights(signer, 50, 3))
    assert restarted.refused_since is not None
    restarted.acted(8)
    assert restarted.refused_since is None


def _split(signer):
    a = np.ones((2, 3), np.float32)
    item = _weights(signer, 1, 1, [a, np.zeros(3, np.float32)])
    return [a[:1][None], a[1:][None], *item[1:]]


@pytest.mark.parametrize(("forge", "why"), [
    # the review's findings: the old signature covered bytes only
    (lambda s: [_weights(s, 1, 1)[0].reshape(1, 6), *_weights(s, 1, 1)[1:]], "wrong structure"),
    (_split, "wrong structure"),
    (lambda s: [_weights(s, 1, 1)[0].view(np.int32), *_weights(s, 1, 1)[1:]],
     "wrong structure"),
    (lambda s: _weights(Signer(b"y" * 32), 1, 1), "bad signature"),
    (lambda s: _weights(s, 1, 1)[:-1] + [np.array([b"z" * 32])], "bad signature"),
    (lambda s: [np.ones((1, 3), np.float32)], "malformed item"),
    (lambda s: _weights(s, 1, 1, [np.full((2, 3), np.nan, np.float32),
                                  np.zeros(3, np.float32)]), "non-finite values"),
])
def test_forged_weights_are_refused_and_counted_never_raised(forge, why):
    signer = Signer(KEY)
    gate = WeightsGate(signer)
    gate.expect([_Var((2, 3)), _Var((3,))])
    with pytest.raises(ForgedItem):
        gate.check(forge(signer))
    assert list(gate.rejected.counts) == [why]


def test_publication_numbers_grow_across_restarts_and_a_lost_file(tmp_path):
    path = tmp_path / "publications.json"
    first = PublicationCounter(path)
    numbers = [first.next() for _ in range(3)]
    assert numbers == [1, 2, 3]
    second = PublicationCounter(path)  # a learner restart (or a crash: nothing saved since)
    assert second.next() > numbers[-1]
    path.unlink()  # lost: the workers' newest acted-with number is the floor
    assert PublicationCounter(path, floor=5000).next() == 5001
    path.write_text('{"ceiling": "x"}')  # damaged
    assert PublicationCounter(path, floor=7).next() == 8


def test_a_row_check_counts_rows_without_their_signature():
    signer = Signer(KEY)
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    signed = np.stack([RowSigning(signer, 4).signed(r) for r in rows])
    np.testing.assert_array_equal(signed[:, :4], rows)
    assert signer.verify(signed[0, 4:].view(np.uint8), ROW_TAG, C.EXPERIENCE_TABLE, [rows[0]])
    signed[1, 4:] = 0.0  # unsigned
    signed[2, 0] = np.nan  # altered after signing
    check = RowCheck(signer, 4)
    np.testing.assert_array_equal(check.valid(signed), [True, False, False])
    assert check.rejected.counts == {"bad signature": 2}
    assert not check.valid(signed[:, :10]).any()  # another width: nothing is valid


def test_a_batch_keeps_its_signed_rows_and_replaces_forged_ones():
    import tensorflow as tf

    from tfagents_system.replay.datasets import _signed_rows

    signer = Signer(KEY)
    rows = np.arange(32, dtype=np.float32).reshape(8, 4)
    signed = np.stack([RowSigning(signer, 4).signed(r) for r in rows])
    forged = signed.copy()
    forged[[2, 5], 4:] = 0.0
    check = RowCheck(signer, 4)
    batches = tf.data.Dataset.from_tensor_slices(np.stack([signed, forged,
                                                           np.zeros_like(signed)]))
    got = [b.numpy() for b in _signed_rows(batches, check, 8)]
    assert len(got) == 2  # a batch without a signed row is skipped
    np.testing.assert_array_equal(got[0], rows)  # all signed: the batch as sampled
    keep = [0, 1, 3, 4, 6, 7]
    np.testing.assert_array_equal(got[1][keep], rows[keep])
    assert all(any((r == rows[keep]).all(axis=1)) for r in got[1][[2, 5]])
    assert check.rejected.counts == {"bad signature": 2 + 8}


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


def test_a_host_with_a_reachable_address_is_refused_unless_allowed():
    """Without a private network namespace (tests/unit/test_private_network.py)."""
    from tfagents_system.core.errors import CheckError
    from tfagents_system.launch.host import check_exposure

    check_exposure(False, "v.sh", [], "SAC_PRIVATE_NETWORK=0", "fix")  # loopback only: fine
    with pytest.raises(CheckError, match=r"v.sh: the replay server would be reachable from "
                       r"other hosts on this host's address\(es\) 8\.8\.4\.4, 10\.0\.0\.2"):
        check_exposure(False, "v.sh", ["8.8.4.4", "10.0.0.2"], "SAC_PRIVATE_NETWORK=0", "fix")
    check_exposure(True, "v.sh", ["8.8.4.4"], "SAC_PRIVATE_NETWORK=0", "fix")  # allowed


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
