"""A collect/eval worker program.

`run_worker` is a short loop over the named steps of `Worker`: it seeds the
buffer with its share of uniform-random actions (new experiments only), then
rounds of: refresh the weights, apply the curriculum, evaluate the greedy policy
when an eval period has passed, collect `n_train_episodes_per_iter` episodes per
collect env into Reverb, summarise. It stops when the learner publishes the
target train step and the experiment is marked complete, after a final evaluation.

A worker steps its `num_envs_per_worker` collect envs in lockstep with one
policy call for all of them; the default SAC actor network runs in numpy
(`actors.NumpyActor`), any other in TensorFlow. Evaluation runs the greedy
policy on one env: the same numpy network's mode for the default actor network,
else the exported greedy policy. Every part it works with comes from the
`builder.Builder` of its experiment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np

from tfagents_system import process
from tfagents_system.actors import NumpyActor, RandomActor
from tfagents_system.builder import COLLECT, EVAL, Builder, warmup_for_worker, worker_env_seeds
from tfagents_system.collection import Collector, EpisodeStats, TaskMetrics, play_episode
from tfagents_system.core import constants as C
from tfagents_system.core.errors import StopRequested
from tfagents_system.core.records import WorkerStatus
from tfagents_system.core.triggers import IntervalTrigger, RateMeter
from tfagents_system.replay.auth import ForgedItem, variable_specs
from tfagents_system.replay.client import WeightsExchange


def wait_for_policy(path, should_stop) -> None:
    """Wait for an exported policy's READY sentinel."""
    while not (path / C.POLICY_READY).exists():
        if should_stop():
            raise StopRequested()
        time.sleep(0.5)


