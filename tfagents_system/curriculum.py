"""Environment-parameter curriculum: a pure function of training progress.

The JSON config may hold

    "curriculum": {
        "apply_to": ["collect"],                     (optional default for all)
        "mass_scale_spread": {"iters": [0, 20, 40], "range": [0.0, 0.3]},
        "episode_len": {"iters": [10, 30], "range": [100, 500],
                        "apply_to": ["collect", "eval"]}
    }

A parameter's values are `linspace(min, max, len(iters))`, kept as ints when
`range` holds ints. At iteration k (learner train step // num_steps_per_iter)
a parameter takes the value of the latest threshold <= k; before its first
threshold it is absent and the environment's own value stands. Workers apply
the values with `env.set_state({name: value})`.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfagents_system.core.values import is_number

ROLES = ("collect", "eval")
DEFAULT_APPLY_TO = ("collect",)
SPEC_KEYS = {"iters", "range", "apply_to"}


class CurriculumError(ValueError):
    """A curriculum in the config is invalid; the message names the parameter and the fix."""


@dataclass(frozen=True)
class ParamSchedule:
    """One parameter's schedule: its values from given iterations on, and where it applies."""

    name: str
    iters: tuple[int, ...]
    values: tuple[Any, ...]
    apply_to: tuple[str, ...]

    def value_at(self, iteration: int):
        """The value at `iteration`, or None before the first threshold."""
        index = bisect.bisect_right(self.iters, iteration) - 1
        return None if index < 0 else self.values[index]


@dataclass(frozen=True)
class Curriculum:
    """Every parameter's schedule, parsed from the config's `curriculum`."""

    schedules: tuple[ParamSchedule, ...]

    def values_at(self, iteration: int, role: str = "collect") -> dict[str, Any]:
        """Every parameter applied to `role` whose first threshold has passed."""
        out = {}
        for schedule in self.schedules:
            if role in schedule.apply_to:
                value = schedule.value_at(iteration)
                if value is not None:
                    out[schedule.name] = value
        return out

    def applies_to(self, role: str) -> bool:
        return any(role in s.apply_to for s in self.schedules)

    def __bool__(self) -> bool:
        return bool(self.schedules)


def _apply_to(raw, where: str) -> tuple[str, ...]:
    if (not isinstance(raw, list) or not raw
            or any(role not in ROLES for role in raw) or "collect" not in raw):
        raise CurriculumError(
            f'{where}: "apply_to" must be ["collect"] or ["collect", "eval"], not {raw!r}')
    return tuple(dict.fromkeys(raw))


def parse_schedule(name: str, spec: Any, default_apply_to: tuple[str, ...]) -> ParamSchedule:
    """One parameter's schedule from its config entry; CurriculumError names the problem."""
    where = f'curriculum parameter "{name}"'
    if not isinstance(spec, dict):
        raise CurriculumError(f'{where}: must be an object {{"iters": [...], "range": [min, max]}}')
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise CurriculumError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                              f"allowed: {', '.join(sorted(SPEC_KEYS))}")
    iters = spec.get("iters")
    if not isinstance(iters, list) or not iters:
        raise CurriculumError(f'{where}: "iters" must be a non-empty list of iterations, '
                              'e.g. [0, 50, 100]')
    if any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in iters):
        raise CurriculumError(f'{where}: "iters" {iters} must hold non-negative integers')
    if any(b <= a for a, b in zip(iters, iters[1:])):
        raise CurriculumError(f'{where}: "iters" {iters} must be strictly increasing')
    value_range = spec.get("range")
    if (not isinstance(value_range, list) or len(value_range) != 2
            or not all(is_number(x) for x in value_range)):
        raise CurriculumError(f'{where}: "range" must be two numbers [min, max], '
                              f"not {value_range!r}")
    values = np.linspace(value_range[0], value_range[1], len(iters))
    if all(isinstance(x, int) for x in value_range):
        values = tuple(int(round(v)) for v in values)
    else:
        values = tuple(float(v) for v in values)
    apply_to = (_apply_to(spec["apply_to"], where) if "apply_to" in spec else default_apply_to)
    return ParamSchedule(name, tuple(iters), values, apply_to)


