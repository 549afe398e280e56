"""Who can reach the replay port (tfagents_system.launch.host): which interface addresses
let other hosts in, what a launch refuses without a private network namespace, the line
it prints, SAC_PRIVATE_NETWORK, and the namespace itself, made as supervisord's start
makes it."""

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from tfagents_system.core.errors import CheckError
from tfagents_system.launch import host
from tfagents_system.launch.processes import supervisor_start
from tfagents_system.settings import SettingsError, load_training_variables

REPO = Path(__file__).resolve().parents[2]
LAN = ["10.1.2.3", "192.168.1.20", "172.16.0.1", "100.64.0.1", "192.0.2.2", "169.254.1.1",
       "fd00::2", "fe80::1"]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.5.5.5", "::1"])
def test_loopback_is_not_reachable_from_other_hosts(address):
    assert not host.reachable(address)


@pytest.mark.parametrize("address", LAN + ["8.8.8.8", "2a00:1450:4001::1", "fe80::1%eth0",
                                           "198.51.100.7", "203.0.113.9"])
def test_every_other_address_is(address):
    """Private, shared (CGNAT), documentation, unique-local and link-local alike."""
    assert host.reachable(address)


def _interfaces(monkeypatch):
    def addr(ip, family=socket.AF_INET):
        return SimpleNamespace(family=family, address=ip)

    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {
        "lo": [addr("127.0.0.1"), addr("::1", socket.AF_INET6)],
        "eth0": [addr("02:00:00:00:00:01", psutil.AF_LINK), addr("10.1.2.3"),
                 addr("fe80::1%eth0", socket.AF_INET6)],
        "eth1": [addr("203.0.114.7"), addr("2a00:1450:4001::1", socket.AF_INET6)]})


def test_reachable_and_public_addresses_of_the_interfaces(monkeypatch):
    _interfaces(monkeypatch)
    assert host.reachable_addresses() == ["10.1.2.3", "fe80::1", "203.0.114.7",
                                          "2a00:1450:4001::1"]
    assert host.public_addresses() == ["203.0.114.7", "2a00:1450:4001::1"]


def test_a_reachable_port_is_refused_unless_allowed():
    host.check_exposure(False, "v.sh", [], "why", "fix")  # loopback only: fine
    with pytest.raises(CheckError, match=r"^training variables file v.sh: the replay server "
                       r"would be reachable from other hosts on this host's address\(es\) "
                       r"10\.1\.2\.3, fd00::2 \(why; .*\); fix, or close the port range with "
                       r"a firewall and set SAC_ALLOW_PUBLIC_REPLAY=1 \(README, Security\)$"):
        host.check_exposure(False, "v.sh", ["10.1.2.3", "fd00::2"], "why", "fix")
    host.check_exposure(True, "v.sh", ["10.1.2.3"], "why", "fix")  # SAC_ALLOW_PUBLIC_REPLAY=1


@pytest.fixture
def variables(tmp_path):
    (tmp_path / "vars.sh").write_text("SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME=e\n")
    return load_training_variables(tmp_path / "vars.sh")


@pytest.fixture
def lan_host(monkeypatch):
    """A host on a private LAN; `probe` holds what its namespace probe answers."""
    probe = {"error": None, "calls": 0}

    def error():
        probe["calls"] += 1
        return probe["error"]

    monkeypatch.setattr(host, "private_network_error", error)
    monkeypatch.setattr(host, "reachable_addresses", lambda: ["192.168.1.20", "fd00::2"])
    monkeypatch.setattr(host, "public_addresses", lambda: [])
    return probe


def test_a_supervised_run_is_private_where_the_host_allows_it(variables, lan_host):
    exposure = host.replay_exposure(variables, "localhost", supervised=True)
    assert exposure.private and lan_host["calls"] == 1
    assert exposure.describe(4242) == "replay port: private to this run (network namespace)"


def test_without_a_namespace_any_address_but_loopback_is_refused(variables, lan_host):
    lan_host["error"] = "unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: Operation not permitted"
    with pytest.raises(CheckError, match=r"address\(es\) 192\.168\.1\.20, fd00::2 \(no private "
                       r"network namespace: unshare.*Operation not permitted; .*allow "
                       r"unprivileged user namespaces .*SAC_ALLOW_PUBLIC_REPLAY=1"):
        host.replay_exposure(variables, "localhost", supervised=True)
    allowed = replace(variables, allow_public_replay=True)
    exposure = host.replay_exposure(allowed, "localhost", supervised=True)
    assert not exposure.private
    assert exposure.describe(4242) == (
        "replay port 4242: reachable from this host's other users and on 192.168.1.20, "
        "fd00::2 (no private network namespace: unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: "
        "Operation not permitted, SAC_ALLOW_PUBLIC_REPLAY=1); experience and weights are "
        "signed (README, Security)")


def test_sac_private_network_0_skips_the_namespace(variables, lan_host):
    off = replace(variables, private_network=False)
    with pytest.raises(CheckError, match=r"192\.168\.1\.20, fd00::2 \(SAC_PRIVATE_NETWORK=0; "
                       r".*\); remove SAC_PRIVATE_NETWORK=0, or close"):
        host.replay_exposure(off, "localhost", supervised=True)
    exposure = host.replay_exposure(replace(off, allow_public_replay=True), "localhost", True)
    assert not exposure.private and lan_host["calls"] == 0
    assert "(SAC_PRIVATE_NETWORK=0, SAC_ALLOW_PUBLIC_REPLAY=1)" in exposure.describe(1)


