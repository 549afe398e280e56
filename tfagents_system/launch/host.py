"""The machine's checks at launch: who could reach the replay server's port, and
whether the experiment's disk has room. Each problem is one `CheckError` naming the fix.

Reverb 0.14 listens on every interface whatever address its clients use. A one-node
run needs the port only inside itself: a supervised launch runs its programs in a
private network namespace (`private_network_entry`) where the host allows it, so the
port answers nowhere else; without one the host must have no address but loopback,
or the user must allow a reachable port (`replay_exposure`).
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from tfagents_system import settings
from tfagents_system.core.errors import CheckError
from tfagents_system.core.files import free_bytes, mount_point

SECURITY = "(README, Security)"


def reachable(address: str) -> bool:
    """Whether an interface address lets other hosts reach a port served on every
    interface: any but loopback (private, shared, link-local and public alike)."""
    return not ipaddress.ip_address(address.split("%")[0]).is_loopback


def interface_addresses() -> list[str]:
    """Every IPv4 and IPv6 address of this host's interfaces (scope ids dropped)."""
    import psutil

    return [address.address.split("%")[0]
            for addresses in psutil.net_if_addrs().values() for address in addresses
            if address.family in (socket.AF_INET, socket.AF_INET6)]


def reachable_addresses() -> list[str]:
    """This host's addresses on which another host can reach its ports."""
    return [address for address in interface_addresses() if reachable(address)]


def public_addresses() -> list[str]:
    """This host's globally routable IP addresses."""
    return [address for address in interface_addresses()
            if ipaddress.ip_address(address).is_global]


def check_exposure(allowed: bool, source: str, addresses: list[str], why: str,
                   fix: str) -> None:
    """Refuse a replay port reachable on `addresses` unless the user allowed it
    (SAC_ALLOW_PUBLIC_REPLAY=1); `why` it is not private, and the `fix` that makes it so."""
    if addresses and not allowed:
        raise CheckError(
            f"training variables file {source}: the replay server would be reachable from "
            f"other hosts on this host's address(es) {', '.join(addresses)} ({why}; Reverb "
            "listens on every interface: experience and weights are signed, but anyone "
            f"reaching the port can read or drain them); {fix}, or close the port range "
            f"with a firewall and set SAC_ALLOW_PUBLIC_REPLAY=1 {SECURITY}")


# linux/sched.h, linux/sockios.h, linux/if.h
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = "16sH22x"  # struct ifreq: the interface's name, then its flags (40 bytes)


def _write_proc(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, f"writing {path} failed: {exc.strerror}") from None


def _map_ids(uid: int, gid: int) -> None:
    """In a new user namespace: the user's ids (outside) map to themselves."""
    if os.path.exists("/proc/self/setgroups"):  # unprivileged gid maps need it denied
        _write_proc("/proc/self/setgroups", "deny")
    _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
    _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")


def _bring_up_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, struct.pack(IFREQ, b"lo", 0))
            flags = struct.unpack(IFREQ, request)[1]
            fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))
    except OSError as exc:
        raise OSError(exc.errno, f"bringing up loopback failed: {exc.strerror}") from None


def private_network_entry():
    """A function that moves the process calling it into a new network namespace whose
    only interface, loopback, is up: the process's and its children's ports answer
    nowhere else. Made here, called in a child between fork and exec (a `preexec_fn`),
    where only one thread runs, as a new user namespace requires.

    Who may make one (CAP_SYS_ADMIN, e.g. root) gets a network namespace alone;
    anyone else a user namespace too (what `unshare --user --net` makes), in which
    the user's ids map to themselves: files keep their real owner, and the programs
    run without privileges once they exec. Set the parent-death signal after it (a
    change of credentials may clear that signal). OSError if the host refuses."""
    unshare = ctypes.CDLL(None, use_errno=True).unshare  # looked up before the fork

    def enter() -> None:
        uid, gid = os.geteuid(), os.getegid()
        if unshare(CLONE_NEWNET) != 0:  # not allowed alone: with a user namespace
            if unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: "
                                     f"{os.strerror(error)}")
            _map_ids(uid, gid)
        _bring_up_loopback()

    return enter


