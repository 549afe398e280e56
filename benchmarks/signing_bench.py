"""What signing and checking cost per item: an experience block (128 HalfCheetah
transitions), a weights publication (the 256x256 actor), and one packed row of the
Reverb-sampled layout; the canonical encoding (`replay.auth`, type tag, table, each
part's dtype and shape, then the bytes) against the bytes-only HMAC that came before
it, measured here side by side (microseconds per item, median of repeats).

Prints `RESULT {...}` (benchmarks.common).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import statistics
import time

import numpy as np

from benchmarks import common

OBSERVATION, ACTION, HIDDEN = 26, 6, 256  # HalfCheetahBulletEnv-v0, the bench networks


def bytes_only_sign(key: bytes, parts) -> np.ndarray:
    """The earlier scheme, the baseline: an HMAC of the parts' bytes only."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(np.ascontiguousarray(part).data)
    return np.frombuffer(mac.digest(), np.uint8)


def per_item_us(call, items: int, repeats: int) -> float:
    """The median over repeats of microseconds per call."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(items):
            call()
        times.append((time.perf_counter() - started) / items * 1e6)
    return statistics.median(times)


def actor_arrays(rng) -> list[np.ndarray]:
    """The policy variables a publication carries (2x256 hidden, mean and std heads)."""
    shapes = [(OBSERVATION, HIDDEN), (HIDDEN,), (HIDDEN, HIDDEN), (HIDDEN,),
              (HIDDEN, 2 * ACTION), (2 * ACTION,)]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def measure(items: int, repeats: int) -> dict:
    """Sign and check costs of each kind of item, canonical and bytes-only."""
    from tfagents_system.core import constants as C
    from tfagents_system.replay.auth import (
        BLOCK_TAG,
        WEIGHTS_TAG,
        BlockCheck,
        RowCheck,
        RowSigning,
        WeightsGate,
    )
    from tfagents_system.replay.packing import BLOCK_ROWS

    signer, key, rng = common.bench_signer(), common.BENCH_KEY, np.random.default_rng(0)
    row_size = 4 + 2 * OBSERVATION + ACTION
    block = rng.standard_normal((BLOCK_ROWS, row_size)).astype(np.float32)
    block[:, :2] = 1.0
    meta = np.array([1, 0], np.int64)
    arrays = actor_arrays(rng)
    header = np.array([1000, 1], np.int64)
    row = block[0]
    block_item = [block, meta, signer.sign(BLOCK_TAG, C.QUEUE_TABLE, [block, meta])]
    weights_item = [x[None] for x in (*arrays, header,
                                      signer.sign(WEIGHTS_TAG, C.WEIGHTS_TABLE,
                                                  [header, *arrays]))]
    gate = WeightsGate(signer)
    row_signing = RowSigning(signer, row_size)
    rows = np.repeat(row_signing.signed(row)[None], 256, axis=0)
    row_check = RowCheck(signer, row_size)

    def check_block():
        if BlockCheck(signer, row_size).rows(block_item) is None:
            raise RuntimeError("the benchmark's block was refused")

    us = {
        "block_sign": per_item_us(lambda: signer.sign(BLOCK_TAG, C.QUEUE_TABLE,
                                                      [block, meta]), items, repeats),
        "block_sign_bytes_only": per_item_us(lambda: bytes_only_sign(key, [block, meta]),
                                             items, repeats),
        "block_check": per_item_us(check_block, items, repeats),
        "weights_sign": per_item_us(lambda: signer.sign(WEIGHTS_TAG, C.WEIGHTS_TABLE,
                                                        [header, *arrays]), items, repeats),
        "weights_sign_bytes_only": per_item_us(lambda: bytes_only_sign(key, [header, *arrays]),
                                               items, repeats),
        "weights_check": per_item_us(lambda: gate.check(weights_item), items, repeats),
        "row_sign": per_item_us(lambda: row_signing.signed(row), items * 10, repeats),
        "row_sign_bytes_only": per_item_us(lambda: bytes_only_sign(key, [row]), items * 10,
                                           repeats),
        "row_check_batch_256": per_item_us(lambda: row_check.valid(rows),
                                           max(1, items // 10), repeats),
    }
    return {"us": {k: round(v, 2) for k, v in us.items()}, "row_size": row_size,
            "block_rows": BLOCK_ROWS, "weights_bytes": sum(a.nbytes for a in arrays)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    common.emit(measure(args.items, args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
