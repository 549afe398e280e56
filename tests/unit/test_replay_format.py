"""The replay format record: what a resumed run's env and params must match."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from tf_agents.specs import array_spec

from tfagents_system.core.specs import leaves
from tfagents_system.replay.format import LAYOUT_BLOCKS, NStep, ReplayFormat, Window

OBS = array_spec.ArraySpec((3,), np.float32, "obs")
ACT = array_spec.BoundedArraySpec((2,), np.float32, -1.0, 1.0, "act")


def recorded(**fields) -> ReplayFormat:
    """A format as the launch records it, read back from its JSON."""
    made = ReplayFormat(LAYOUT_BLOCKS, "chosen", observation=tuple(leaves(OBS)),
                        action=tuple(leaves(ACT)), **fields)
    return ReplayFormat.from_json(made.to_json())


def test_a_record_matches_the_env_and_params_it_was_made_for():
    assert recorded().mismatch(OBS, ACT, None, None, "here") is None
    window, n_step = Window(20, 10), NStep(3, 0.99)
    assert recorded(window=window, n_step=n_step).mismatch(OBS, ACT, window, n_step, "x") is None


@pytest.mark.parametrize("observation, action, window, n_step, expected", [
    (array_spec.ArraySpec((4,), np.float32), ACT, None, None,
     "here: the env's observation is now [float32[4]], the experiment was created with "
     "[float32[3]]"),
    (OBS, array_spec.BoundedArraySpec((3,), np.float32, -1.0, 1.0), None, None,
     "here: the env's action is now [float32[3]], the experiment was created with "
     "[float32[2]]"),
    (OBS, ACT, Window(20, 10), None, "here: the replay buffer holds transitions"),
    (OBS, ACT, None, NStep(3, 0.99), "here: the replay buffer holds one-step rows"),
])
def test_a_changed_env_or_params_is_one_line_naming_what_changed(observation, action, window,
                                                                  n_step, expected):
    assert recorded().mismatch(observation, action, window, n_step, "here").startswith(expected)


def test_a_record_from_before_structures_were_recorded_is_not_checked_on_them():
    old = recorded().to_json()
    del old["observation"], old["action"]
    wider = array_spec.BoundedArraySpec((3,), np.float32, -1.0, 1.0)
    assert ReplayFormat.from_json(old).mismatch(OBS, wider, None, None, "here") is None
