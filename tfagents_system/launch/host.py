"""The machine's checks at launch: whether the replay server would be reachable from
the internet, and whether the experiment's disk has room. Each problem is one
`CheckError` naming the fix."""

from __future__ import annotations

from pathlib import Path

from tfagents_system.core.errors import CheckError
from tfagents_system.core.files import free_bytes, mount_point


def public_addresses() -> list[str]:
    """This host's globally routable IP addresses (Reverb serves on all interfaces)."""
    import ipaddress
    import socket

    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                ip = ipaddress.ip_address(address.address.split("%")[0])
                if ip.is_global:
                    found.append(str(ip))
    return found


def check_exposure(allowed: bool, source: str, addresses: list[str] | None = None) -> None:
    """A one-node run's replay server needs no network, yet Reverb listens on every
    interface: refuse a host with a public address unless the user allowed it."""
    addresses = public_addresses() if addresses is None else addresses
    if addresses and not allowed:
        raise CheckError(
            f"training variables file {source}: this host has public address(es) "
            f"{', '.join(addresses)}, on which the replay server would be reachable from the "
            "internet (Reverb listens on every interface; experience and weights are signed, "
            "but anyone can read or drain them); block its port range with a firewall and set "
            "SAC_ALLOW_PUBLIC_REPLAY=1, or run where no interface has a public address "
            "(README, Security)")


# A launch needs room for checkpoints, exported policies and the first log segments.
LAUNCH_FREE_BYTES = 16 << 20


def check_free_space(path: Path, free: int | None = None) -> None:
    """Refuse to launch onto a (nearly) full disk: every write would fail mid-run."""
    free = free_bytes(path) if free is None else free
    if free < LAUNCH_FREE_BYTES:
        raise CheckError(f"only {free / 2**20:.1f} MiB free on {mount_point(path)}, "
                         f"which holds experiment {path}: free space there (it needs at "
                         f"least {LAUNCH_FREE_BYTES >> 20} MiB), then rerun")
