"""The learner program: SAC gradient steps on batches of replayed experience.

`run_learner` is a short loop over the named steps of `Learner`: train an
iteration (`num_steps_per_iter` gradient steps, in compiled chunks, on batches
from the experiment's `DataSource`), publish the policy weights and the train
step, and on its triggers write summaries and checkpoints. It finishes with a
final checkpoint and a full policy export when the train step reaches
`num_iter * num_steps_per_iter`. Every part it works with comes from the
`builder.Builder` of its experiment.
"""

from __future__ import annotations

import argparse
import os
import time

from tfagents_system import process
from tfagents_system.agents.export import export_policy, policy_saver
from tfagents_system.builder import Builder
from tfagents_system.core import constants as C
from tfagents_system.core.batches import SequenceBatch
from tfagents_system.core.errors import FatalError
from tfagents_system.core.records import Completion, LearnerStatus
from tfagents_system.core.triggers import IntervalTrigger, RateMeter

# Gradient steps per compiled call: bounds how long a stop request waits.
MAX_STEPS_PER_CALL = 200


def batch_time_steps(batch):
    """The (first) time steps of a sampled batch, in any replay format."""
    from tf_agents.trajectories import trajectory

    if isinstance(batch, SequenceBatch):
        return batch.experience.time_step
    if isinstance(batch, trajectory.Transition):
        return batch.time_step
    return trajectory.to_transition(batch)[0]


