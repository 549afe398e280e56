"""A collect/eval worker program.

It seeds the buffer with its share of uniform-random episodes (new experiments
only), then loops: fetch the latest weights, evaluate the greedy policy when an
eval period has passed, collect `n_train_episodes_per_iter` episodes per collect
env with the collect policy into Reverb. It stops when the learner publishes
the target train step, after a final evaluation.

A worker steps its `num_envs_per_worker` collect envs in lockstep with one
policy call for all of them; the default SAC actor network runs in numpy
(`NumpyActor`), any other in TensorFlow. Evaluation runs the greedy policy on
one env: the same numpy network's mode for the default actor network, else the
exported greedy policy.
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

LAST = 2  # tf_agents.trajectories.time_step.StepType.LAST


def wait_for_policy(path, should_stop) -> None:
    while not (path / C.POLICY_READY).exists():
        if should_stop():
            raise builders.StopRequested()
        time.sleep(0.5)


class EpisodeStats:
    """Counts a worker's env steps and completed episode returns, over all its envs."""

    def __init__(self, num_envs: int = 1):
        self.env_steps = 0
        self._returns = [0.0] * num_envs
        self._lengths = [0] * num_envs
        self.finished: list[tuple[float, int]] = []

    def step(self, env_index: int, reward, last: bool) -> None:
        self.env_steps += 1
        self._returns[env_index] += float(reward)
        self._lengths[env_index] += 1
        if last:
            self.finished.append((self._returns[env_index], self._lengths[env_index]))
            self._returns[env_index], self._lengths[env_index] = 0.0, 0

    def restart_episodes(self) -> None:
        """The envs were reset: partial episodes are dropped."""
        self._returns = [0.0] * len(self._returns)
        self._lengths = [0] * len(self._lengths)

    def pop_finished(self) -> list[tuple[float, int]]:
        done, self.finished = self.finished, []
        return done


class CurriculumApplier:
    """Applies the curriculum's values for an iteration to a worker's envs, once per change.

    `envs` maps a role to an env or a list of envs (a worker's collect envs);
    every env of the role gets set_state, and each call is logged.
    """

    def __init__(self, curriculum: Curriculum, envs: dict, log):
        self._curriculum = curriculum
        self._envs = {role: env if isinstance(env, (list, tuple)) else [env]
                      for role, env in envs.items()}
        self._log = log
        self.applied: dict[str, dict] = {role: {} for role in envs}

    def apply(self, role: str, iteration: int) -> dict:
        values = self._curriculum.values_at(iteration, role)
        if values and values != self.applied[role]:
            for env in self._envs[role]:
                env.set_state(dict(values))
                self._log.info("curriculum: %s env set_state %s at iteration %d", role,
                               json.dumps(values, sort_keys=True), iteration)
            self.applied[role] = values
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


# --- Collect policies: list of time steps (one per env) -> list of PolicySteps ---

class RandomActor:
    """Uniform random actions within the action spec (the buffer warm-up)."""

    def __init__(self, action_spec, seed: int):
        self._spec = action_spec
        self._rng = np.random.RandomState(seed)

    def __call__(self, time_steps):
        from tf_agents.specs import array_spec
        from tf_agents.trajectories import policy_step

        return [policy_step.PolicyStep(array_spec.sample_spec_nest(self._spec, self._rng), (), ())
                for _ in time_steps]