def test_a_host_with_only_loopback_needs_no_permission(variables, lan_host, monkeypatch):
    monkeypatch.setattr(host, "reachable_addresses", lambda: [])
    exposure = host.replay_exposure(replace(variables, private_network=False), "localhost",
                                    True)
    assert exposure.describe(4242) == (
        "replay port 4242: reachable from this host's other users (SAC_PRIVATE_NETWORK=0); "
        "experience and weights are signed (README, Security)")


def test_serial_mode_is_refused_only_on_a_public_address(variables, lan_host, monkeypatch):
    """Its replay server runs in the launcher's process, which cannot have a namespace."""
    assert not host.replay_exposure(variables, "localhost", supervised=False).private
    monkeypatch.setattr(host, "public_addresses", lambda: ["8.8.4.4"])
    with pytest.raises(CheckError, match=r"address\(es\) 8\.8\.4\.4 \(serial mode"):
        host.replay_exposure(variables, "localhost", supervised=False)
    assert lan_host["calls"] == 0


def test_a_multi_node_job_serves_the_cluster_network(variables, lan_host):
    exposure = host.replay_exposure(variables, "n1", supervised=True)
    assert not exposure.private and lan_host["calls"] == 0
    assert exposure.describe(4242) == (
        "replay port 4242 on n1: reachable on the cluster network; experience and weights "
        "are signed (README, Security)")


@pytest.mark.parametrize(("raw", "private"), [(None, True), ("auto", True), ("", True),
                                              ("0", False)])
def test_sac_private_network_values(tmp_path, raw, private):
    text = "SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME=e\n"
    if raw is not None:
        text += f"SAC_PRIVATE_NETWORK={raw}\n"
    (tmp_path / "vars.sh").write_text(text)
    assert load_training_variables(tmp_path / "vars.sh").private_network is private


@pytest.mark.parametrize("raw", ["1", "yes", "off"])
def test_sac_private_network_refuses_other_values(tmp_path, raw):
    (tmp_path / "vars.sh").write_text(
        f"SAC_PARAMS=p.py\nSAC_CONFIG=c.json\nSAC_EXP_NAME=e\nSAC_PRIVATE_NETWORK={raw}\n")
    with pytest.raises(SettingsError, match=rf"SAC_PRIVATE_NETWORK='{raw}' must be auto or 0"):
        load_training_variables(tmp_path / "vars.sh")


# What a program started the way supervisord is started sees of its network.
INSIDE = """
import ctypes, json, os, socket, sys
server = socket.socket(socket.AF_INET6)
server.bind(("::", 0))  # as Reverb binds: every interface
server.listen()
socket.create_connection(("127.0.0.1", server.getsockname()[1]), timeout=5).close()
pdeathsig = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(pdeathsig))  # PR_GET_PDEATHSIG
open(sys.argv[1], "w").close()
print(json.dumps({"interfaces": [name for _, name in socket.if_nameindex()],
                  "uid": os.getuid(), "pdeathsig": pdeathsig.value,
                  "cpus": sorted(os.sched_getaffinity(0))}))
"""


def _namespace_or_skip() -> None:
    error = host.private_network_error()
    if error is not None:
        pytest.skip(f"this host refuses a private network namespace: {error}")


def test_the_namespace_supervisord_starts_in(tmp_path):
    """Only loopback, up; the parent-death signal kept; files owned by the user;
    taskset pins as before."""
    _namespace_or_skip()
    made = tmp_path / "made"
    cpu = min(os.sched_getaffinity(0))
    result = subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-c", INSIDE,
                             str(made)], preexec_fn=supervisor_start(True), capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["interfaces"] == ["lo"]
    assert seen["uid"] == os.getuid() and seen["pdeathsig"] == 15 and seen["cpus"] == [cpu]
    assert os.stat(made).st_uid == os.geteuid()


# An interpreter every user may run (this one may live in a directory only its owner enters).
SYSTEM_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None or not SYSTEM_PYTHON,
                    reason="needs root, setpriv and a system python3 to run as another user")
def test_an_unprivileged_user_gets_a_user_and_network_namespace():
    """What `unshare --user --net` makes: the user's files stay theirs outside."""
    _namespace_or_skip()
    shared = Path(tempfile.mkdtemp(prefix="private-network-"))
    try:
        shared.chmod(0o777)
        made = shared / "made"
        script = ("import subprocess, sys; from tfagents_system.launch.host import "
                  "private_network_entry; sys.exit(subprocess.run([sys.executable, '-c', "
                  f"{INSIDE!r}, {str(made)!r}], preexec_fn=private_network_entry()).returncode)")
        result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 SYSTEM_PYTHON, "-c", script], capture_output=True, text=True,
                                cwd=REPO, check=False, timeout=120,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
        assert seen["interfaces"] == ["lo"] and seen["uid"] == 65534
        assert os.stat(made).st_uid == 65534 and stat.S_ISREG(os.lstat(made).st_mode)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("setpriv") is None,
                    reason="needs util-linux unshare and setpriv")
def test_the_probe_says_why_a_host_refuses_the_namespace():
    """In a user namespace that may make none (user.max_user_namespaces=0) and without
    capabilities, the probe reports the refusal instead of a launch failing later."""
    _namespace_or_skip()
    probe = ("from tfagents_system.launch.host import private_network_error; "
             "print(private_network_error())")
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c",
         'echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --inh-caps=-all '
         '--bounding-set=-all "$0" -c "$1"', sys.executable, probe],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("unshare(CLONE_NEWUSER | CLONE_NEWNET) failed: "
                                     "No space left on device")
