"""Learning from pixels through ./run_script.sh: DotToCentre (tfagents_system.
testing_envs, a dot to move to the centre of a 32x32 picture) seen only through its
rendered frames, two stacked, with the pixels preset's conv encoder and random
shifts scaled down. The real launch (replay server, learner, a worker acting with the
convolutional policy) learns it, the replay memory stores each frame once, and the
final video renders from the pixel policy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from launch_helpers import REPO, eval_returns, run_script, write_variables

pytestmark = pytest.mark.e2e

STACK = 2
FRAME_BYTES = 32 * 32 * 3
EPISODE_STEPS = 15
# Measured with these settings: a final greedy return of -3.3 to -3.5 over 10
# episodes (one that heads straight for the centre: about -1.2; one that stays put
# or acts at random: about -11.5).
THRESHOLD = -6.0

PARAMS = f"""
import sys
sys.path.insert(0, {str(REPO / "examples")!r})
from pixels import TrainParams as Base


class TrainParams(Base):
    conv_channels = (16, 16)
    conv_kernels = (3, 3)
    conv_strides = (2, 2)
    encoder_features = 32
    actor_fc_layers = (64, 64)
    critic_joint_fc_layers = (64, 64)
    batch_size = 64
    samples_per_insert = 64.0
    samples_per_insert_error_buffer = 64.0 * 400
    target_update_tau = 0.05
    n_buffer_init_steps = 300
    min_replay_size = 300
    replay_capacity = 20_000
    num_iter = 6
    num_steps_per_iter = 500
    n_eval_episodes = 10
    eval_period_itrs = 1
"""


def test_a_pixel_task_learns_through_the_real_launch_with_each_frame_stored_once(workdir):
    (workdir / "params.py").write_text(PARAMS)
    config = {"env_id": "tfagents_system.testing_envs:DotToCentre-v0",
              "pixels": {"size": 32, "frame_stack": STACK}}
    (workdir / "config.json").write_text(json.dumps(config))
    variables = write_variables(workdir / "vars.sh", SAC_CONFIG=str(workdir / "config.json"),
                                SAC_NUM_COLLECT_WORKERS=1, SAC_FINAL_VIDEO=1)
    result = run_script(variables, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    exp = workdir / "logs" / "tiny"

    returns = [value for _, value in next(iter(eval_returns(exp).values()))]
    assert returns and returns[-1] >= THRESHOLD, returns

    layout = json.loads((exp / "replay_layout.json").read_text())
    assert layout["layout"] == "packed_blocks" and layout["frames"] == STACK
    assert layout["observation"][0]["shape"] == [32, 32, 3 * STACK]
    assert layout["observation"][0]["dtype"] == "uint8"
    # The memory's log: each row holds one frame's bytes and the small fields; each
    # episode (a block) adds STACK context rows to its transitions.
    row_size = json.loads((exp / "replay_memory" / "meta.json").read_text())["row_size"]
    rows = np.concatenate([np.fromfile(p, np.float32).reshape(-1, row_size)
                           for p in sorted((exp / "replay_memory").glob("rows_*.f32"))])
    positions = rows[:, 4]
    transitions = int((positions >= STACK).sum())
    blocks = int((positions == 0).sum())
    assert len(rows) == transitions + STACK * blocks
    assert blocks <= -(-transitions // EPISODE_STEPS) + 2  # one block per episode
    small_bytes = 4 * row_size - FRAME_BYTES
    assert small_bytes < 64  # head, positions, the 2-D action; no observation floats
    per_transition = 4 * row_size * len(rows) / transitions
    assert per_transition <= (FRAME_BYTES + small_bytes) * (1 + STACK / EPISODE_STEPS) + 1

    videos = list((exp / "evaluations").glob("final_seed*/episode_000.mp4"))
    assert videos and videos[0].stat().st_size > 0