class Learner:
    """The learner's state and its named steps (see `run_learner`)."""

    def __init__(self, builder: Builder, address: str, should_stop, log, heartbeat=None):
        import tensorflow as tf
        from tf_agents.policies import greedy_policy
        from tf_agents.utils import common

        from tfagents_system.agents.sac import entropy_estimate

        self.params, self.paths, self.log = builder.params, builder.paths, log
        self.should_stop = should_stop
        self.beat = heartbeat.beat if heartbeat is not None else (lambda: None)
        self.train_step = common.create_variable("train_step", 0, dtype=tf.int64)
        self.agent, self.checkpointer, restored = builder.restored_agent(self.train_step, log)
        self.start_step = self.step
        self.target = self.params.total_train_steps
        log.info("%s at train step %d of %d", "resumed" if self.start_step else "starting",
                 self.start_step, self.target)
        gpus = tf.config.list_logical_devices("GPU")
        log.info("networks on %s", ", ".join(d.name for d in gpus) if gpus else
                 "the CPU (TensorFlow sees no GPU; requirements-gpu.txt installs CUDA)")
        self.greedy = greedy_policy.GreedyPolicy(self.agent.policy)
        self.policy_saver = policy_saver(self.greedy, self.train_step)
        self.policy_variables = self.agent.collect_policy.variables()
        self._connect(builder, address)
        self.writer = builder.summary_writer(C.TRAIN_TB_DIR)
        if not restored:
            self._warm_start(builder.warm_start(self.agent, self.replay_format, self.writer,
                                                log))
        self.entropy = entropy_estimate(self.agent)
        iteration = self.start_step // self.params.num_steps_per_iter
        self.log_trigger = IntervalTrigger(self.params.log_period_itrs, self.summarise,
                                           iteration)
        self.ckpt_trigger = IntervalTrigger(self.params.checkpoint_period_itrs, self.checkpoint,
                                            iteration)
        self.meter = RateMeter(self.start_step)
        self.loss_info = None
        self._summarised_at = None

    def _connect(self, builder: Builder, address: str) -> None:
        """Export the policies the workers wait for, then reach the replay server and
        open the data source."""
        self.export(self.paths.policy(C.COLLECT_POLICY), self.paths.policy(C.GREEDY_POLICY))
        self.replay_format = builder.replay_format()
        self.log.info("%s", self.replay_format.describe())
        self.link = builder.server_link(address, self.should_stop, self.log)
        self.replay_checkpoints = builder.replay_checkpoints()
        self.beat()
        self.source = builder.data_source(self.replay_format, self.agent, self.link,
                                          self.should_stop, self.log)
        self.train_steps = builder.train_loop(self.agent, self.source)
        self.link.on_reconnect(self.source.restart_sampling)
        self.link.on_reconnect(lambda: self.link.weights.publish(self.policy_variables,
                                                                 self.step))
        self.beat()

    def _warm_start(self, warm_start) -> None:
        """A first start's behaviour cloning on the demonstrations (if the builder made
        one), then a checkpoint at train step 0 so that a restart does not repeat it, and
        the cloned collect policy exported to policies/bc_policy."""
        if warm_start is None:
            return
        warm_start()
        self.checkpointer.save(global_step=self.step)
        # The cloned policy on its own, e.g. as another experiment's prior_policy.
        export_policy(self.agent.collect_policy, self.train_step,
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
                if not self.source.sampling_failed(exc):  # else a stranger's item: counted
                    self._stop_if_non_finite(exc)
            except tf.errors.OpError as exc:
                if self.link.alive():
                    raise
                self.link.reconnect(exc)
        self.beat()

    def _stop_if_non_finite(self, exc: Exception) -> None:
        """A non-finite loss stops the run (FatalError); any other error is raised."""
        if "inf or nan" not in str(exc):
            raise exc
        what = next(line for line in str(exc).splitlines() if "inf or nan" in line)
        raise FatalError(
            f"training became non-finite after train step {self.step} "
            f"({what.strip()}); the checkpoints hold the last finite "
            "weights: lower the learning rates or the reward scale, or check the "
            "env's rewards, then relaunch") from None

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
            raise FatalError(f"the policy's weights are not finite at train step "
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

        from tfagents_system.agents.sac import loss_scalars

        if self.loss_info is None or self._summarised_at == self.step:
            return
        step = self._summarised_at = self.step
        rate = self.meter.rate(step)  # before the entropy's sample, which may wait
        values = {**loss_scalars(self.agent, self.loss_info), C.M_ENTROPY: self._entropy(),
                  C.M_GRAD_STEPS_PER_SEC: rate, C.M_REPLAY_SIZE: self.source.size(),
                  **self.source.summaries()}
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        self.writer.flush()
        iteration = step // self.params.num_steps_per_iter
        self.log.info("iteration %d train step %d/%d: critic loss %.4g, actor loss %.4g, "
                      "alpha %.3g, %.1f grad steps/s, replay size %d%s", iteration, step,
                      self.target, values[C.M_CRITIC_LOSS], values[C.M_ACTOR_LOSS],
                      values[C.M_ALPHA], rate, values[C.M_REPLAY_SIZE],
                      f", prior divergence {values[C.M_PRIOR_DIVERGENCE]:.3g}"
                      if C.M_PRIOR_DIVERGENCE in values else "")
        LearnerStatus(step, self.target, iteration, rate, values[C.M_REPLAY_SIZE], time.time(),
                      os.getpid(), self.source.rejected()).write(
                          self.paths.status_file(C.LEARNER))

    def _entropy(self) -> float:
        import tensorflow as tf

        try:
            return float(self.entropy(batch_time_steps(self.source.sample())))
        except tf.errors.OpError as exc:
            self.source.sampling_failed(exc)  # an item of another structure: counted
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
        export_policy(self.agent.collect_policy, self.train_step, collect_dir)
        export_policy(self.greedy, self.train_step, greedy_dir)
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
        Completion(step).write(self.paths.complete, durable=True)
        self.link.weights.publish(self.policy_variables, step)  # last: workers see the target
        self.log.info("training complete at train step %d", step)
        return step


def run_learner(builder: Builder, address: str, should_stop, log, heartbeat=None) -> int:
    """Train until the target train step or a stop request; return the train step."""
    import tensorflow as tf

    learner = Learner(builder, address, should_stop, log, heartbeat)
    learner.publish()
    process.freeze_heap()
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
    return process.run_program(C.LEARNER, args.exp_dir, lambda program: run_learner(
        Builder(program.params, program.paths, program.settings), args.address, program.stop,
        program.log, program.heartbeat), seed=lambda params: params.seed)


if __name__ == "__main__":
    raise SystemExit(main())
