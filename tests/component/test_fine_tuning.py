"""Fine-tuning from another experiment (tfagents_system.finetune) with the real program
functions in serial mode: a tiny pendulum is trained, then fine-tuned under heavy
dynamics randomization from its checkpoint. The fine-tuned experiment's weights at
step 0 are the source's, its train step starts at 0, it imports the source's replay
buffer, it resumes its own checkpoint after a stop, and the source's files are never
changed. The launch refuses a source that does not fit, in one line. At the agent
level, each part (networks, optimizers, alpha) loads only when asked for."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tfagents_system import finetune, process, serial
from tfagents_system.core import constants as C
from tfagents_system.core import errors
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.launch import plan
from tfagents_system.params import TrainParamsBase
from tfagents_system.replay.auth import Signer
from tfagents_system.replay.format import LAYOUT_BLOCKS, ReplayFormat
from tfagents_system.replay.memory import ReplayMemory, read_rows
from tfagents_system.replay.sources import MemorySource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from launch_helpers import write_params, write_variables

TINY = "replay_capacity = 20_000\n"
# Heavy dynamics randomization from the first iteration on.
HEAVY_DR = {"env_id": "InvertedPendulumBulletEnv-v0", "domain_randomization": True,
            "curriculum": {"mass_scale_spread": {"iters": [0], "range": [0.5, 0.5]},
                           "friction_scale_spread": {"iters": [0], "range": [0.5, 0.5]}}}


@pytest.fixture(autouse=True)
def _no_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SAC_TASK_ID", raising=False)
    process.setup_logging("finetune-test")


@pytest.fixture
def source(tiny_experiment) -> ExperimentPaths:
    """A pendulum trained for 200 steps, checkpointed at 100 and 200 (conftest.py)."""
    return ExperimentPaths(tiny_experiment)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _fine_tuning(tmp_path: Path, source: ExperimentPaths, config: dict = HEAVY_DR,
                 extra: str = "", **variables) -> tuple[Path, ExperimentPaths]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    write_params(tmp_path / "params.py", num_iter=3, steps=100, ckpt=1, extra=TINY + extra)
    path = write_variables(tmp_path / "vars.sh", SAC_EXP_NAME="finetuned",
                           SAC_CONFIG="config.json", SAC_INIT_FROM=str(source.root),
                           **variables)
    return path, ExperimentPaths(tmp_path / "logs" / "finetuned")


class StopAtFirstCheckpoint(process.StopFlag):
    """A stop request as soon as the experiment has a checkpoint of its own."""

    def __init__(self, paths: ExperimentPaths):
        super().__init__()
        self._paths = paths

    def __call__(self) -> bool:
        if not super().__call__() and self._paths.has_checkpoint:
            self.set()
        return super().__call__()


def _policy_weights(directory: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith("model_variables/")}


def _steps(directory: Path) -> list[int]:
    return sorted(C.policy_checkpoint_step(p.name) for p in directory.iterdir())


@pytest.mark.timeout(400)
def test_fine_tuning_starts_from_the_source_and_resumes_itself(tmp_path, source, caplog):
    caplog.set_level(logging.INFO)
    before = _digests(source.root)
    variables, paths = _fine_tuning(
        tmp_path, source, extra="samples_per_insert = 32.0\ninit_from_optimizers = True\n"
                                "init_from_alpha = True\ninit_from_replay = True")
    assert serial.run_serial(str(variables), stop=StopAtFirstCheckpoint(paths)) == 130

    record = json.loads(paths.init_from.read_text())
    assert record["source"] == str(source.root) and record["train_step"] == 200
    assert record["parts"] == ["networks", "optimizers", "alpha", "replay"]
    # (a) The policies exported at train step 0 hold the source's weights at step 200.
    assert (paths.policy(C.GREEDY_POLICY) / C.POLICY_READY).read_text() == "0"
    ours = _policy_weights(paths.policy(C.GREEDY_POLICY))
    theirs = _policy_weights(source.policy_checkpoint(200))
    assert ours.keys() == theirs.keys() and len(ours) >= 4
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)
    # (f) The source's replay rows come first in this experiment's memory log.
    imported = record["replay_rows"]
    assert imported > 0 and json.loads(paths.replay_imported.read_text()) == {"rows": imported}
    row_size = json.loads((source.replay_memory / "meta.json").read_text())["row_size"]
    source_rows, _ = read_rows(source.replay_memory, row_size, imported)
    np.testing.assert_array_equal(read_rows(paths.replay_memory, row_size, 10**9)[0][:imported],
                                  source_rows)

    # (d) Resumed, it goes on from its own checkpoint, not from the source's.
    assert serial.run_serial(str(variables), stop=process.StopFlag()) == 0
    messages = [r.getMessage() for r in caplog.records if r.name == C.LEARNER]
    loaded = "fine-tuning: loaded networks, optimizers, alpha"
    assert sum(m.startswith(loaded) for m in messages) == 1
    assert sum(m.startswith("fine-tuning: imported") for m in messages) == 1
    assert "starting at train step 0 of 300" in messages
    assert "resumed at train step 100 of 300" in messages
    # (b) Its own 300 steps from 0, not from the source's 200.
    assert json.loads(paths.complete.read_text())["train_step"] == 300
    assert _steps(paths.policy_checkpoints) == [100, 200, 300]
    # (c) The source is byte for byte as it was.
    assert _digests(source.root) == before


def _refused(tmp_path: Path, capsys, variables: Path, paths: ExperimentPaths) -> str:
    """The launch's one error line; nothing was created."""
    assert serial.run_serial(str(variables), stop=process.StopFlag()) == C.EXIT_BAD_INPUT
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert not paths.root.exists()
    return errors[0]