def parse_curriculum(config: dict, source: str = "config") -> Curriculum:
    """The config's curriculum (empty if none); CurriculumError naming the problem."""
    raw = config.get("curriculum")
    if raw is None:
        return Curriculum(())
    try:
        if not isinstance(raw, dict):
            raise CurriculumError('"curriculum" must be an object mapping parameter names to '
                                  '{"iters": [...], "range": [min, max]}')
        default = (_apply_to(raw["apply_to"], "curriculum") if "apply_to" in raw
                   else DEFAULT_APPLY_TO)
        return Curriculum(tuple(parse_schedule(name, spec, default)
                                for name, spec in raw.items() if name != "apply_to"))
    except CurriculumError as exc:
        raise CurriculumError(f"{source}: {exc}") from None


# --- Reaching the user's set_state through wrappers ---

def _inner(node):
    """The next object inside a TF-Agents or gym wrapper, or None."""
    for attribute in ("_env", "_gym_env", "env"):
        inner = node.__dict__.get(attribute) if hasattr(node, "__dict__") else None
        if inner is not None and inner is not node:
            return inner
    return None


def _defines_set_state(node) -> bool:
    """True if this object's own class (not a forwarding base) implements set_state."""
    from tf_agents.environments import gym_wrapper, py_environment, wrappers

    forwarding = (py_environment.PyEnvironment, wrappers.PyEnvironmentBaseWrapper,
                  gym_wrapper.GymWrapper)
    method = getattr(type(node), "set_state", None)
    if method is None:
        return False
    return not any(method is getattr(base, "set_state", None) for base in forwarding)


def supports_set_state(env) -> bool:
    """Whether env.set_state reaches an implementation through every wrapper."""
    node, seen = env, set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if _defines_set_state(node):
            return True
        node = _inner(node)
    return False


def check_env_supports(curriculum: Curriculum, env, role: str, source: str) -> None:
    """An env that a curriculum changes must take set_state(dict); else CurriculumError."""
    if curriculum.applies_to(role) and not supports_set_state(env):
        names = ", ".join(s.name for s in curriculum.schedules if role in s.apply_to)
        raise CurriculumError(
            f"{source}: the curriculum sets {names} on the {role} env, but that env (through "
            "its wrappers) has no set_state(dict) method; implement set_state in your "
            "environment or a wrapper, or remove the curriculum")


def check_env_accepts(curriculum: Curriculum, env, role: str, source: str) -> None:
    """Every value the curriculum will set on a throwaway env of this role: a misspelt
    parameter or a value out of range stops the launch instead of a worker mid-run."""
    check_env_supports(curriculum, env, role, source)
    for schedule in curriculum.schedules:
        if role not in schedule.apply_to:
            continue
        for value in schedule.values:
            try:
                env.set_state({schedule.name: value})
            except (KeyError, ValueError, TypeError) as exc:
                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                raise CurriculumError(
                    f'{source}: curriculum parameter "{schedule.name}" value {value}: the '
                    f"{role} env's set_state refused it ({message}); fix the name or the "
                    "range") from None


class CurriculumApplier:
    """Applies the curriculum's values for an iteration to a worker's envs, once per change.

    `envs` maps a role to an env or a list of envs (a worker's collect envs);
    every env of the role gets set_state, and each call is logged.
    """

    def __init__(self, curriculum: Curriculum, envs: dict, log):
        self._curriculum = curriculum
        self._envs = {role: env if isinstance(env, (list, tuple)) else [env]
                      for role, env in envs.items()}
        self._log = log
        self.applied: dict[str, dict] = {role: {} for role in envs}

    def apply(self, role: str, iteration: int) -> dict:
        values = self._curriculum.values_at(iteration, role)
        if values and values != self.applied[role]:
            for env in self._envs[role]:
                env.set_state(dict(values))
                self._log.info("curriculum: %s env set_state %s at iteration %d", role,
                               json.dumps(values, sort_keys=True), iteration)
            self.applied[role] = values
        return values