def _probe(enter, pipe: int) -> None:
    """In the probe's child: `enter`, and write to `pipe` why it failed, if it did."""
    try:
        enter()
    except BaseException as exc:  # reported to the parent
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        os.write(pipe, (text or type(exc).__name__).encode()[:4000])


def private_network_error() -> str | None:
    """None if this host lets a launch run its programs in a private network namespace,
    else why not: a forked child tries it, as supervisord's start will."""
    enter = private_network_entry()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child ends here, running none of the parent's code or cleanup
        try:
            os.close(read)
            _probe(enter, write)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if not message and os.waitstatus_to_exitcode(status) != 0:
        message = f"the test process ended with status {status}"
    return message or None


@dataclass(frozen=True)
class Exposure:
    """Who can reach a launch's replay port: only the run's own programs (`private`: a
    network namespace), or also this host's users and whoever reaches `addresses`, or
    (a multi-node job, served on `head`) the cluster network."""

    private: bool
    addresses: tuple[str, ...] = ()
    head: str = "localhost"
    why_shared: str = ""  # why a one-node run's port is not private

    def describe(self, port: int) -> str:
        """The launch's line saying so."""
        signed = f"experience and weights are signed {SECURITY}"
        if self.private:
            return "replay port: private to this run (network namespace)"
        if self.head != "localhost":
            return f"replay port {port} on {self.head}: reachable on the cluster network; {signed}"
        where, reasons = "this host's other users", [self.why_shared]
        if self.addresses:
            where += f" and on {', '.join(self.addresses)}"
            reasons.append("SAC_ALLOW_PUBLIC_REPLAY=1")
        return f"replay port {port}: reachable from {where} ({', '.join(reasons)}); {signed}"


# Where the host refuses a private network namespace, what would let it make one.
NAMESPACE_FIX = ("allow unprivileged user namespaces (sysctl user.max_user_namespaces; "
                 "kernel.unprivileged_userns_clone or kernel.apparmor_restrict_unprivileged_"
                 "userns where the kernel has them)")


def _why_shared(variables: settings.TrainingVariables, supervised: bool
                ) -> tuple[str, str] | None:
    """None if a one-node run's programs get a private network namespace, else (why
    not, the fix that would give them one)."""
    if not supervised:
        return ("serial mode: the replay server runs in the launcher, on the host's network",
                "launch with ./run_script.sh (a private network namespace)")
    if not variables.private_network:
        return "SAC_PRIVATE_NETWORK=0", "remove SAC_PRIVATE_NETWORK=0"
    error = private_network_error()
    if error is None:
        return None
    return f"no private network namespace: {error}", NAMESPACE_FIX


def replay_exposure(variables: settings.TrainingVariables, head: str,
                    supervised: bool) -> Exposure:
    """Who will reach the replay port; CheckError if other hosts could and the user did
    not allow it. A supervised one-node launch runs its programs in a private network
    namespace where the host allows it (SAC_PRIVATE_NETWORK=auto); without one, any
    address but loopback is refused. Serial mode (the server in the launcher's own
    process) is refused only on a host with a public address. A multi-node job's port
    must be reachable by its other nodes (`head` serves it)."""
    if head != "localhost":
        return Exposure(False, head=head)
    shared = _why_shared(variables, supervised)
    if shared is None:
        return Exposure(True)
    why, fix = shared
    check_exposure(variables.allow_public_replay, variables.source,
                   reachable_addresses() if supervised else public_addresses(), why, fix)
    return Exposure(False, tuple(reachable_addresses()), why_shared=why)


# A launch needs room for checkpoints, exported policies and the first log segments.
LAUNCH_FREE_BYTES = 16 << 20


def check_free_space(path: Path, free: int | None = None) -> None:
    """Refuse to launch onto a (nearly) full disk: every write would fail mid-run."""
    free = free_bytes(path) if free is None else free
    if free < LAUNCH_FREE_BYTES:
        raise CheckError(f"only {free / 2**20:.1f} MiB free on {mount_point(path)}, "
                         f"which holds experiment {path}: free space there (it needs at "
                         f"least {LAUNCH_FREE_BYTES >> 20} MiB), then rerun")