class Worker:
    """A worker's state and its named steps (see `run_worker`)."""

    def __init__(self, builder: Builder, address: str, worker_index: int, num_workers: int,
                 should_stop, log, heartbeat=None):
        self.builder = builder
        self.params, self.paths, self.log = builder.params, builder.paths, log
        self.index, self.num_workers = worker_index, num_workers
        self.name = C.worker_name(worker_index)
        self.beat = heartbeat.beat if heartbeat is not None else (lambda: None)
        self._stop_requested = should_stop
        self.target = self.params.total_train_steps
        self.collect_seed = worker_env_seeds(self.params, worker_index)[0]
        self.collect_envs, self.eval_env = builder.worker_envs(worker_index, log)
        self.applier = builder.curriculum(self.collect_envs, self.eval_env, log)
        self.replay_format = builder.replay_format()
        # Inserts may block on the rate limiter once the learner has finished: give up then.
        self.link = builder.writer_link(
            address, self.replay_format, len(self.collect_envs), self.should_stop,
            lambda: self.should_stop() or self.paths.complete.exists(), log, self.name)
        self._restore_counters()
        self.collect_tb = builder.summary_writer(C.COLLECT_TB_DIR, self.name)
        self.eval_tb = builder.summary_writer(C.EVAL_TB_DIR, self.name)
        self.task_metrics = TaskMetrics(self.params, C.COLLECT_METRICS_WINDOW)
        self.relabel = builder.hindsight(self.collect_envs, worker_index)
        self.collector = Collector(self.collect_envs, self.stats, self.beat, self.should_stop,
                                   self.task_metrics)
        self.eval_trigger = IntervalTrigger(self.params.eval_period_itrs, self.evaluate)
        self.actor = self.eval_policy = None
        self.variable_lists: list = []
        self.last_eval_step = -1
        self.train_step_seen = 0
        self._stale_logged = False
        self._waiting_logged = False

    def should_stop(self) -> bool:
        """Polled about every second by every wait: a heartbeat too."""
        self.beat()
        return self._stop_requested()

    def _restore_counters(self) -> None:
        """A restarted worker continues its counters: its TensorBoard steps never go back."""
        previous = WorkerStatus.read_or_none(self.paths.status_file(self.name), self.log)
        self.stats = EpisodeStats(len(self.collect_envs))
        self.stats.env_steps = 0 if previous is None else int(previous.env_steps)
        self.status = WorkerStatus(os.getpid(), self.stats.env_steps,
                                   0 if previous is None else int(previous.episodes))

    def _write_status(self, **changes) -> None:
        self.status = dataclasses.replace(self.status, **changes)
        self.status.write(self.paths.status_file(self.name))

    # --- the steps ---

    def _refuse(self, exc: ForgedItem) -> None:
        """Weights that are not the learner's (or none): logged, the first and every
        100th, and when the refusals have lasted `C.STALE_WEIGHTS_S` (in the status too)."""
        gate = self.link.gate
        total = gate.rejected.total
        stale = self._refusing_for() >= C.STALE_WEIGHTS_S
        if total == 1 or total % 100 == 0 or (stale and not self._stale_logged):
            self.log.warning("refused weights from the replay server (%s; %s so far): "
                             "acting with the weights of train step %d%s", exc,
                             gate.rejected.describe(), self.train_step_seen,
                             f"; refusing for {self._refusing_for():.0f}s" if stale else "")
            self._stale_logged = stale

    def _refusing_for(self) -> float:
        """Seconds since the worker last accepted weights, while it refuses them (0 if
        it does not)."""
        since = self.link.gate.refused_since
        return 0.0 if since is None else max(0.0, time.time() - since)

    def start(self) -> int:
        """Wait for the learner's weights, open the writers; the train step."""
        self.link.weights.wait_until_available(self.should_stop)
        while True:
            try:
                _, train_step, _ = self.link.weights.fetch()
                break
            except ForgedItem as exc:  # wait for the learner's next publication
                self._refuse(exc)
                if self.should_stop():
                    raise StopRequested() from None
                time.sleep(0.5)
        self.train_step_seen = train_step
        self.collector.writers = self.relabel(self.link.open_writers())
        self.log.info("%s", self.replay_format.describe())
        return train_step

    def warm_up(self, train_step: int) -> None:
        """A new experiment's share of uniform-random actions."""
        warmup = warmup_for_worker(self.params, self.num_workers, self.index)
        self.applier.apply(COLLECT, train_step // self.params.num_steps_per_iter)
        if train_step != 0 or not any(warmup.values()):
            return
        self.log.info("seeding the buffer with uniform random actions: %s",
                      ", ".join(f"{v} {k}" for k, v in warmup.items() if v))
        try:
            self.collector.run(RandomActor(self.collect_envs[0].action_spec(),
                                           self.collect_seed), **warmup)
        except StopRequested:
            if self.should_stop():
                raise  # else training completed during the warm-up: evaluate and finish
        self.stats.pop_finished()
        self.task_metrics.clear()

    def load_policies(self) -> None:
        """The collect actor and the evaluation policy, once the learner exported them."""
        wait_for_policy(self.paths.policy(C.COLLECT_POLICY), self.should_stop)
        wait_for_policy(self.paths.policy(C.GREEDY_POLICY), self.should_stop)
        self.actor, collect_variables = self.builder.collect_actor(
            self.collect_envs[0], self.collect_seed, self.log)
        self.eval_policy, eval_variables = self.builder.eval_policy(self.actor)
        self.variable_lists = [v for v in (eval_variables, collect_variables) if v]
        self.link.gate.expect(variable_specs(self.variable_lists[0]) if self.variable_lists
                              else self.actor.variable_specs)
        self.meter = RateMeter(self.stats.env_steps)  # collection speed from here
        process.freeze_heap()

    def refresh_weights(self) -> tuple[int, float]:
        """Act with the latest published weights from now on; (their train step, now).
        Weights that are not the learner's are refused: the worker goes on with its own."""
        try:
            arrays, train_step, publication = self.link.weights.fetch()
        except ForgedItem as exc:
            self._refuse(exc)
            return self.train_step_seen, time.time()
        self.link.weights.acted(publication)  # recorded before the worker acts with them
        WeightsExchange.assign(arrays, self.variable_lists)
        if isinstance(self.actor, NumpyActor):
            self.actor.set_weights(arrays)
        self._stale_logged = False
        self.train_step_seen = train_step
        return train_step, time.time()

    def wait_for_learner(self, train_step: int) -> None:
        """Weights at the target step while training is not marked complete: published
        by an earlier run of the learner (kept in a replay checkpoint) or by this one on
        its way to finishing. Not a reason to stop: wait for its next publication."""
        if not self._waiting_logged:
            self._waiting_logged = True
            self.log.info("weights at the target train step %d but training is not marked "
                          "complete: waiting for the learner", train_step)
        if self.should_stop():
            raise StopRequested()
        time.sleep(0.5)

    def evaluate(self, step: int) -> None:
        """`n_eval_episodes` greedy episodes on the eval env, to TensorBoard and the log."""
        if self.params.n_eval_episodes == 0 or step == self.last_eval_step:
            return
        import tensorflow as tf

        self.applier.apply(EVAL, step // self.params.num_steps_per_iter)
        task_metrics = TaskMetrics(self.params)
        results = []
        for _ in range(self.params.n_eval_episodes):
            results.append(play_episode(self.eval_env, self.eval_policy, self.should_stop))
            task_metrics.record(self.eval_env)
        returns = [r for r, _ in results]
        mean_return = float(np.mean(returns))
        metrics = task_metrics.means()
        with self.eval_tb.as_default(step=step):
            tf.summary.scalar(C.M_EVAL_RETURN, mean_return)
            tf.summary.scalar(C.M_EVAL_LENGTH, float(np.mean([n for _, n in results])))
            for name, value in metrics.items():
                tf.summary.scalar(f"{C.M_EVAL_METRIC_PREFIX}{name}", value)
        self.eval_tb.flush()
        self.last_eval_step = step
        self._write_status(eval_return=mean_return, eval_train_step=step, eval_metrics=metrics,
                           time=time.time())
        self.log.info("eval at train step %d: mean return %.2f over %d episodes "
                      "(min %.2f, max %.2f)%s", step, mean_return, len(returns), min(returns),
                      max(returns), "".join(f", {k} {v:.3g}" for k, v in metrics.items()))

    def collect(self) -> bool:
        """A round's episodes with the collect policy; False if training completed while
        an episode waited to be written."""
        episodes = self.params.n_train_episodes_per_iter * len(self.collect_envs)
        try:
            self.collector.run(self.actor, episodes)
        except StopRequested:
            if self.should_stop():
                raise
            return False
        return True

    def summarise(self, train_step: int, weights_time: float, stage: dict) -> None:
        """The round's episodes, task metrics, speed and curriculum to TensorBoard and the
        status file."""
        import tensorflow as tf

        stats = self.stats
        rate = self.meter.rate(stats.env_steps)
        finished = stats.pop_finished()
        metrics = self.task_metrics.new_means()
        with self.collect_tb.as_default(step=stats.env_steps):
            for episode_return, length in finished:
                tf.summary.scalar(C.M_RETURN, episode_return)
                tf.summary.scalar(C.M_EPISODE_LENGTH, length)
            for name, value in metrics.items():
                tf.summary.scalar(f"{C.M_COLLECT_METRIC_PREFIX}{name}", value)
            tf.summary.scalar(C.M_ENV_STEPS, stats.env_steps)
            tf.summary.scalar(C.M_ENV_STEPS_PER_SEC, rate)
            for param, value in stage.items():
                tf.summary.scalar(f"{C.M_CURRICULUM_PREFIX}{param}", value)
        self._write_status(env_steps=stats.env_steps,
                           episodes=self.status.episodes + len(finished),
                           env_steps_per_sec=rate, train_step_seen=train_step, time=time.time(),
                           curriculum=stage, weights_time=weights_time,
                           weights_refused=dict(self.link.gate.rejected.counts),
                           weights_refused_s=round(self._refusing_for(), 1),
                           last_return=finished[-1][0] if finished else self.status.last_return,
                           collect_metrics=metrics or self.status.collect_metrics)

    def one_round(self) -> bool:
        """Refresh weights, maybe evaluate, collect, summarise; True once training is
        complete (after the final evaluation)."""
        train_step, weights_time = self.refresh_weights()
        if train_step >= self.target:
            if self.paths.complete.is_file():
                self.evaluate(train_step)
                return True
            self.wait_for_learner(train_step)
            return False
        iteration = train_step // self.params.num_steps_per_iter
        stage = self.applier.apply(COLLECT, iteration)
        self.eval_trigger(iteration, train_step)
        if not self.collect():
            return False
        self.summarise(train_step, weights_time, stage)
        if self.should_stop():
            raise StopRequested()
        return False

    def reconnect(self, exc: Exception) -> None:
        """The server went away: reconnect, reopen the writers, restart the episodes."""
        self.link.reconnect(exc)
        self.collector.writers = self.relabel(self.link.writers)
        self.collector.reset()

    def finish(self) -> None:
        """The final status; the worker is done."""
        self.collect_tb.flush()
        self._write_status(env_steps=self.stats.env_steps, time=time.time(), finished=True)
        self.log.info("done: %d env steps, %d episodes", self.stats.env_steps,
                      self.status.episodes)


def run_worker(builder: Builder, address: str, worker_index: int, num_workers: int,
               should_stop, log, heartbeat=None) -> None:
    """Collect and evaluate until the learner publishes the target train step."""
    worker = Worker(builder, address, worker_index, num_workers, should_stop, log, heartbeat)
    try:
        worker.warm_up(worker.start())
        worker.load_policies()
        while True:
            try:
                if worker.one_round():
                    break
            except StopRequested:
                raise
            except Exception as exc:  # a lost replay server is survivable; anything else is not
                if worker.link.alive():
                    raise
                worker.reconnect(exc)
    finally:  # a block writer sends its last, partly filled block
        worker.link.close()
    worker.finish()


def main(argv=None) -> int:
    """The supervised worker program."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--address", required=True, help="host:port of the replay server")
    parser.add_argument("--worker_index", type=int, required=True)
    parser.add_argument("--num_workers", type=int, required=True)
    args = parser.parse_args(argv)

    def work(program: process.Program) -> None:
        run_worker(Builder(program.params, program.paths, program.settings), args.address,
                   args.worker_index, args.num_workers, program.stop, program.log,
                   program.heartbeat)

    return process.run_program(C.worker_name(args.worker_index), args.exp_dir, work,
                               lambda params: worker_env_seeds(params, args.worker_index)[0])


if __name__ == "__main__":
    raise SystemExit(main())
