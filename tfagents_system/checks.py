"""Launch-time checks of what the user brings: the environment as `env_ctor` builds
it, the replay capacity it implies, a sweep's config keys, and a bound on how long
the user's code may take at launch. Each problem is one `CheckError` naming the file
or field and the fix, raised before any program starts or any file is written."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

from tfagents_system import constants as C


class CheckError(ValueError):
    """What the user brings would fail later; the message says the fix."""


class LaunchTimeout:
    """Bounds the launch's own run of the user's code (the params import, `env_ctor`,
    the first env steps): past `seconds`, one `error:` line says what hung and the
    launcher exits 2. Nothing has been written by then (the experiment directory is
    created after the checks)."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.what = "the launch checks"
        self._timer: threading.Timer | None = None

    def stage(self, what: str) -> None:
        """Name what runs now, for the message if it hangs."""
        self.what = what

    def _expire(self) -> None:
        print(f"error: {self.what} did not finish within {self.seconds:.0f} s "
              "(SAC_LAUNCH_TIMEOUT): it hangs, or needs more time; fix it or raise "
              "SAC_LAUNCH_TIMEOUT", file=sys.stderr, flush=True)
        os._exit(C.EXIT_BAD_INPUT)

    def __enter__(self) -> LaunchTimeout:
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()


def _leaves(nest) -> list:
    import tensorflow as tf

    return tf.nest.flatten(nest)


def check_action_bounds(spec, where: str) -> None:
    """SAC squashes actions into the spec's bounds: they must be float, finite and
    ordered."""
    for leaf in _leaves(spec):
        if not np.issubdtype(leaf.dtype, np.floating):
            raise CheckError(f"{where}: the env's action spec is {leaf.dtype}; SAC needs "
                             "continuous (float) actions")
        low = np.broadcast_to(np.asarray(getattr(leaf, "minimum", -np.inf)), leaf.shape)
        high = np.broadcast_to(np.asarray(getattr(leaf, "maximum", np.inf)), leaf.shape)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise CheckError(f"{where}: the env's action spec {leaf} has unbounded actions; "
                             "SAC needs finite bounds (a BoundedArraySpec with finite "
                             "minimum and maximum)")
        if np.any(low >= high):
            raise CheckError(f"{where}: the env's action spec {leaf} has a minimum not "
                             "below its maximum; fix the bounds")


def _check_time_step(env, time_step, what: str, where: str) -> None:
    from tf_agents.specs import array_spec

    for name in ("observation", "reward"):
        values = [np.asarray(x) for x in _leaves(getattr(time_step, name))]
        if any(np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v))
               for v in values):
            raise CheckError(f"{where}: the env's {what} returned a non-finite {name} (NaN "
                             "or infinity); the learner would train on it")
    spec = env.time_step_spec()
    got = [(np.shape(x), np.asarray(x).dtype.name) for x in _leaves(time_step)]
    want = [(tuple(s.shape), np.dtype(s.dtype).name) for s in _leaves(spec)]
    if got != want:
        raise CheckError(f"{where}: the env's {what} returned arrays of shapes and dtypes "
                         f"{got}, its time_step_spec says {want}; make them agree")
    if not array_spec.check_arrays_nest(time_step, spec):
        raise CheckError(f"{where}: the env's {what} returned values outside the bounds of "
                         f"its time_step_spec {spec}; widen the bounds or fix the env")


def check_env_steps(env, seed: int, where: str) -> None:
    """The env's first reset() and a step with a uniform random action agree with its
    specs and give finite observations and rewards."""
    from tf_agents.specs import array_spec

    check_action_bounds(env.action_spec(), where)
    _check_time_step(env, env.reset(), "reset()", where)
    action = array_spec.sample_spec_nest(env.action_spec(), np.random.RandomState(seed))
    _check_time_step(env, env.step(action), "step()", where)


def check_same_specs(collect_env, eval_env, where: str) -> None:
    """The eval env must take and give what the collect env does (one policy serves both)."""
    for what in ("time_step_spec", "action_spec"):
        collect, evaluate = getattr(collect_env, what)(), getattr(eval_env, what)()
        if collect != evaluate:
            raise CheckError(f"{where}: the collect and eval envs differ in {what} "
                             f"({collect} against {evaluate}); eval_env_args_kwargs() must "
                             "build the same kind of env")


def check_capacity(params, max_steps: int | None, where: str) -> int:
    """The replay capacity the learner will use; CheckError if it cannot be known or
    holds less than min_replay_size (the learner would wait forever)."""
    from tfagents_system.replay.tables import replay_capacity

    if params.n_episodes_in_buffer is not None and not max_steps:
        raise CheckError(f"{where}: n_episodes_in_buffer={params.n_episodes_in_buffer} needs the "
                         "env's step limit, and this env has none the framework can see (no "
                         "TF-Agents TimeLimit wrapper); set replay_capacity instead, or give "
                         "the env a step limit (max_episode_steps in the config)")
    capacity = replay_capacity(params, max_steps)
    if capacity < params.min_replay_size:
        source = (f"n_episodes_in_buffer={params.n_episodes_in_buffer} x {max_steps} steps"
                  if params.n_episodes_in_buffer is not None
                  else f"replay_capacity={params.replay_capacity}")
        raise CheckError(f"{where}: the replay buffer would hold {capacity} transitions "
                         f"({source}), fewer than min_replay_size={params.min_replay_size}: "
                         "the learner would wait forever; raise the capacity or lower "
                         "min_replay_size")
    return capacity


def check_sweep_config_keys(config: dict, dotted_keys, sweep_file: Path | None,
                            config_file: Path) -> None:
    """A sweep's `config.<key>` must name a key of the config, or one the framework reads
    (C.CONFIG_KEYS, anything below `gym_kwargs`): a typo would train the base config."""
    for dotted in dotted_keys:
        parts = dotted.split(".")
        if parts[0] in C.CONFIG_KEYS:
            continue
        node = config
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                known = ", ".join(sorted(set(config) | set(C.CONFIG_KEYS)))
                raise CheckError(f"sweep file {sweep_file}: config.{dotted} names no key of "
                                 f"config file {config_file} (keys: {known}); fix the "
                                 "spelling, or add the key to the config with its default")
            node = node[part]


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
    from tfagents_system import runtime

    free = runtime.free_bytes(path) if free is None else free
    if free < LAUNCH_FREE_BYTES:
        raise CheckError(f"only {free / 2**20:.1f} MiB free on {runtime.mount_point(path)}, "
                         f"which holds experiment {path}: free space there (it needs at "
                         f"least {LAUNCH_FREE_BYTES >> 20} MiB), then rerun")
