"""Slow: CrossQ learns the point-mass reach nearly as well as SAC, at one gradient step
per env step, without target networks.

Both train in this process through the framework's own pieces (`in_process.
train_point_mass`: the agent the builder makes, the workers' numpy actor with the
batch-renormalized actor, the transition packer), then the greedy policy is evaluated.
A uniform random policy returns about -67; SAC about -10 after this budget. CrossQ
runs with the paper's settings but narrower critics (256 units; the paper's 2048 and
sb3-contrib's 1024 would take minutes here) and batch renormalization's warm-up
shortened to 1000 steps, so the test also trains through the renormalized phase.
Measured in 5 runs: CrossQ -11.6 to -13.5 against SAC's -10.1 to -11.5, 95-98% of
SAC's gain over a random policy; the test asserts 85%.
"""

from __future__ import annotations

import time

import pytest
from in_process import train_point_mass

pytestmark = pytest.mark.slow

RANDOM_RETURN = -67.0
CROSSQ = {"agent": "crossq", "crossq_critic_layers": (256, 256),
          "crossq_renorm_warmup_steps": 1000, "actor_learning_rate": 1e-3,
          "critic_learning_rate": 1e-3, "alpha_learning_rate": 1e-3}


def test_crossq_learns_nearly_as_well_as_sac():
    start = time.monotonic()
    crossq, _ = train_point_mass(CROSSQ)
    sac, _ = train_point_mass({})
    print(f"\npoint-mass reach after 2500 gradient steps: greedy return CrossQ {crossq:.1f}, "
          f"SAC {sac:.1f} ({time.monotonic() - start:.0f} s for both)")
    assert sac > -30, "the SAC baseline did not learn: the test proves nothing"
    assert crossq - RANDOM_RETURN >= 0.85 * (sac - RANDOM_RETURN)
