"""The learner program: SAC gradient steps on batches of replayed experience.

With the packed_blocks layout (SAC on float32 vectors, the default when the
buffer fits in RAM) the replay buffer is the learner's own `ReplayMemory`, fed
from Reverb's experience queue; otherwise batches are sampled from Reverb.

Per iteration it runs `num_steps_per_iter` gradient steps, publishes the policy
weights and the train step, and on its triggers writes summaries, checkpoints
and policy checkpoints. It finishes with a final checkpoint and a full policy
export when the train step reaches `num_iter * num_steps_per_iter`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from tfagents_system import builders, replay_memory, runtime
from tfagents_system import constants as C

# Gradient steps per compiled call: bounds how long a stop request waits.
MAX_STEPS_PER_CALL = 200


class IntervalTrigger:
    """Fires when the iteration count crosses a multiple of `period`."""

    def __init__(self, period: int, start_iteration: int):
        self._period = period
        self._last = start_iteration // period

    def __call__(self, iteration: int) -> bool:
        if iteration // self._period > self._last:
            self._last = iteration // self._period
            return True
        return False


def export_policy(policy, train_step, directory: Path) -> None:
    """Save a SavedModel policy atomically: temp dir, READY sentinel, rename."""
    from tf_agents.policies import policy_saver

    if (directory / C.POLICY_READY).exists():
        return
    tmp = directory.with_name(f".{directory.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    policy_saver.PolicySaver(policy, batch_size=None, train_step=train_step).save(str(tmp))
    (tmp / C.POLICY_READY).write_text(str(int(train_step.numpy())))
    directory.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, directory)


class ReplayConnection:
    """The learner's link to the replay server: client, weights table, sample iterator.

    Sampling gives up after `SAMPLE_TIMEOUT_MS` without data, so the learner
    regains control (heartbeat, stop requests) while it waits for experience.
    If the server goes away, `reconnect` waits for it to come back (restored
    from its checkpoint) and rebuilds everything.
    """

    SAMPLE_TIMEOUT_MS = 5000

    def __init__(self, address: str, collect_data_spec, batch_size: int, should_stop, log,
                 layout: str = builders.LAYOUT_STEPS):
        self._address = address
        self._spec = collect_data_spec
        self._batch_size = batch_size
        self._layout = layout
        self._should_stop = should_stop
        self._log = log
        self.reconnect()

    def reconnect(self) -> None:
        self.client = builders.wait_for_server(self._address, self._should_stop)
        self.weights = builders.WeightsExchange(self.client)
        self.new_iterator()

    def new_iterator(self) -> None:
        if self._layout == builders.LAYOUT_BLOCKS:  # the learner's memory is sampled
            self.iterator = None
            return
        self.iterator = iter(builders.experience_dataset(
            self._address, self._spec, self._batch_size,
            rate_limiter_timeout_ms=self.SAMPLE_TIMEOUT_MS, layout=self._layout))

    def server_alive(self) -> bool:
        return builders.server_alive(self.client)

    def checkpoint(self, keep: int) -> str:
        """Reverb's own checkpoint of every table; keeps the newest `keep`."""
        path = self.client.checkpoint()
        runtime.prune_checkpoints(Path(path).parent, keep)
        return path


def resolve_layout(paths: runtime.ExperimentPaths, agent, log,
                   capacity: int | None = None, learner_keeps: bool = True) -> str:
    """The experience-item layout of this experiment, recorded on first start.

    An experiment without the record but with checkpoints was started before
    layouts were recorded: its replay buffer holds TF-Agents 2-step items.
    """
    path = paths.root / builders.LAYOUT_FILE
    if path.is_file():
        record = runtime.read_json(path)
    else:
        started = (paths.checkpoints / "checkpoint").is_file() or (
            paths.replay_checkpoints.is_dir() and any(paths.replay_checkpoints.iterdir()))
        if started:
            record = {"layout": builders.LAYOUT_STEPS,
                      "reason": "experiment started before item layouts were recorded"}
        else:
            layout, reason = builders.choose_layout(agent, capacity, learner_keeps)
            record = {"layout": layout, "reason": reason}
        runtime.write_json_atomic(path, record)
    if record["layout"] not in builders.LAYOUTS:
        raise ValueError(f"{path}: unknown layout {record['layout']!r}")
    log.info("experience items: %s layout (%s)", record["layout"], record["reason"])
    return record["layout"]