class NumpyActor:
    """The SAC collect policy of the default actor network, evaluated in numpy.

    A TensorFlow function call costs 0.2-0.5 ms on a small CPU, about as much as
    a pybullet step; this MLP costs 15-30 us in numpy. It computes exactly the
    policy's sample for ActorDistributionNetwork (Flatten and Dense layers) with
    a TanhNormalProjectionNetwork: loc and std from the projection layer (std
    through exp, or SAC's std_clip_transform), then
    a = clip(mid + half_range * tanh(loc + std * eps)), eps ~ N(0, I), as the
    policy's SquashToSpecNormal and TF-Agents' action clipping do. Noise comes
    from a numpy generator seeded with the env seed. `from_network` returns
    None (and the reason) for any other architecture, which then runs in
    TensorFlow.
    """

    NOISE_ROWS = 4096
    _ACTIVATIONS = {
        "relu": lambda x: np.maximum(x, 0.0, out=x),
        "linear": lambda x: x,
        "tanh": np.tanh,
    }

    def __init__(self, layers, projection, num_variables, action_spec, clip_std, seed):
        self._layers = layers  # [(kernel index, bias index or None, activation)]
        self._projection = projection  # (kernel index, bias index or None)
        self._num_variables = num_variables
        self._weights: list[np.ndarray] | None = None
        self._action_shape = tuple(action_spec.shape)
        self._action_size = int(np.prod(self._action_shape))
        low = np.broadcast_to(np.asarray(action_spec.minimum, np.float32), self._action_shape)
        high = np.broadcast_to(np.asarray(action_spec.maximum, np.float32), self._action_shape)
        self._low, self._high = low.reshape(-1), high.reshape(-1)
        self._mid = (self._high + self._low) / np.float32(2.0)
        self._half = (self._high - self._low) / np.float32(2.0)
        self._clip_std = clip_std
        self._rng = np.random.default_rng(seed)
        self._noise_rows = np.zeros((0, self._action_size), np.float32)
        self._noise_at = 0
        from tf_agents.trajectories import policy_step

        self._policy_step = policy_step.PolicyStep

    @classmethod
    def from_network(cls, actor_net, action_spec, seed: int):
        """(NumpyActor, None), or (None, why not) when the network is not the default kind."""
        import tensorflow as tf
        from tf_agents.agents.sac import sac_agent, tanh_normal_projection_network
        from tf_agents.networks import actor_distribution_network, encoding_network

        if type(actor_net) is not actor_distribution_network.ActorDistributionNetwork:
            return None, f"actor network is a {type(actor_net).__name__}"
        encoder = actor_net._encoder  # noqa: SLF001
        projection = actor_net._projection_networks  # noqa: SLF001
        if type(encoder) is not encoding_network.EncodingNetwork:
            return None, f"encoder is a {type(encoder).__name__}"
        if (encoder._flat_preprocessing_layers is not None  # noqa: SLF001
                or encoder._preprocessing_combiner is not None):  # noqa: SLF001
            return None, "the encoder has preprocessing layers"
        if type(projection) is not tanh_normal_projection_network.TanhNormalProjectionNetwork:
            return None, f"projection is a {type(projection).__name__}"
        if projection._std_transform is tf.exp:  # noqa: SLF001
            clip_std = False
        elif projection._std_transform is sac_agent.std_clip_transform:  # noqa: SLF001
            clip_std = True
        else:
            return None, "the projection has a custom std transform"
        if len(tf.nest.flatten(action_spec)) != 1 or len(
                tf.nest.flatten(actor_net.input_tensor_spec)) != 1:
            return None, "nested observations or actions"
        actor_net.create_variables()
        index = {v.ref(): i for i, v in enumerate(actor_net.variables)}

        def dense(layer):
            bias = index[layer.bias.ref()] if layer.use_bias else None
            return index[layer.kernel.ref()], bias

        layers = []
        for layer in encoder._postprocessing_layers:  # noqa: SLF001
            if type(layer) is tf.keras.layers.Flatten:
                continue
            if type(layer) is not tf.keras.layers.Dense:
                return None, f"the encoder has a {type(layer).__name__} layer"
            name = getattr(layer.activation, "__name__", None)
            if name not in cls._ACTIVATIONS:
                return None, f"the encoder has a {name} activation"
            layers.append((*dense(layer), cls._ACTIVATIONS[name]))
        head = projection._projection_layer  # noqa: SLF001
        if getattr(head.activation, "__name__", None) != "linear":
            return None, "the projection layer has an activation"
        return cls(layers, dense(head), len(index), action_spec, clip_std, seed), None

    def set_weights(self, arrays) -> None:
        """The published policy variables, in the actor network's variable order."""
        if len(arrays) != self._num_variables:
            raise ValueError(
                f"published weights have {len(arrays)} tensors, the actor network has "
                f"{self._num_variables}: the learner and worker build different networks")
        self._weights = [np.asarray(a, np.float32) for a in arrays]

    def loc_and_std(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pre-tanh normal's mean and standard deviation, [batch, action size] each."""
        w = self._weights
        x = observations.reshape(observations.shape[0], -1).astype(np.float32, copy=False)
        for kernel, bias, activation in self._layers:
            x = x @ w[kernel]
            if bias is not None:
                x += w[bias]
            x = activation(x)
        kernel, bias = self._projection
        out = x @ w[kernel]
        if bias is not None:
            out += w[bias]
        loc, std = out[:, :self._action_size], out[:, self._action_size:]
        if self._clip_std:  # np.clip's Python wrapper costs more than these two calls
            np.minimum(np.maximum(std, -20.0, out=std), 2.0, out=std)
        return loc, np.exp(std, out=std)

    def squash(self, pre_tanh: np.ndarray) -> np.ndarray:
        """Pre-tanh values -> actions within the spec (the policy's bijector and clip)."""
        actions = np.tanh(pre_tanh)
        actions *= self._half
        actions += self._mid
        np.minimum(np.maximum(actions, self._low, out=actions), self._high, out=actions)
        return actions.reshape((-1, *self._action_shape))

    def _noise(self, rows: int) -> np.ndarray:
        """Standard normal noise, drawn NOISE_ROWS rows at a time (one generator call
        per step costs as much as a layer)."""
        if self._noise_at + rows > len(self._noise_rows):
            self._noise_rows = self._rng.standard_normal(
                (max(self.NOISE_ROWS, rows), self._action_size), dtype=np.float32)
            self._noise_at = 0
        noise = self._noise_rows[self._noise_at:self._noise_at + rows]
        self._noise_at += rows
        return noise

    def sample(self, observations: np.ndarray) -> np.ndarray:
        """Sampled actions for a [batch, ...] array of observations."""
        loc, std = self.loc_and_std(observations)
        std *= self._noise(len(std))
        std += loc
        return self.squash(std)

    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """The greedy policy's actions: the mode, squash(loc), as TF-Agents'
        GreedyPolicy of this actor computes it."""
        loc, _ = self.loc_and_std(observations)
        return self.squash(loc)

    def __call__(self, time_steps):
        if len(time_steps) == 1:
            observations = np.asarray(time_steps[0].observation)[None]
        else:
            observations = np.stack([ts.observation for ts in time_steps])
        return [self._policy_step(a, (), ()) for a in self.sample(observations)]


class NumpyGreedyPolicy:
    """A NumpyActor's greedy actions behind the py policy calls `run_episodes` makes:
    evaluation at the env's own speed, with the weights the actor was last given."""

    def __init__(self, actor: NumpyActor):
        self._actor = actor
        from tf_agents.trajectories import policy_step

        self._policy_step = policy_step.PolicyStep

    def get_initial_state(self, batch_size=None):
        return ()

    def action(self, time_step, policy_state=()):
        action = self._actor.greedy(np.asarray(time_step.observation)[None])[0]
        return self._policy_step(action, (), ())


class TFPolicyActor:
    """Any collect policy (a SavedModel loaded with batch_time_steps=False): one
    call for the time steps of all envs."""

    def __init__(self, policy, num_envs: int):
        self._policy = policy
        self._state = policy.get_initial_state(num_envs)

    def __call__(self, time_steps):
        import tensorflow as tf
        from tf_agents.utils import nest_utils

        step = self._policy.action(nest_utils.stack_nested_arrays(time_steps), self._state)
        self._state = step.state
        step = step._replace(action=tf.nest.map_structure(np.asarray, step.action),
                             info=tf.nest.map_structure(np.asarray, step.info))
        return [tf.nest.map_structure(lambda x, i=i: x[i], step._replace(state=()))
                for i in range(len(time_steps))]


class Collector:
    """Steps a worker's collect envs in lockstep, one policy call for all of them,
    and writes every transition to Reverb (one writer per env).

    An env whose episode ends is reset at once. The heartbeat is touched every
    step and a stop request is checked every `STOP_CHECK_S` seconds (and during
    every blocking write).
    """

    STOP_CHECK_S = 0.5

    def __init__(self, envs, stats: EpisodeStats, beat, should_stop):
        self.envs = list(envs)
        self.stats = stats
        self.writers = None
        self._beat = beat
        self._should_stop = should_stop
        self.time_steps = None

    def reset(self) -> None:
        self.time_steps = [env.reset() for env in self.envs]
        self.stats.restart_episodes()

    def run(self, act, episodes: int | None = None, steps: int | None = None) -> None:
        """Collect until `episodes` episodes (over all envs) have ended, or until `steps`
        env steps (over all envs) are taken; episodes in progress then stay open."""
        if self.time_steps is None:
            self.reset()
        envs, writers, stats, time_steps = self.envs, self.writers, self.stats, self.time_steps
        ended = 0
        episodes = float("inf") if episodes is None else episodes
        end_step = stats.env_steps + steps if steps is not None else float("inf")
        next_check = time.monotonic() + self.STOP_CHECK_S
        while ended < episodes and stats.env_steps < end_step:
            action_steps = act(time_steps)
            for i, env in enumerate(envs):
                action_step = action_steps[i]
                next_time_step = env.step(action_step.action)
                writers[i].add(time_steps[i], action_step, next_time_step)
                last = next_time_step.step_type == LAST  # TimeStep.is_last() costs ~20 us
                stats.step(i, next_time_step.reward, last)
                if last:
                    ended += 1
                    next_time_step = env.reset()
                time_steps[i] = next_time_step
            self._beat()
            now = time.monotonic()
            if now >= next_check:
                next_check = now + self.STOP_CHECK_S
                if self._should_stop():
                    raise builders.StopRequested()


class ReplayLink:
    """A worker's connection to the replay server, rebuilt if the server restarts."""

    def __init__(self, address: str, should_stop, give_up_writing):
        self._address = address
        self._should_stop = should_stop
        self._give_up_writing = give_up_writing
        self.writers: list = []
        self.connect()

    def connect(self) -> None:
        self.client = builders.wait_for_server(self._address, self._should_stop)
        self.weights = builders.WeightsExchange(self.client)
        if self.writers:
            self.open_writers(*self._writer_args)

    def open_writers(self, layout: str, observation_spec, action_spec, count: int) -> list:
        self._writer_args = (layout, observation_spec, action_spec, count)
        self.writers = [builders.make_experience_writer(self.client, layout, observation_spec,
                                                        action_spec, self._give_up_writing)
                        for _ in range(count)]
        return self.writers

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def alive(self) -> bool:
        return builders.server_alive(self.client)


def wait_for_layout(paths: runtime.ExperimentPaths, should_stop) -> str:
    """The experience-item layout the learner chose for this experiment."""
    path = paths.root / builders.LAYOUT_FILE
    while not path.is_file():
        if should_stop():
            raise builders.StopRequested()
        time.sleep(0.5)
    return runtime.read_json(path)["layout"]


def make_collect_actor(params, paths: runtime.ExperimentPaths, env, seed: int, log):
    """(actor, TF variables to refresh): numpy for the default actor network, else the
    exported collect policy."""
    from tf_agents.policies import py_tf_eager_policy
    from tf_agents.specs import tensor_spec

    actor_net = params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                                      tensor_spec.from_spec(env.action_spec()))
    actor, reason = NumpyActor.from_network(actor_net, env.action_spec(), seed)
    if actor is not None:
        log.info("collect policy: the SAC actor network in numpy")
        return actor, []
    log.info("collect policy: the exported TF policy (%s)", reason)
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        str(paths.policy(C.COLLECT_POLICY)), load_specs_from_pbtxt=True, batch_time_steps=False)
    return TFPolicyActor(policy, params.num_envs_per_worker), policy.variables()


