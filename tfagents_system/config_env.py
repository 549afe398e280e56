"""What a JSON config asks of a gym env beyond its id: the wrappers its
`domain_randomization`, `perturbations` and `observation_indices` switch on
(`GymTrainParams.gym_wrappers`)."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from tfagents_system.envs import EnvError, keep_observation_entries


def wrappers(env_config: Mapping) -> tuple:
    """The gym wrappers the config switches on, inner first."""
    out = []
    if env_config.get("domain_randomization"):
        from tfagents_system.domain_randomization import DynamicsRandomizer

        out.append(DynamicsRandomizer)
    chosen = env_config.get("perturbations", False)
    if chosen is not False:
        from tfagents_system import perturbations

        known = ", ".join([*perturbations.PARAMETERS, *perturbations.OPTIONS])
        chosen = {} if chosen is True else chosen
        if not isinstance(chosen, dict):
            raise EnvError(f'config "perturbations": {chosen!r} must be true, false or an '
                           f"object of initial strengths ({known})")
        unknown = sorted(set(chosen) - set(perturbations.PARAMETERS)
                         - perturbations.OPTIONS)
        if unknown:
            raise EnvError(f'config "perturbations": unknown key(s) {", ".join(unknown)}; '
                           f"known: {known}")
        out.append(functools.partial(perturbations.perturb, **chosen))
    if "observation_indices" in env_config:  # outermost: perturbations see all
        out.append(keep_observation_entries(env_config["observation_indices"]))
    return tuple(out)
