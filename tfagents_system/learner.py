"""The learner program: SAC gradient steps on batches of replayed experience.

`run_learner` is a short loop over the named steps of `Learner`: train an
iteration (`num_steps_per_iter` gradient steps, in compiled chunks, on batches
from the experiment's `DataSource`), publish the policy weights and the train
step, and on its triggers write summaries and checkpoints. It finishes with a
final checkpoint and a full policy export when the train step reaches
`num_iter * num_steps_per_iter`. A fine-tuned experiment's learner without a
checkpoint of its own first loads the parts its `init_from.json` names (`finetune`).
"""

from __future__ import annotations

import argparse
import os
import time

from tfagents_system import behaviour_cloning, builders, checkpoint_recovery, finetune, runtime
from tfagents_system import constants as C
from tfagents_system.paths import ExperimentPaths
from tfagents_system.replay import demo_store
from tfagents_system.replay.auth import Signer, read_key
from tfagents_system.replay.checkpoints import ReplayCheckpoints
from tfagents_system.replay.client import ServerLink
from tfagents_system.replay.layouts import resolve_layout
from tfagents_system.replay.sources import make_data_source
from tfagents_system.triggers import IntervalTrigger

# Gradient steps per compiled call: bounds how long a stop request waits.
MAX_STEPS_PER_CALL = 200


def batch_time_steps(batch):
    """The (first) time steps of a sampled batch, in either layout."""
    from tf_agents.trajectories import trajectory

    from tfagents_system.replay.packing import SequenceBatch

    if isinstance(batch, SequenceBatch):
        return batch.experience.time_step
    if isinstance(batch, trajectory.Transition):
        return batch.time_step
    return trajectory.to_transition(batch)[0]