def make_train_loop(agent, next_batch):
    """`train_steps(n, *source)`: a compiled loop of n gradient steps, each on
    `next_batch(*source)`; returns the last step's LossInfo. Several steps per
    call keep Python out of the loop."""
    import tensorflow as tf

    @tf.function
    def train_steps(n, *source):
        loss_info = agent.train(next_batch(*source))
        for _ in tf.range(n - 1):
            loss_info = agent.train(next_batch(*source))
        return loss_info

    return train_steps


def make_train_steps(agent):
    """The compiled loop on batches from a dataset iterator: `train_steps(n, iterator)`."""
    return make_train_loop(agent, next)


def make_memory_train_steps(agent, memory: replay_memory.ReplayMemory, batch_size: int,
                            packer: builders.TransitionPacker):
    """(train_steps(n), next_batch()): the compiled loop on batches sampled from the
    learner's replay memory (rows packed by `packer`), and one such batch."""
    import tensorflow as tf

    def next_batch():
        return packer.unpack(memory.sample(batch_size))

    return make_train_loop(agent, next_batch), tf.function(next_batch)


# Blocks taken from the experience queue per drain (x BLOCK_ROWS transitions).
DRAIN_MAX_BLOCKS = 1024


def batch_time_steps(batch):
    """The (first) time steps of a sampled batch, in either layout."""
    from tf_agents.trajectories import trajectory

    if isinstance(batch, trajectory.Transition):
        return batch.time_step
    return trajectory.to_transition(batch)[0]


