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
else the exported greedy policy.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from tfagents_system import builders, runtime
from tfagents_system import constants as C
from tfagents_system.actors import NumpyActor, RandomActor
from tfagents_system.collection import Collector, EpisodeStats, TaskMetrics, play_episode
from tfagents_system.curriculum import CurriculumApplier, check_env_supports, parse_curriculum
from tfagents_system.paths import ExperimentPaths
from tfagents_system.replay.auth import ForgedItem, Signer, read_key
from tfagents_system.replay.client import ServerLink, WeightsExchange
from tfagents_system.replay.layouts import wait_for_layout
from tfagents_system.replay.writers import make_experience_writer
from tfagents_system.runtime import StopRequested
from tfagents_system.triggers import IntervalTrigger


def wait_for_policy(path, should_stop) -> None:
    """Wait for an exported policy's READY sentinel."""
    while not (path / C.POLICY_READY).exists():
        if should_stop():
            raise StopRequested()
        time.sleep(0.5)


class WorkerLink(ServerLink):
    """A worker's connection to the replay server, with its experience writers (one
    per collect env), reopened when the server restarts."""

    def __init__(self, address: str, should_stop, log, signer: Signer, give_up_writing):
        self._give_up_writing = give_up_writing
        self.writers: list = []
        self._writer_args = None
        super().__init__(address, should_stop, log, signer)

    def on_connect(self) -> None:
        if self._writer_args is not None:
            self.open_writers(*self._writer_args)

    def open_writers(self, layout: str, observation_spec, action_spec, count: int,
                     sequence: tuple[int, int] | None = None,
                     n_step: tuple[int, float] | None = None) -> list:
        """One experience writer of `layout` per collect env (of replay windows when
        `sequence` is given, of n-step transitions with `n_step`)."""
        self._writer_args = (layout, observation_spec, action_spec, count, sequence, n_step)
        self.writers = [make_experience_writer(self.client, layout, observation_spec,
                                               action_spec, self._give_up_writing, self.signer,
                                               sequence, n_step)
                        for _ in range(count)]
        return self.writers

    def close(self) -> None:
        """Close the writers (a block writer sends its last, partly filled block)."""
        for writer in self.writers:
            writer.close()