class Learner:
    """The learner's state and its named steps (see `run_learner`)."""

    def __init__(self, params, paths: ExperimentPaths, address: str, should_stop, log,
                 heartbeat=None, capacity: int | None = None):
        import tensorflow as tf
        from tf_agents.policies import greedy_policy
        from tf_agents.utils import common

        from tfagents_system import prior

        self.params, self.paths, self.log = params, paths, log
        self.should_stop = should_stop
        self.beat = heartbeat.beat if heartbeat is not None else (lambda: None)
        self.train_step = common.create_variable("train_step", 0, dtype=tf.int64)
        prior.use_copy(params, paths)  # a prior-regularized agent loads the experiment's copy
        self.agent = builders.make_agent(params, *builders.env_specs(params), self.train_step)
        own = checkpoint_recovery.choose_restorable(paths.checkpoints,
                                                    paths.checkpoints_damaged, log)
        self.checkpointer = builders.make_checkpointer(params, paths, self.agent,
                                                       self.train_step)
        if own is None:  # before the policies are exported and published
            finetune.initialize_agent(self.agent, paths, log)
        self.start_step = self.step
        self.target = params.total_train_steps
        log.info("%s at train step %d of %d", "resumed" if self.start_step else "starting",
                 self.start_step, self.target)
        self.greedy = greedy_policy.GreedyPolicy(self.agent.policy)
        self.policy_saver = builders.make_policy_saver(self.greedy, self.train_step)
        self.policy_variables = self.agent.collect_policy.variables()
        self._build_data_path(address, capacity)
        self.writer = builders.make_summary_writer(paths, C.TRAIN_TB_DIR)
        if own is None:
            self._warm_start()
        self.entropy = builders.make_entropy_estimate(self.agent)
        iteration = self.start_step // params.num_steps_per_iter
        self.log_trigger = IntervalTrigger(params.log_period_itrs, self.summarise, iteration)
        self.ckpt_trigger = IntervalTrigger(params.checkpoint_period_itrs, self.checkpoint,
                                            iteration)
        self.meter = runtime.RateMeter(self.start_step)
        self.loss_info = None
        self._summarised_at = None

    def _build_data_path(self, address: str, capacity: int | None) -> None:
        """Export the policies the workers wait for, choose the layout, connect."""
        self.export(self.paths.policy(C.COLLECT_POLICY), self.paths.policy(C.GREEDY_POLICY))
        if capacity is None:
            capacity = int(runtime.read_json(self.paths.settings)["replay_capacity"])
        # Before publishing: workers read the layout then.
        sequence = self.params.sequence
        layout = resolve_layout(self.paths, self.agent, self.log, capacity,
                                self.params.learner_keeps_replay, sequence,
                                self.params.n_step_returns)
        signer = Signer(read_key(self.paths.replay_key))
        self.link = ServerLink(address, self.should_stop, self.log, signer)
        self.replay_checkpoints = ReplayCheckpoints(self.paths)
        self.beat()
        self.source = make_data_source(layout, self.params, self.paths, capacity,
                                       self.agent.collect_data_spec, self.link,
                                       self.should_stop, self.log, sequence)
        finetune.import_replay(self.source, layout, self.paths, self.log)
        self.source = demo_store.with_demonstrations(self.source, self.params, self.paths,
                                                     self.agent.collect_data_spec, self.log)
        self.train_steps = builders.make_train_loop(self.agent, self.source.next_batch)
        self.link.on_reconnect(self.source.restart_sampling)
        self.link.on_reconnect(lambda: self.link.weights.publish(self.policy_variables,
                                                                 self.step))
        self.beat()

    def _warm_start(self) -> None:
        """A first start's behaviour cloning on the demonstrations (bc_warm_start_steps),
        then a checkpoint at train step 0 so that a restart does not repeat it, and the
        cloned collect policy exported to policies/bc_policy."""
        steps = int(self.params.bc_warm_start_steps)
        if not steps or not isinstance(self.source, demo_store.DemoMixSource):
            return
        behaviour_cloning.warm_start(self.agent, self.source.demo_batch, steps,
                                     self.params.actor_learning_rate, self.writer, self.log)
        self.checkpointer.save(global_step=self.step)
        # The cloned policy on its own, e.g. as another experiment's prior_policy.
        builders.export_policy(self.agent.collect_policy, self.train_step,
                               self.paths.policy(C.BC_POLICY))
        self.beat()

    @property
    def step(self) -> int:
        """The train step now."""
        return int(self.train_step.numpy())

    # --- the steps ---

    def publish(self) -> None:
        """Hand the policy weights and the train step to the workers."""
        step = self.step
        self.link.call(lambda: self.link.weights.publish(self.policy_variables, step))

    def train(self, n: int) -> None:
        """Up to n gradient steps; returns early while data is short or the server is away."""
        import tensorflow as tf

        self.source.take_in(self.step)
        allowed = self.source.steps_allowed(self.step, n)
        if allowed:
            try:
                self.loss_info = self.train_steps(tf.constant(allowed, dtype=tf.int64),
                                                  *self.source.loop_args())
            except tf.errors.OutOfRangeError:  # no sample within the timeout: data is short
                self.source.restart_sampling()
            except tf.errors.InvalidArgumentError as exc:
                if "inf or nan" not in str(exc):
                    raise
                what = next(line for line in str(exc).splitlines() if "inf or nan" in line)
                raise runtime.FatalError(
                    f"training became non-finite after train step {self.step} "
                    f"({what.strip()}); the checkpoints hold the last finite "
                    "weights: lower the learning rates or the reward scale, or check the "
                    "env's rewards, then relaunch") from None
            except tf.errors.OpError as exc:
                if self.link.alive():
                    raise
                self.link.reconnect(exc)
        self.beat()

    def train_iteration(self) -> bool:
        """Train to the end of the current iteration; False if a stop came first."""
        per_iter = self.params.num_steps_per_iter
        iter_end = min((self.step // per_iter + 1) * per_iter, self.target)
        while self.step < iter_end and not self.should_stop():
            self.train(min(MAX_STEPS_PER_CALL, iter_end - self.step))
        return self.step >= iter_end

    def end_iteration(self) -> None:
        """Publish the new weights; summaries and checkpoints on their triggers. Weights
        that are not finite are never published or checkpointed."""
        import tensorflow as tf

        if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in self.policy_variables):
            raise runtime.FatalError(f"the policy's weights are not finite at train step "
                                     f"{self.step}; the checkpoints hold the last finite ones")
        iteration = self.step // self.params.num_steps_per_iter
        if self.step < self.target:  # the target step is published only once complete
            self.publish()
        self.log_trigger(iteration)
        if self.step < self.target:
            self.ckpt_trigger(iteration)

    def summarise(self) -> None:
        """Losses, alpha, entropy, speed and replay size to TensorBoard, the log and
        the status file."""
        import tensorflow as tf

        if self.loss_info is None or self._summarised_at == self.step:
            return
        step, extra = self.step, self.loss_info.extra
        self._summarised_at = step
        rate = self.meter.rate(step)  # before the entropy's sample, which may wait
        values = {C.M_ACTOR_LOSS: float(extra.actor_loss),
                  C.M_CRITIC_LOSS: float(extra.critic_loss),
                  C.M_ALPHA_LOSS: float(extra.alpha_loss),
                  C.M_ALPHA: float(tf.exp(self.agent._log_alpha)),
                  C.M_ENTROPY: self._entropy(),
                  C.M_GRAD_STEPS_PER_SEC: rate,
                  C.M_REPLAY_SIZE: self.source.size(), **self.source.summaries()}
        if hasattr(extra, "divergence"):  # prior-regularized SAC (tfagents_system.prior)
            values[C.M_PRIOR_DIVERGENCE] = float(extra.divergence)
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self.writer.flush()
        iteration = step // self.params.num_steps_per_iter
        self.log.info("iteration %d train step %d/%d: critic loss %.4g, actor loss %.4g, "
                      "alpha %.3g, %.1f grad steps/s, replay size %d%s", iteration, step,
                      self.target, values[C.M_CRITIC_LOSS], values[C.M_ACTOR_LOSS],
                      values[C.M_ALPHA], values[C.M_GRAD_STEPS_PER_SEC],
                      values[C.M_REPLAY_SIZE],
                      f", prior divergence {values[C.M_PRIOR_DIVERGENCE]:.3g}"
                      if C.M_PRIOR_DIVERGENCE in values else "")
        runtime.write_json_atomic(self.paths.status_file(C.LEARNER), {
            "train_step": step, "target": self.target, "iteration": iteration,
            "grad_steps_per_sec": values[C.M_GRAD_STEPS_PER_SEC],
            "replay_size": values[C.M_REPLAY_SIZE], "time": time.time(), "pid": os.getpid()})

    def _entropy(self) -> float:
        import tensorflow as tf

        try:
            return float(self.entropy(batch_time_steps(self.source.sample())))
        except tf.errors.OpError:
            return float("nan")

    def checkpoint(self) -> None:
        """The agent's checkpoint, the greedy policy's weights, and Reverb's tables."""
        step = self.step
        self.checkpointer.save(global_step=step)
        self.policy_saver.save_checkpoint(str(self.paths.policy_checkpoint(step)))
        try:
            replay_path = self.link.checkpoint(self.replay_checkpoints, self.beat)
            self.log.info("checkpoint at train step %d (replay buffer: %s)", step, replay_path)
        except Exception as exc:  # the server may be down: the agent checkpoint stands
            self.log.warning("checkpoint at train step %d; replay buffer checkpoint failed: %s",
                             step, exc)
        self.beat()

    def export(self, collect_dir, greedy_dir) -> None:
        """Export the collect and greedy policies (SavedModels, READY sentinel last)."""
        builders.export_policy(self.agent.collect_policy, self.train_step, collect_dir)
        builders.export_policy(self.greedy, self.train_step, greedy_dir)
        self.beat()

    def finish(self) -> int:
        """Checkpoint; when the target is reached, export the final policies, mark the
        experiment complete and publish the target step (workers then finish)."""
        step = self.step
        if step >= self.target:
            self.summarise()
        if step > self.start_step or step >= self.target or self.should_stop():
            self.checkpoint()
        self.source.close()
        if step < self.target:
            self.log.info("stopped (%s) at train step %d",
                          getattr(self.should_stop, "signal_name", None), step)
            return step
        self.export(self.paths.final_policy(C.COLLECT_POLICY),
                    self.paths.final_policy(C.GREEDY_POLICY))
        runtime.write_json_atomic(self.paths.complete, {"train_step": step, "time": time.time()},
                                  durable=True)
        self.link.weights.publish(self.policy_variables, step)  # last: workers see the target
        self.log.info("training complete at train step %d", step)
        return step


def run_learner(params, paths: ExperimentPaths, address: str, should_stop, log,
                heartbeat=None, capacity: int | None = None) -> int:
    """Train until the target train step or a stop request; return the train step."""
    import tensorflow as tf

    learner = Learner(params, paths, address, should_stop, log, heartbeat, capacity)
    learner.publish()
    runtime.freeze_heap()
    with tf.summary.record_if(False):  # the agent's own summaries: the learner writes its own
        while learner.step < learner.target and not should_stop():
            if not learner.train_iteration():
                break  # stop requested mid-iteration
            learner.end_iteration()
        return learner.finish()


def main(argv=None) -> int:
    """The supervised learner program."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--address", required=True, help="host:port of the replay server")
    args = parser.parse_args(argv)
    program = runtime.start_program(C.LEARNER, args.exp_dir)
    runtime.seed_tensorflow(program.params.seed)
    try:
        run_learner(program.params, program.paths, args.address, program.stop, program.log,
                    program.heartbeat, capacity=int(program.settings["replay_capacity"]))
    except runtime.StopRequested:
        program.log.info("stopped before training started")
    except runtime.FatalError as exc:
        program.log.error("%s", exc)
        runtime.report_fatal(program.paths, C.LEARNER, exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