def run_learner(params, paths: runtime.ExperimentPaths, address: str, should_stop, log,
                heartbeat=None, capacity: int | None = None) -> int:
    """Train until the target train step or a stop request; return the train step."""
    import tensorflow as tf
    from tf_agents.policies import greedy_policy, policy_saver
    from tf_agents.utils import common

    beat = heartbeat.beat if heartbeat is not None else (lambda: None)
    tf.random.set_seed(params.seed)
    env = builders.make_env(params, builders.COLLECT, seed=params.seed)
    time_step_spec, action_spec = env.time_step_spec(), env.action_spec()
    env.close()

    train_step = common.create_variable("train_step", 0, dtype=tf.int64)
    agent = builders.make_agent(params, time_step_spec, action_spec, train_step)
    checkpointer = common.Checkpointer(
        str(paths.checkpoints), max_to_keep=params.checkpoints_to_keep,
        agent=agent, train_step=train_step,
    )
    start_step = int(train_step.numpy())
    target = params.total_train_steps
    log.info("%s at train step %d of %d",
             "resumed" if start_step else "starting", start_step, target)

    greedy = greedy_policy.GreedyPolicy(agent.policy)
    export_policy(agent.collect_policy, train_step, paths.policy(C.COLLECT_POLICY))
    export_policy(greedy, train_step, paths.policy(C.GREEDY_POLICY))
    policy_ckpt_saver = policy_saver.PolicySaver(greedy, batch_size=None, train_step=train_step)
    beat()

    if capacity is None:
        capacity = int(runtime.read_json(paths.settings)["replay_capacity"])
    # before publishing: workers read it then
    layout = resolve_layout(paths, agent, log, capacity, params.learner_keeps_replay)
    memory = limit = None
    if layout == builders.LAYOUT_BLOCKS:
        spec = agent.collect_data_spec
        packer = builders.TransitionPacker(spec.observation, spec.action)
        memory = replay_memory.ReplayMemory(capacity, packer.size, paths.replay_memory)
        restored = memory.restore()
        limit = replay_memory.RatioLimit(params)
        log.info("replay memory: %d transitions restored (%d stored in all), capacity %d",
                 restored, memory.inserted, capacity)
        train_steps, memory_batch = make_memory_train_steps(agent, memory, params.batch_size,
                                                            packer)
    else:
        train_steps = make_train_steps(agent)
    beat()
    replay = ReplayConnection(address, agent.collect_data_spec, params.batch_size, should_stop,
                              log, layout)
    policy_variables = agent.collect_policy.variables()
    replay.weights.publish(policy_variables, start_step)

    @tf.function
    def entropy_estimate(time_steps):
        _, log_pi = agent._actions_and_log_probs(time_steps, training=False)  # noqa: SLF001
        return -tf.reduce_mean(log_pi)

    writer = tf.summary.create_file_writer(str(paths.tensorboard(C.TRAIN_TB_DIR)))
    runtime.freeze_heap()
    status_path = paths.status / f"{C.LEARNER}.json"
    iteration = start_step // params.num_steps_per_iter
    log_trigger = IntervalTrigger(params.log_period_itrs, iteration)
    ckpt_trigger = IntervalTrigger(params.checkpoint_period_itrs, iteration)
    meter = runtime.RateMeter(start_step)
    loss_info = None

    def save_checkpoint():
        step = int(train_step.numpy())
        checkpointer.save(global_step=step)
        policy_ckpt_saver.save_checkpoint(
            str(paths.policies / "checkpoints" / f"policy_checkpoint_{step:010d}"))
        try:
            replay_path = replay.checkpoint(C.REPLAY_CHECKPOINTS_TO_KEEP)
            log.info("checkpoint at train step %d (replay buffer: %s)", step, replay_path)
        except Exception as exc:  # the server may be down: the agent checkpoint stands
            log.warning("checkpoint at train step %d; replay buffer checkpoint failed: %s",
                        step, exc)
        beat()

    def take_in() -> None:
        """Move the blocks waiting in the experience queue into the replay memory."""
        # With samples_per_insert one block at a time, up to the limiter's slack.
        blocks = DRAIN_MAX_BLOCKS if limit.spi is None else 1
        while not should_stop() and limit.may_take_in(memory.inserted,
                                                      int(train_step.numpy())):
            rows = on_server(lambda: replay_memory.drain_queue(replay.client, blocks))
            if rows is None:
                return
            memory.add(rows)
            if limit.spi is None:
                return

    def train(n: int) -> None:
        """Up to n gradient steps; returns early while data is short or the server is away."""
        nonlocal loss_info
        if memory is not None:
            take_in()
            k = limit.steps_allowed(int(memory.size.numpy()), memory.inserted,
                                    int(train_step.numpy()), n)
            if k:
                loss_info = train_steps(tf.constant(k, dtype=tf.int64))
            else:
                time.sleep(0.1)  # data is short
            beat()
            return
        try:
            loss_info = train_steps(tf.constant(n, dtype=tf.int64), replay.iterator)
        except tf.errors.OutOfRangeError:  # no sample within the timeout: data is short
            replay.new_iterator()
        except tf.errors.OpError as exc:
            if replay.server_alive():
                raise
            reconnect(exc)
        beat()

    def reconnect(exc: Exception) -> None:
        log.warning("replay server unreachable (%s); waiting for it to come back",
                    type(exc).__name__)
        replay.reconnect()
        replay.weights.publish(policy_variables, int(train_step.numpy()))
        log.info("reconnected to the replay server")

    def on_server(call, default=None):
        """A replay client call between training calls. If the server has gone away,
        wait for it, reconnect and return `default`; if it is already back (a quick
        restart broke the call), reconnect and make the call once more. While
        stopping, return `default`: SLURM signals every program at once, and the
        learner must still write its checkpoint when the server has gone first."""
        try:
            return call()
        except Exception as exc:  # Reverb's client errors
            if should_stop():
                return default
            restarted = replay.server_alive()
            reconnect(exc)
            if not restarted:
                return default
        return call()

    step = start_step
    with tf.summary.record_if(False):  # the agent's own summaries: we write ours below
        while step < target and not should_stop():
            iter_end = min((step // params.num_steps_per_iter + 1) * params.num_steps_per_iter,
                           target)
            while step < iter_end and not should_stop():
                train(min(MAX_STEPS_PER_CALL, iter_end - step))
                step = int(train_step.numpy())
            if step < iter_end:
                break  # stop requested mid-iteration
            iteration = step // params.num_steps_per_iter
            if step < target:  # the target step is published only once training is complete
                on_server(lambda s=step: replay.weights.publish(policy_variables, s))
            if (log_trigger(iteration) or step >= target) and loss_info is not None:
                grad_rate = meter.rate(step)
                try:
                    batch = memory_batch() if memory is not None else next(replay.iterator)
                    entropy = float(entropy_estimate(batch_time_steps(batch)))
                except tf.errors.OpError:
                    entropy = float("nan")
                if memory is not None:
                    replay_size = int(memory.size.numpy())
                else:
                    replay_size = on_server(
                        lambda: replay.client.server_info()[C.EXPERIENCE_TABLE].current_size,
                        -1)
                extra = loss_info.extra
                alpha = float(tf.exp(agent._log_alpha))  # noqa: SLF001
                with writer.as_default(step=step), tf.summary.record_if(True):
                    tf.summary.scalar(C.M_ACTOR_LOSS, extra.actor_loss)
                    tf.summary.scalar(C.M_CRITIC_LOSS, extra.critic_loss)
                    tf.summary.scalar(C.M_ALPHA_LOSS, extra.alpha_loss)
                    tf.summary.scalar(C.M_ALPHA, alpha)
                    tf.summary.scalar(C.M_ENTROPY, entropy)
                    tf.summary.scalar(C.M_GRAD_STEPS_PER_SEC, grad_rate)
                    tf.summary.scalar(C.M_REPLAY_SIZE, replay_size)
                writer.flush()
                log.info("iteration %d train step %d/%d: critic loss %.4g, actor loss %.4g, "
                         "alpha %.3g, %.1f grad steps/s, replay size %d",
                         iteration, step, target, float(extra.critic_loss),
                         float(extra.actor_loss), alpha, grad_rate, replay_size)
                runtime.write_json_atomic(status_path, {
                    "train_step": step, "target": target, "iteration": iteration,
                    "grad_steps_per_sec": grad_rate, "replay_size": replay_size,
                    "time": time.time(), "pid": os.getpid(),
                })
            if ckpt_trigger(iteration) and step < target:
                save_checkpoint()

    if step > start_step or step >= target or should_stop():
        save_checkpoint()
    if memory is not None:
        memory.close()
    if step >= target:
        final = paths.policies / "final"
        export_policy(agent.collect_policy, train_step, final / C.COLLECT_POLICY)
        export_policy(greedy, train_step, final / C.GREEDY_POLICY)
        runtime.write_json_atomic(paths.complete, {"train_step": step, "time": time.time()})
        replay.weights.publish(policy_variables, step)  # last: workers see the target step
        log.info("training complete at train step %d", step)
    else:
        log.info("stopped (%s) at train step %d", getattr(should_stop, "signal_name", None), step)
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--address", required=True, help="host:port of the replay server")
    args = parser.parse_args(argv)
    runtime.die_with_parent()
    log = runtime.setup_logging(C.LEARNER)
    stop = runtime.StopFlag().install()
    threads = runtime.configure_threads()
    runtime.log_placement(log, threads)
    paths, params, settings = runtime.load_experiment(args.exp_dir)
    heartbeat = runtime.Heartbeat(paths.status / f"{C.LEARNER}.heartbeat")
    try:
        run_learner(params, paths, args.address, stop, log, heartbeat,
                    capacity=int(settings["replay_capacity"]))
    except builders.StopRequested:
        log.info("stopped before training started")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
