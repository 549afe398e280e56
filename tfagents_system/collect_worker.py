"""A collect/eval worker program.

It seeds the buffer with its share of uniform-random episodes (new experiments
only), then loops: fetch the latest weights, evaluate the greedy policy when an
eval period has passed, collect `n_train_episodes_per_iter` episodes with the
collect policy into Reverb. It stops when the learner publishes the target
train step, after a final evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from tfagents_system import builders, runtime
from tfagents_system import constants as C
from tfagents_system.curriculum import Curriculum, check_env_supports, parse_curriculum


def wait_for_policy(path, should_stop) -> None:
    while not (path / C.POLICY_READY).exists():
        if should_stop():
            raise builders.StopRequested()
        time.sleep(0.5)


class EpisodeStats:
    """Driver observer counting env steps and completed episode returns."""

    def __init__(self):
        self.env_steps = 0
        self.episode_return = 0.0
        self.episode_length = 0
        self.finished: list[tuple[float, int]] = []

    def __call__(self, traj) -> None:
        if traj.is_boundary():  # LAST -> FIRST: no env step of its own
            return
        self.env_steps += 1
        self.episode_return += float(traj.reward)
        self.episode_length += 1
        if traj.is_last():
            self.finished.append((self.episode_return, self.episode_length))
            self.episode_return, self.episode_length = 0.0, 0

    def pop_finished(self) -> list[tuple[float, int]]:
        done, self.finished = self.finished, []
        return done


class CurriculumApplier:
    """Applies the curriculum's values for an iteration to a worker's envs, once per change."""

    def __init__(self, curriculum: Curriculum, envs: dict, log):
        self._curriculum = curriculum
        self._envs = envs
        self._log = log
        self.applied: dict[str, dict] = {role: {} for role in envs}

    def apply(self, role: str, iteration: int) -> dict:
        values = self._curriculum.values_at(iteration, role)
        if values and values != self.applied[role]:
            self._envs[role].set_state(dict(values))
            self.applied[role] = values
            self._log.info("curriculum: %s env set_state %s at iteration %d", role,
                           json.dumps(values, sort_keys=True), iteration)
        return values


def run_episodes(env, policy, n: int, should_stop) -> list[tuple[float, int]]:
    """Run n full episodes without writing experience; (return, length) each."""
    results = []
    for _ in range(n):
        time_step = env.reset()
        state = policy.get_initial_state(batch_size=None)
        total, length = 0.0, 0
        while not time_step.is_last():
            if should_stop():
                raise builders.StopRequested()
            action_step = policy.action(time_step, state)
            state = action_step.state
            time_step = env.step(action_step.action)
            total += float(time_step.reward)
            length += 1
        results.append((total, length))
    return results


class ReplayLink:
    """A worker's connection to the replay server, rebuilt if the server restarts."""

    def __init__(self, address: str, should_stop, give_up_writing):
        self._address = address
        self._should_stop = should_stop
        self._give_up_writing = give_up_writing
        self.connect()

    def connect(self) -> None:
        self.client = builders.wait_for_server(self._address, self._should_stop)
        self.weights = builders.WeightsExchange(self.client)
        self.writer = builders.ExperienceWriter(self.client, self._give_up_writing)

    def write(self, traj) -> None:
        self.writer(traj)

    def alive(self) -> bool:
        return builders.server_alive(self.client)