def run_worker(params, paths: runtime.ExperimentPaths, address: str, worker_index: int,
               num_workers: int, should_stop, log, heartbeat=None) -> None:
    import tensorflow as tf
    from tf_agents.policies import py_tf_eager_policy

    name = C.worker_name(worker_index)
    collect_seeds = builders.collect_env_seeds(params, worker_index)
    collect_seed, eval_seed = builders.worker_env_seeds(params, worker_index)
    tf.random.set_seed(collect_seed)
    collect_envs = [builders.make_env(params, builders.COLLECT, seed=seed)
                    for seed in collect_seeds]
    collect_env = collect_envs[0]
    eval_env = builders.make_env(params, builders.EVAL, seed=eval_seed)
    log.info("collect env seed%s %s, eval env seed %d", "s" if len(collect_seeds) > 1 else "",
             ", ".join(map(str, collect_seeds)), eval_seed)
    curriculum = parse_curriculum(params.env_config, str(paths.config))
    for env in collect_envs:
        check_env_supports(curriculum, env, builders.COLLECT, str(paths.config))
    check_env_supports(curriculum, eval_env, builders.EVAL, str(paths.config))
    applier = CurriculumApplier(curriculum, {builders.COLLECT: collect_envs,
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
    stats = EpisodeStats(len(collect_envs))
    stats.env_steps = int(previous.get("env_steps", 0))
    status = {"pid": os.getpid(), "env_steps": stats.env_steps,
              "episodes": int(previous.get("episodes", 0))}
    collect_tb = tf.summary.create_file_writer(str(paths.tensorboard(C.COLLECT_TB_DIR, name)))
    eval_tb = tf.summary.create_file_writer(str(paths.tensorboard(C.EVAL_TB_DIR, name)))

    link.weights.wait_until_available(should_stop)
    _, train_step = link.weights.fetch()
    target = params.total_train_steps
    layout = wait_for_layout(paths, should_stop)
    collector = Collector(collect_envs, stats, beat, should_stop)
    collector.writers = link.open_writers(layout, collect_env.observation_spec(),
                                          collect_env.action_spec(), len(collect_envs))
    log.info("experience items: %s layout", layout)

    try:
        warmup = builders.warmup_for_worker(params, num_workers, worker_index)
        applier.apply(builders.COLLECT, train_step // params.num_steps_per_iter)
        if train_step == 0 and any(warmup.values()):
            log.info("seeding the buffer with uniform random actions: %s",
                     ", ".join(f"{v} {k}" for k, v in warmup.items() if v))
            try:
                collector.run(RandomActor(collect_env.action_spec(), collect_seed), **warmup)
            except builders.StopRequested:
                if should_stop():
                    raise  # else training completed during the warm-up: evaluate and finish
            stats.pop_finished()

        wait_for_policy(paths.policy(C.COLLECT_POLICY), should_stop)
        wait_for_policy(paths.policy(C.GREEDY_POLICY), should_stop)
        actor, collect_variables = make_collect_actor(params, paths, collect_env, collect_seed, log)
        if isinstance(actor, NumpyActor):  # the same network: its greedy actions in numpy
            eval_policy, variable_lists = NumpyGreedyPolicy(actor), []
        else:
            eval_policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
                str(paths.policy(C.GREEDY_POLICY)), load_specs_from_pbtxt=True)
            variable_lists = [eval_policy.variables(), collect_variables]
        episodes_per_round = params.n_train_episodes_per_iter * len(collect_envs)
        runtime.freeze_heap()

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
            log.info("eval at train step %d: mean return %.2f over %d episodes "
                     "(min %.2f, max %.2f)",
                     step, mean_return, len(returns), min(returns), max(returns))

        def one_round() -> bool:
            """Refresh weights, maybe evaluate, collect; True once training is complete."""
            nonlocal next_eval_iteration
            arrays, train_step = link.weights.fetch()
            builders.WeightsExchange.assign(arrays, variable_lists)
            if isinstance(actor, NumpyActor):
                actor.set_weights(arrays)
            weights_time = time.time()  # from here on the worker acts with these weights
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
                collector.run(actor, episodes_per_round)
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
                          curriculum=stage, weights_time=weights_time)
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
                collector.writers = link.writers
                collector.reset()
                log.info("reconnected to the replay server")
    finally:  # a block writer sends its last, partly filled block
        link.close()
    collect_tb.flush()
    status.update(env_steps=stats.env_steps, time=time.time(), finished=True)
    runtime.write_json_atomic(status_path, status)
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