class Worker:
    """A worker's state and its named steps (see `run_worker`)."""

    def __init__(self, params, paths: ExperimentPaths, address: str, worker_index: int,
                 num_workers: int, should_stop, log, heartbeat=None):
        self.params, self.paths, self.log = params, paths, log
        self.index, self.num_workers = worker_index, num_workers
        self.name = C.worker_name(worker_index)
        self.beat = heartbeat.beat if heartbeat is not None else (lambda: None)
        self._stop_requested = should_stop
        self.target = params.total_train_steps
        collect_seeds = builders.collect_env_seeds(params, worker_index)
        self.collect_seed, eval_seed = builders.worker_env_seeds(params, worker_index)
        self.collect_envs = [builders.make_env(params, builders.COLLECT, seed, worker_index)
                             for seed in collect_seeds]
        self.eval_env = builders.make_env(params, builders.EVAL, eval_seed, worker_index)
        log.info("collect env seed%s %s, eval env seed %d", "s" if len(collect_seeds) > 1 else "",
                 ", ".join(map(str, collect_seeds)), eval_seed)
        self.applier = self._curriculum()
        # Inserts may block on the rate limiter once the learner has finished: give up then.
        self.link = WorkerLink(address, self.should_stop, log,
                               Signer(read_key(paths.replay_key)),
                               lambda: self.should_stop() or paths.complete.exists())
        self._restore_counters()
        self.collect_tb = builders.make_summary_writer(paths, C.COLLECT_TB_DIR, self.name)
        self.eval_tb = builders.make_summary_writer(paths, C.EVAL_TB_DIR, self.name)
        self.task_metrics = TaskMetrics(params, C.COLLECT_METRICS_WINDOW)
        self.collector = Collector(self.collect_envs, self.stats, self.beat, self.should_stop,
                                   self.task_metrics)
        self.eval_trigger = IntervalTrigger(params.eval_period_itrs, self.evaluate)
        self.actor = self.eval_policy = None
        self.variable_lists: list = []
        self.last_eval_step = -1
        self.train_step_seen = 0
        self._refused = 0
        self._waiting_logged = False

    def should_stop(self) -> bool:
        """Polled about every second by every wait: a heartbeat too."""
        self.beat()
        return self._stop_requested()

    def _curriculum(self) -> CurriculumApplier:
        curriculum = parse_curriculum(self.params.env_config, str(self.paths.config))
        for env in self.collect_envs:
            check_env_supports(curriculum, env, builders.COLLECT, str(self.paths.config))
        check_env_supports(curriculum, self.eval_env, builders.EVAL, str(self.paths.config))
        return CurriculumApplier(curriculum, {builders.COLLECT: self.collect_envs,
                                              builders.EVAL: self.eval_env}, self.log)

    def _restore_counters(self) -> None:
        """A restarted worker continues its counters: its TensorBoard steps never go back."""
        previous = runtime.read_json_or_none(self.paths.status_file(self.name), self.log) or {}
        self.stats = EpisodeStats(len(self.collect_envs))
        self.stats.env_steps = int(previous.get("env_steps", 0))
        self.status = {"pid": os.getpid(), "env_steps": self.stats.env_steps,
                       "episodes": int(previous.get("episodes", 0))}

    # --- the steps ---

    def _refuse(self, exc: ForgedItem) -> None:
        """A weights item that is not the learner's: logged (the first and every 100th)."""
        self._refused += 1
        if self._refused == 1 or self._refused % 100 == 0:
            self.log.warning("refused weights from the replay server (%s; %d so far): "
                             "acting with the weights of train step %d", exc, self._refused,
                             self.train_step_seen)

    def start(self) -> int:
        """Wait for the learner's weights and layout, open the writers; the train step."""
        self.link.weights.wait_until_available(self.should_stop)
        while True:
            try:
                _, train_step = self.link.weights.fetch()
                break
            except ForgedItem as exc:  # wait for the learner's next publication
                self._refuse(exc)
                if self.should_stop():
                    raise StopRequested() from None
                time.sleep(0.5)
        self.train_step_seen = train_step
        layout, sequence, n_step = wait_for_layout(self.paths, self.should_stop)
        env = self.collect_envs[0]
        self.collector.writers = self.link.open_writers(
            layout, env.observation_spec(), env.action_spec(), len(self.collect_envs), sequence,
            n_step)
        rows = "" if sequence is None else (
            f" of windows of {sequence[1]}+{sequence[0]} steps (burn-in + trained)")
        rows += "" if n_step is None else f" of {n_step[0]}-step transitions"
        self.log.info("experience items: %s layout%s", layout, rows)
        return train_step

    def warm_up(self, train_step: int) -> None:
        """A new experiment's share of uniform-random actions."""
        warmup = builders.warmup_for_worker(self.params, self.num_workers, self.index)
        self.applier.apply(builders.COLLECT, train_step // self.params.num_steps_per_iter)
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
        self.actor, collect_variables = builders.make_collect_actor(
            self.params, self.paths, self.collect_envs[0], self.collect_seed, self.log)
        self.eval_policy, eval_variables = builders.make_eval_policy(self.paths, self.actor)
        self.variable_lists = [v for v in (eval_variables, collect_variables) if v]
        self.meter = runtime.RateMeter(self.stats.env_steps)  # collection speed from here
        runtime.freeze_heap()

    def refresh_weights(self) -> tuple[int, float]:
        """Act with the latest published weights from now on; (their train step, now).
        Weights that are not the learner's are refused: the worker goes on with its own."""
        try:
            arrays, train_step = self.link.weights.fetch()
        except ForgedItem as exc:
            self._refuse(exc)
            return self.train_step_seen, time.time()
        WeightsExchange.assign(arrays, self.variable_lists)
        if isinstance(self.actor, NumpyActor):
            self.actor.set_weights(arrays)
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

        self.applier.apply(builders.EVAL, step // self.params.num_steps_per_iter)
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
        self.status.update(eval_return=mean_return, eval_train_step=step, eval_metrics=metrics)
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
        self.status.update(env_steps=stats.env_steps,
                           episodes=self.status["episodes"] + len(finished),
                           env_steps_per_sec=rate, train_step_seen=train_step, time=time.time(),
                           curriculum=stage, weights_time=weights_time)
        if finished:
            self.status["return"] = finished[-1][0]
        if metrics:
            self.status["collect_metrics"] = metrics
        runtime.write_json_atomic(self.paths.status_file(self.name), self.status)

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
        stage = self.applier.apply(builders.COLLECT, iteration)
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
        self.collector.writers = self.link.writers
        self.collector.reset()

    def finish(self) -> None:
        """The final status; the worker is done."""
        self.collect_tb.flush()
        self.status.update(env_steps=self.stats.env_steps, time=time.time(), finished=True)
        runtime.write_json_atomic(self.paths.status_file(self.name), self.status)
        self.log.info("done: %d env steps, %d episodes", self.stats.env_steps,
                      self.status["episodes"])


def run_worker(params, paths: ExperimentPaths, address: str, worker_index: int,
               num_workers: int, should_stop, log, heartbeat=None) -> None:
    """Collect and evaluate until the learner publishes the target train step."""
    worker = Worker(params, paths, address, worker_index, num_workers, should_stop, log,
                    heartbeat)
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
    program = runtime.start_program(C.worker_name(args.worker_index), args.exp_dir)
    runtime.seed_tensorflow(builders.worker_env_seeds(program.params, args.worker_index)[0])
    try:
        run_worker(program.params, program.paths, args.address, args.worker_index,
                   args.num_workers, program.stop, program.log, program.heartbeat)
    except StopRequested:
        program.log.info("stopped (%s)", program.stop.signal_name)
    except runtime.FatalError as exc:  # a restart would fail the same way
        program.log.error("%s", exc)
        runtime.report_fatal(program.paths, C.worker_name(args.worker_index), exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
