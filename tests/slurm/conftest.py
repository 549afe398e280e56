"""Fixtures that start a real local SLURM cluster (see cluster.py) for one test each.

Function scope: only one cluster may run at a time, and start + stop take well under a second,
so each test gets a fresh cluster and fixtures of different tests never overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm.cluster import LocalCluster, ensure_installed, unavailable_reason


@pytest.fixture
def slurm_available() -> None:
    """Skips (only) when unavailable_reason() says so; installs the packages if missing."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    ensure_installed()


def _cluster(workdir: Path, two_nodes: bool) -> Iterator[LocalCluster]:
    cluster = LocalCluster(workdir, two_nodes=two_nodes)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def single_node_cluster(slurm_available: None, tmp_path: Path) -> Iterator[LocalCluster]:
    """This host as the only node, all its CPUs, jobs pinned to their CPUs (task/affinity)."""
    yield from _cluster(tmp_path / "cluster", two_nodes=False)


@pytest.fixture
def two_node_cluster(slurm_available: None, tmp_path: Path) -> Iterator[LocalCluster]:
    """Nodes n1 and n2 (127.0.1.1/2, one CPU each) on this host."""
    yield from _cluster(tmp_path / "cluster", two_nodes=True)