def run_worker(params, paths: runtime.ExperimentPaths, address: str, worker_index: int,
               num_workers: int, should_stop, log, heartbeat=None) -> None:
    import tensorflow as tf
    from tf_agents.drivers import py_driver
    from tf_agents.policies import py_tf_eager_policy, random_py_policy

    name = C.worker_name(worker_index)
    collect_seed, eval_seed = builders.worker_env_seeds(params, worker_index)
    tf.random.set_seed(collect_seed)
    collect_env = builders.make_env(params, builders.COLLECT, seed=collect_seed)
    eval_env = builders.make_env(params, builders.EVAL, seed=eval_seed)
    log.info("collect env seed %d, eval env seed %d", collect_seed, eval_seed)
    curriculum = parse_curriculum(params.env_config, str(paths.config))
    for role, env in ((builders.COLLECT, collect_env), (builders.EVAL, eval_env)):
        check_env_supports(curriculum, env, role, str(paths.config))
    applier = CurriculumApplier(curriculum, {builders.COLLECT: collect_env,
                                             builders.EVAL: eval_env}, log)

    beat = heartbeat.beat if heartbeat is not None else (lambda: None)
    stop_requested = should_stop

    def should_stop() -> bool:  # polled about every second by every wait: a heartbeat too
        beat()
        return stop_requested()

    # Inserts may block on the rate limiter once the learner has finished: give up then too.
    link = ReplayLink(address, should_stop, lambda: should_stop() or paths.complete.exists())
    status_path = paths.status / f"{name}.json"
    # A restarted worker continues its counters, so its TensorBoard steps never go back.
    previous = runtime.read_json(status_path) if status_path.is_file() else {}
    stats = EpisodeStats()
    stats.env_steps = int(previous.get("env_steps", 0))
    status = {"pid": os.getpid(), "env_steps": stats.env_steps,
              "episodes": int(previous.get("episodes", 0))}
    collect_tb = tf.summary.create_file_writer(str(paths.tensorboard(C.COLLECT_TB_DIR, name)))
    eval_tb = tf.summary.create_file_writer(str(paths.tensorboard(C.EVAL_TB_DIR, name)))

    link.weights.wait_until_available(should_stop)
    _, train_step = link.weights.fetch()
    target = params.total_train_steps

    n_init = builders.init_episodes_for_worker(params.n_buffer_init_episodes, num_workers,
                                               worker_index)
    applier.apply(builders.COLLECT, train_step // params.num_steps_per_iter)
    if train_step == 0 and n_init:
        random_policy = random_py_policy.RandomPyPolicy(
            collect_env.time_step_spec(), collect_env.action_spec(), seed=collect_seed)
        log.info("seeding the buffer with %d uniform random episodes", n_init)
        try:
            py_driver.PyDriver(collect_env, random_policy, observers=[link.write, stats],
                               max_episodes=n_init).run(collect_env.reset())
        except builders.StopRequested:
            if should_stop():
                raise  # else training completed during the warm-up: evaluate and finish
        stats.pop_finished()

    wait_for_policy(paths.policy(C.COLLECT_POLICY), should_stop)
    wait_for_policy(paths.policy(C.GREEDY_POLICY), should_stop)
    collect_policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(paths.policy(C.COLLECT_POLICY)), load_specs_from_pbtxt=True)
    eval_policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(paths.policy(C.GREEDY_POLICY)), load_specs_from_pbtxt=True)
    variable_lists = [collect_policy.variables(), eval_policy.variables()]
    driver = py_driver.PyDriver(collect_env, collect_policy,
                                observers=[link.write, stats, lambda _: beat()],
                                max_episodes=params.n_train_episodes_per_iter)
    time_step = collect_env.reset()

    last_eval_step = -1
    next_eval_iteration = 0
    meter = runtime.RateMeter(stats.env_steps)

    def evaluate(step: int) -> None:
        nonlocal last_eval_step
        if params.n_eval_episodes == 0 or step == last_eval_step:
            return
        applier.apply(builders.EVAL, step // params.num_steps_per_iter)
        results = run_episodes(eval_env, eval_policy, params.n_eval_episodes, should_stop)
        returns = [r for r, _ in results]
        mean_return = float(np.mean(returns))
        with eval_tb.as_default(step=step):
            tf.summary.scalar(C.M_EVAL_RETURN, mean_return)
            tf.summary.scalar(C.M_EVAL_LENGTH, float(np.mean([n for _, n in results])))
        eval_tb.flush()
        last_eval_step = step
        status.update(eval_return=mean_return, eval_train_step=step)
        log.info("eval at train step %d: mean return %.2f over %d episodes (min %.2f, max %.2f)",
                 step, mean_return, len(returns), min(returns), max(returns))

    def one_round() -> bool:
        """Refresh weights, maybe evaluate, collect; True once training is complete."""
        nonlocal time_step, next_eval_iteration
        train_step = link.weights.fetch_into(variable_lists)
        if train_step >= target:
            evaluate(train_step)
            return True
        iteration = train_step // params.num_steps_per_iter
        stage = applier.apply(builders.COLLECT, iteration)
        if iteration >= next_eval_iteration:
            evaluate(train_step)
            period = params.eval_period_itrs
            next_eval_iteration = (iteration // period + 1) * period
        try:
            time_step, _ = driver.run(time_step)
        except builders.StopRequested:
            if should_stop():
                raise
            return False  # training completed while this episode waited to be written
        rate = meter.rate(stats.env_steps)
        finished = stats.pop_finished()
        with collect_tb.as_default(step=stats.env_steps):
            for episode_return, length in finished:
                tf.summary.scalar(C.M_RETURN, episode_return)
                tf.summary.scalar(C.M_EPISODE_LENGTH, length)
            tf.summary.scalar(C.M_ENV_STEPS, stats.env_steps)
            tf.summary.scalar(C.M_ENV_STEPS_PER_SEC, rate)
            for param, value in stage.items():
                tf.summary.scalar(f"{C.M_CURRICULUM_PREFIX}{param}", value)
        status.update(env_steps=stats.env_steps, episodes=status["episodes"] + len(finished),
                      env_steps_per_sec=rate, train_step_seen=train_step, time=time.time(),
                      curriculum=stage)
        if finished:
            status["return"] = finished[-1][0]
        runtime.write_json_atomic(status_path, status)
        if should_stop():
            raise builders.StopRequested()
        return False

    while True:
        try:
            if one_round():
                break
        except builders.StopRequested:
            raise
        except Exception as exc:  # a lost replay server is survivable; anything else is not
            if link.alive():
                raise
            log.warning("replay server unreachable (%s: %s); waiting for it to come back",
                        type(exc).__name__, exc)
            link.connect()
            time_step = collect_env.reset()
            log.info("reconnected to the replay server")
    collect_tb.flush()
    status.update(env_steps=stats.env_steps, time=time.time(), finished=True)
    runtime.write_json_atomic(status_path, status)
    link.writer.close()
    log.info("done: %d env steps, %d episodes", stats.env_steps, status["episodes"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--address", required=True, help="host:port of the replay server")
    parser.add_argument("--worker_index", type=int, required=True)
    parser.add_argument("--num_workers", type=int, required=True)
    args = parser.parse_args(argv)
    runtime.die_with_parent()
    name = C.worker_name(args.worker_index)
    log = runtime.setup_logging(name)
    stop = runtime.StopFlag().install()
    threads = runtime.configure_threads()
    runtime.log_placement(log, threads)
    paths, params, _ = runtime.load_experiment(args.exp_dir)
    heartbeat = runtime.Heartbeat(paths.status / f"{name}.heartbeat")
    try:
        run_worker(params, paths, args.address, args.worker_index, args.num_workers, stop, log,
                   heartbeat)
    except builders.StopRequested:
        log.info("stopped (%s)", stop.signal_name)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
