"""The parts component tests build, made as the programs make them (`builder.Builder`)."""

from __future__ import annotations

import tensorflow as tf
from tf_agents.utils import common

from tfagents_system.builder import Builder
from tfagents_system.replay import tables
from tfagents_system.replay.format import LAYOUT_STEPS, ReplayFormat


def agent_of(params, env=None, name: str = "train_step"):
    """The params' agent on `env`'s specs (default: the params' collect env)."""
    specs = None if env is None else (env.time_step_spec(), env.action_spec())
    return Builder(params).agent(common.create_variable(name, 0, dtype=tf.int64), specs)


def format_of(params, agent, capacity: int | None = None) -> ReplayFormat:
    """The replay format a launch would choose for this agent (bound to its specs)."""
    return Builder(params).choose_replay_format(agent, capacity)


def tables_of(params, capacity: int, replay_format: ReplayFormat | None = None) -> list:
    """The replay server's tables (default: the 2-step TF-Agents layout's sizes)."""
    return tables.make_tables(params.replay_settings(capacity),
                              replay_format or ReplayFormat(LAYOUT_STEPS))


def bound(env, layout: str, **record) -> ReplayFormat:
    """A replay format of `layout` (window, n_step, ...) bound to `env`'s specs."""
    return ReplayFormat(layout, **record).bind(env.observation_spec(), env.action_spec())


def memory_source(params, replay_format: ReplayFormat, directory, capacity: int, link,
                  log, should_stop=lambda: False):
    """The learner's MemorySource over a restored replay memory in `directory`."""
    from tfagents_system.replay.memory import ReplayMemory
    from tfagents_system.replay.sources import MemorySource

    memory = ReplayMemory(replay_format.items(capacity), replay_format.packer().size,
                          directory)
    memory.restore()
    return MemorySource(memory, replay_format, params.replay_settings(capacity), link,
                        should_stop, log)


def serial_experiment(tmp_path, name: str, extra: str, num_iter: int = 1, steps: int = 100):
    """(training variables, paths) of a tiny pendulum experiment (launch_helpers' tiny
    params with `extra` settings) for serial mode."""
    from launch_helpers import write_params, write_variables

    from tfagents_system.core.paths import ExperimentPaths

    write_params(tmp_path / "params.py", num_iter=num_iter, steps=steps, ckpt=1,
                 extra="replay_capacity = 20_000\n" + extra)
    variables = write_variables(tmp_path / "vars.sh", SAC_EXP_NAME=name)
    return variables, ExperimentPaths(tmp_path / "logs" / name)
