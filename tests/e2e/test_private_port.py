"""The replay port of a real one-node run: private to the run where the host allows a
network namespace (nothing outside it, this test included, reaches the port on this
host's own address or on localhost, while the run trains and completes); reachable
once SAC_PRIVATE_NETWORK=0 and SAC_ALLOW_PUBLIC_REPLAY=1 say so (so the probes can
fail); and SAC_PRIVATE_NETWORK=0 alone refused, naming the address."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from pathlib import Path

import psutil
import pytest
from launch_helpers import (
    program_processes,
    run_script,
    start_script,
    wait_for,
    write_params,
    write_variables,
)

from tfagents_system import supervisord
from tfagents_system.launch import host

pytestmark = pytest.mark.e2e


def host_address() -> str:
    """An address of this host's own interfaces other than loopback and link-local
    (which needs an interface named to connect): IPv4 first."""
    found = [address.address for addresses in psutil.net_if_addrs().values()
             for address in addresses if address.family in (socket.AF_INET, socket.AF_INET6)]
    usable = [ip for ip in map(ipaddress.ip_address, (a.split("%")[0] for a in found))
              if not ip.is_loopback and not ip.is_link_local]
    if not usable:
        pytest.skip("this host has no address but loopback (and link-local): nothing for "
                    "another host to reach the replay port on")
    return str(sorted(usable, key=lambda ip: ip.version)[0])


def grpc_address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def answers(ip: str, port: int) -> bool:
    """Whether a TCP connection to ip:port is accepted."""
    try:
        socket.create_connection((ip, port), timeout=3).close()
        return True
    except OSError:
        return False


def reverb_answers(ip: str, port: int) -> bool:
    """Whether a Reverb client there gets the server's info."""
    import reverb

    try:
        reverb.Client(grpc_address(ip, port)).server_info(timeout=3)
        return True
    except Exception:  # a deadline or an unavailable server: nothing answered
        return False


def listening_ports(pid: int) -> set[int]:
    """The TCP ports listening in the network namespace of process `pid`."""
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":  # TCP_LISTEN
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def paced_run(workdir: Path, **variables) -> tuple[Path, Path]:
    """(its variables file, its experiment): a tiny run whose learner is paced by
    collection (one gradient step per 20 env steps), so it trains for seconds."""
    write_params(workdir / "params.py", num_iter=10, steps=100, ckpt=100,
                 extra="samples_per_insert = 1.6")
    return write_variables(workdir / "vars.sh", **variables), workdir / "logs" / "tiny"


def launched(exp: Path) -> dict:
    return json.loads((exp / "launches.jsonl").read_text().splitlines()[-1])


def probe_live_run(workdir: Path, exp: Path, variables: Path, probe) -> str:
    """Start the run, `probe(port, replay server process)` while it trains, wait for it
    to complete; its console output."""
    import reverb  # noqa: F401 - imported now, not while the run goes on

    proc = start_script(variables, workdir / "run.log")
    try:
        assert wait_for(lambda: (exp / "status" / "learner.json").is_file(), 240), \
            (workdir / "run.log").read_text()
        port = int(launched(exp)["address"].rsplit(":", 1)[1])
        probe(port, program_processes(exp)["replay_server"])
        assert not (exp / "TRAINING_COMPLETE.json").exists()  # the probes met a live run
        assert proc.wait(timeout=400) == 0, (workdir / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    return (workdir / "run.log").read_text()


def test_the_replay_port_is_private_to_the_run(workdir):
    error = host.private_network_error()
    if error is not None:
        pytest.skip(f"this host refuses a private network namespace: {error}")
    ip = host_address()
    variables, exp = paced_run(workdir)

    def probe(port: int, server: psutil.Process) -> None:
        # The server listens on the port, in a network namespace other than ours...
        assert port in listening_ports(server.pid)
        assert os.readlink(f"/proc/{server.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        # ...where nothing outside the run reaches it.
        for address in (ip, "127.0.0.1", "::1"):
            assert not answers(address, port), address
        assert not reverb_answers(ip, port) and not reverb_answers("localhost", port)
        # supervisord's unix socket, a path, still reaches it from outside.
        assert supervisord.rpc(exp).supervisor.getState()["statename"] == "RUNNING"

    output = probe_live_run(workdir, exp, variables, probe)
    assert "replay port: private to this run (network namespace)" in output.splitlines()
    assert launched(exp)["replay_port_private"] is True
    assert "training complete" in output
    # The programs wrote their files as this user, pinned to their CPUs as ever.
    for log in (exp / "process_logs").iterdir():
        assert log.stat().st_uid == os.geteuid(), log
    assert " pinned to CPUs " in (exp / "process_logs" / "learner.log").read_text()


def test_a_reachable_port_only_where_the_user_allows_it(workdir):
    """SAC_PRIVATE_NETWORK=0: refused on this host's address; with SAC_ALLOW_PUBLIC_REPLAY=1
    the run starts and the same probes reach its port."""
    ip = host_address()
    variables, exp = paced_run(workdir, SAC_PRIVATE_NETWORK=0)
    refused = run_script(variables, timeout=300)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and ip in errors[0] and "SAC_PRIVATE_NETWORK=0" in errors[0], \
        refused.stderr
    assert not exp.exists()

    variables, exp = paced_run(workdir, SAC_PRIVATE_NETWORK=0, SAC_ALLOW_PUBLIC_REPLAY=1)

    def probe(port: int, server: psutil.Process) -> None:
        assert os.readlink(f"/proc/{server.pid}/ns/net") == os.readlink("/proc/self/ns/net")
        assert answers(ip, port) and answers("127.0.0.1", port)
        assert reverb_answers(ip, port)

    output = probe_live_run(workdir, exp, variables, probe)
    port = launched(exp)["port"]
    lines = [line for line in output.splitlines() if line.startswith(f"replay port {port}: ")]
    assert len(lines) == 1 and ip in lines[0], output
    assert lines[0].endswith("(SAC_PRIVATE_NETWORK=0, SAC_ALLOW_PUBLIC_REPLAY=1); experience "
                             "and weights are signed (README, Security)")
    assert launched(exp)["replay_port_private"] is False