def test_a_source_on_other_specs_stops_the_launch(tmp_path, source, capsys):
    """A pendulum checkpoint cannot start a Pendulum-v1 experiment (3 observations, not 5)."""
    line = _refused(tmp_path, capsys, *_fine_tuning(tmp_path, source, {"env_id": "Pendulum-v1"}))
    assert f"SAC_INIT_FROM {source.root} was trained on observation spec [((5,), 'float32')]" \
        in line and "this experiment's env has [((3,), 'float32')]" in line


def test_other_network_sizes_or_a_missing_checkpoint_stop_the_launch(tmp_path, source, capsys):
    line = _refused(tmp_path, capsys, *_fine_tuning(tmp_path, source,
                                                    extra="actor_fc_layers = (16, 16)"))
    assert "its checkpoint at train step 200 does not fit this experiment's agent" in line
    line = _refused(tmp_path, capsys, *_fine_tuning(tmp_path, source,
                                                    extra="init_from_step = 150"))
    assert "has no checkpoint at train step 150 (init_from_step); available: 100, 200" in line


def test_a_replay_buffer_kept_by_reverb_cannot_be_imported(tmp_path, source):
    copy = tmp_path / "reverb_source"
    shutil.copytree(source.root, copy)
    ExperimentPaths(copy).layout.write_text(json.dumps({"layout": "packed_transition"}))
    variables, paths = _fine_tuning(tmp_path, ExperimentPaths(copy),
                                    extra="init_from_replay = True")
    with pytest.raises(plan.BAD_INPUT, match="the source's layout is packed_transition"):
        plan.prepare(str(variables))
    assert not paths.root.exists()


# --- The parts, at the agent level ---

def _agent(params):
    import tensorflow as tf
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import time_step as ts
    from tf_agents.utils import common

    from tfagents_system.builder import Builder

    observation = tensor_spec.TensorSpec([5], tf.float32)
    action = tensor_spec.BoundedTensorSpec([1], tf.float32, -1.0, 1.0)
    step = common.create_variable("train_step", 0, dtype=tf.int64)
    return Builder(params).agent(step, (ts.time_step_spec(observation), action)), step


def _train(agent, steps: int) -> None:
    import tensorflow as tf
    from tf_agents.specs import tensor_spec

    batch = tensor_spec.sample_spec_nest(agent.collect_data_spec, outer_dims=(8, 2))
    batch = tf.nest.map_structure(  # finite values in [0, 1) for every float field
        lambda x: tf.random.uniform(x.shape, dtype=x.dtype) if x.dtype.is_floating else x,
        batch)
    for _ in range(steps):
        agent.train(batch)


