"""Recurrent training composes with the other parts of the agent and the replay data
(README, "Recurrent networks"): an LSTM agent trains, through the real program
functions in serial mode, on windows of n-step rows; regularized toward a
feed-forward prior policy; and warm-started by behaviour cloning on demonstration
windows, whose cloned policy keeps the LSTM's state."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from launch_helpers import tensorboard_tags
from parts import serial_experiment

from tfagents_system import demonstrations, process, run, serial
from tfagents_system.core import constants as C
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.replay import demo_store
from tfagents_system.replay.format import NStep, ReplayFormat, Window

# A tiny LSTM agent: windows of 2 burn-in + 4 trained steps, 8 per batch.
RECURRENT = """recurrent = True
recurrent_sequence_length = 4
recurrent_burn_in = 2
batch_size = 8
lstm_size = (8,)
recurrent_output_fc_layers = (8,)
"""


def _train(variables, caplog) -> list[str]:
    """Run the experiment to completion in serial mode; the learner's log lines."""
    caplog.set_level(logging.INFO)
    assert serial.run_serial(str(variables), stop=process.StopFlag()) == 0
    return [r.getMessage() for r in caplog.records if r.name == C.LEARNER]


def _losses_finite(lines: list[str]) -> None:
    summaries = [m for m in lines if m.startswith("iteration ")]
    assert summaries and all("nan" not in m for m in summaries), summaries


@pytest.mark.timeout(300)
def test_an_lstm_agent_trains_on_windows_of_n_step_rows(tmp_path, serial_launch, caplog):
    variables, paths = serial_experiment(tmp_path, "rnn_nstep", RECURRENT + "n_step = 3\n")
    lines = _train(variables, caplog)
    recorded = ReplayFormat.read(paths.layout)
    assert (recorded.window, recorded.n_step) == (Window(4, 2), NStep(3, 0.99))
    assert any(m.startswith("experience items: packed_blocks layout of windows of 2+4 steps "
                            "(burn-in + trained) of 3-step transitions") for m in lines)
    _losses_finite(lines)
    assert paths.complete.is_file()


@pytest.mark.timeout(300)
def test_an_lstm_agent_trains_toward_a_feed_forward_prior(tiny_experiment, tmp_path,
                                                         serial_launch, caplog):
    prior = ExperimentPaths(tiny_experiment).final_policy(C.COLLECT_POLICY)
    variables, paths = serial_experiment(tmp_path, "rnn_prior",
                                         RECURRENT + f"prior_policy = {str(prior)!r}\n")
    lines = _train(variables, caplog)
    assert (paths.prior_policy / "saved_model.pb").is_file()
    assert C.M_PRIOR_DIVERGENCE in tensorboard_tags(paths.tensorboard(C.TRAIN_TB_DIR))
    divergences = [float(m.rsplit("prior divergence ", 1)[1]) for m in lines
                   if ", prior divergence " in m]
    assert divergences and np.isfinite(divergences).all()
    _losses_finite(lines)


@pytest.mark.timeout(300)
def test_an_lstm_agent_is_warm_started_by_cloning_demonstration_windows(
        tiny_experiment, tmp_path, serial_launch, caplog):
    demo = tmp_path / "demo.npz"
    assert run.main(["--exp_dir", str(tiny_experiment), "--record", str(demo),
                     "--num_episodes", "3"]) == 0
    variables, paths = serial_experiment(
        tmp_path, "rnn_bc", RECURRENT + "demonstrations = ('demo.npz',)\n"
        "demo_ratio = 0.25\nbc_warm_start_steps = 200\nactor_learning_rate = 3e-3\n")
    lines = _train(variables, caplog)
    meta = demo_store.DemoMeta.read(paths.demonstrations / demo_store.META_FILE)
    assert meta.sequence == [4, 2]  # the demonstrations are stored as replay windows
    episodes = int((demonstrations.read_file(demo)["step_type"] == 2).sum())
    assert meta.rows >= episodes
    cloned = [m for m in lines if m.startswith("behaviour cloning warm start: 200 steps")]
    assert len(cloned) == 1
    first, last = (float(x) for x in cloned[0].rsplit(" ", 3)[1::2])
    assert last < first  # the demonstrated actions grew likelier
    assert C.M_BC_LOSS in tensorboard_tags(paths.tensorboard(C.TRAIN_TB_DIR))
    import tensorflow as tf

    bc_policy = tf.saved_model.load(str(paths.policy(C.BC_POLICY)))
    assert tf.nest.flatten(bc_policy.get_initial_state(1))  # the cloned LSTM keeps a state
    _losses_finite(lines)
