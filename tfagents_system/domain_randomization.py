"""Domain randomization of pybullet dynamics, driven by the curriculum.

`DynamicsRandomizer` is a gym wrapper for pybullet environments. Its
`set_state` takes spreads of physics parameters; at every episode reset it
draws, for every link of every body in the simulation, fresh values uniformly
around the nominal ones and applies them with pybullet's `changeDynamics`:

- `mass_scale_spread` s: mass x U(1 - s, 1 + s)
- `friction_scale_spread` s: lateral friction x U(1 - s, 1 + s)
- `joint_damping` d: joint damping U(0, d) (pybullet models start at 0)

A curriculum widens the spreads as training advances (narrow first, wider
once the policy copes), e.g. `config/default_dr.json`.
"""

from __future__ import annotations

import numpy as np

from tfagents_system.perturbations import StrengthWrapper, bullet_client


class DynamicsRandomizer(StrengthWrapper):
    """Resamples link masses, friction and joint damping at every reset. Parameters
    that are not its own pass to the env it wraps (`perturbations.StrengthWrapper`)."""

    PARAMETERS = {
        "mass_scale_spread": (0.0, 0.95, 0.0),
        "friction_scale_spread": (0.0, 0.95, 0.0),
        "joint_damping": (0.0, 10.0, 0.0),
    }

    def __init__(self, env, seed: int | None = None, **spreads):
        self._nominal: dict[tuple[int, int], tuple[float, float]] = {}
        self._applied: dict[tuple[int, int], tuple[float, float]] = {}
        self.last_sample: dict[tuple[int, int], dict[str, float]] = {}
        super().__init__(env, seed, **spreads)

    def _make_rng(self, seed):
        return np.random.default_rng(seed)

    @property
    def _spreads(self) -> dict:
        return self.strength

    def reset(self, **kwargs):
        self._take_pending()
        observation = self.env.reset(**kwargs)  # a reset may reload the bodies
        self._randomize()
        return observation

    # --- pybullet access ---

    def bullet_client(self):
        """The environment's pybullet client."""
        return bullet_client(self.env)

    def links(self):
        """(body unique id, link index) of every link, base (-1) included."""
        p = self.bullet_client()
        for i in range(p.getNumBodies()):
            body = p.getBodyUniqueId(i)
            for link in range(-1, p.getNumJoints(body)):
                yield body, link

    def _randomize(self) -> None:
        p = self.bullet_client()
        s_mass = self._spreads["mass_scale_spread"]
        s_friction = self._spreads["friction_scale_spread"]
        damping = self._spreads["joint_damping"]
        self.last_sample = {}
        for key in self.links():
            info = p.getDynamicsInfo(*key)
            current = (info[0], info[1])  # mass, lateral friction
            # A fresh value (a reloaded body) is nominal; our own last value is not.
            if key not in self._nominal or not np.allclose(current, self._applied.get(key)):
                self._nominal[key] = current
            mass, friction = self._nominal[key]
            sample = {
                "mass": mass * self._rng.uniform(1 - s_mass, 1 + s_mass),
                "lateralFriction": friction * self._rng.uniform(1 - s_friction, 1 + s_friction),
            }
            changes = dict(sample)
            if key[1] >= 0:  # damping belongs to the joint driving a link
                sample["jointDamping"] = changes["jointDamping"] = self._rng.uniform(0, damping)
            if mass == 0:  # static (fixed) bodies stay static
                changes.pop("mass")
                sample["mass"] = 0.0
            p.changeDynamics(key[0], key[1], **changes)
            after = p.getDynamicsInfo(*key)
            self._applied[key] = (after[0], after[1])
            self.last_sample[key] = sample