def _values(variables) -> list[np.ndarray]:
    return [v.numpy() for v in variables]


class Params(TrainParamsBase):
    actor_fc_layers = critic_joint_fc_layers = (8, 8)

    def env_ctor(self, seed=None, *args, **kwargs):
        return None


def test_each_part_loads_only_when_asked(tmp_path):
    from tf_agents.utils import common

    source, source_step = _agent(Params())
    _train(source, 3)
    common.Checkpointer(str(ExperimentPaths(tmp_path).checkpoints), agent=source,
                        train_step=source_step).save(global_step=source_step)
    prefix = finetune.checkpoint_prefix(tmp_path / C.CHECKPOINT_DIR, 3)
    params = Params()
    params.actor_learning_rate = 0.5
    networks_only, step = _agent(params)
    finetune.restore_parts(networks_only, prefix, ("networks",))
    for name in finetune.AGENT_PARTS["networks"]:
        for ours, theirs in zip(_values(getattr(networks_only, name).variables),
                                _values(getattr(source, name).variables)):
            np.testing.assert_array_equal(ours, theirs, err_msg=name)
    assert float(networks_only._log_alpha.numpy()) == 0.0 != float(source._log_alpha.numpy())
    assert int(networks_only._actor_optimizer.iterations.numpy()) == 0
    assert int(step.numpy()) == 0

    everything, step = _agent(params)
    finetune.restore_parts(everything, prefix, ("networks", "optimizers", "alpha"))
    assert float(everything._log_alpha.numpy()) == float(source._log_alpha.numpy())
    actor_vars = everything._actor_network.trainable_variables
    optimizer = everything._actor_optimizer
    assert int(optimizer.iterations.numpy()) == 3 and int(step.numpy()) == 0
    optimizer._create_all_weights(actor_vars)  # as its first step would: slots restored
    for ours, theirs in zip(actor_vars, source._actor_network.trainable_variables):
        np.testing.assert_array_equal(optimizer.get_slot(ours, "m").numpy(),
                                      source._actor_optimizer.get_slot(theirs, "m").numpy())
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.5)  # its own rate

    paths = ExperimentPaths(tmp_path / "fine_tuned")  # its copy is gone: the learner stops
    finetune.InitFromRecord(str(tmp_path), str(prefix), "init_from_checkpoint/ckpt-3", 3,
                            ["networks"]).write(paths.init_from)
    with pytest.raises(errors.FatalError, match="cannot load .*init_from_checkpoint/ckpt-3"):
        finetune.initialize_agent(_agent(params)[0], paths, logging.getLogger("test"))


def test_imported_rows_are_not_counted_as_inserts(tmp_path):
    """With samples_per_insert, imported rows would otherwise let the learner train
    far ahead while the workers wait; the count survives a restart."""
    params = Params()
    params.batch_size, params.min_replay_size, params.samples_per_insert = 4, 8, 1.0
    spec = _agent(params)[0].collect_data_spec
    fmt = ReplayFormat(LAYOUT_BLOCKS).bind(spec.observation, spec.action)
    drains = []  # the learner's calls to drain the experience queue (none waiting)
    link = type("Link", (), {"signer": Signer(b"k" * 32),
                             "call": lambda self, fn: drains.append(fn)})()
    paths = ExperimentPaths(tmp_path)
    log = logging.getLogger("test")

    def open_source():
        memory = ReplayMemory(1000, fmt.packer().size, paths.replay_memory)
        memory.restore()
        return MemorySource(memory, fmt, params.replay_settings(1000), link, lambda: False,
                            log)

    first = open_source()
    first.memory.import_rows(np.zeros((100, first.packer.size), np.float32))
    for source in (first, open_source()):
        assert source.size() == 100 and source.memory.imported == 100
        # The warm-up's slack (error buffer 8 + 10 batches = 48 samples less the 8 of
        # min_replay_size) is 10 steps, as for an experiment that inserted nothing yet.
        assert source.steps_allowed(0, 50) == 10
        source.take_in(0)  # and it takes in the workers' blocks
    assert len(drains) == 2
