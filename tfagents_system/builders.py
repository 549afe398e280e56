"""Construction of environments, Reverb tables, the agent, datasets and the
pieces that move experience and weights. Process modules only wire these.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from tfagents_system import constants as C
from tfagents_system.params import TrainParamsBase


class StopRequested(Exception):
    """Raised inside a blocking loop when the program was asked to stop."""


def derive_seed(base_seed: int, *keys: int) -> int:
    """A 31-bit seed that differs for every (base_seed, keys) combination."""
    entropy = [int(base_seed), len(keys), *map(int, keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


# --- Environments ---

COLLECT, EVAL = "collect", "eval"


def make_env(params: TrainParamsBase, kind: str, seed: int | None):
    """Build a collect or eval env through the user's `env_ctor`."""
    from tf_agents.environments import py_environment

    args, kwargs = (
        params.collect_env_args_kwargs() if kind == COLLECT else params.eval_env_args_kwargs()
    )
    env = params.env_ctor(seed, *args, **kwargs)
    if not isinstance(env, py_environment.PyEnvironment):
        raise TypeError(
            f"TrainParams.env_ctor returned {type(env).__name__}, not a TF-Agents "
            "PyEnvironment; wrap gym envs with tfagents_system.envs.load_gym_env"
        )
    return env


def worker_env_seeds(params: TrainParamsBase, worker_index: int) -> tuple[int, int]:
    """(collect seed, eval seed) of a worker: distinct per worker and per role."""
    return (derive_seed(params.seed, worker_index, 0), derive_seed(params.seed, worker_index, 1))


def init_episodes_for_worker(total: int, num_workers: int, worker_index: int) -> int:
    """This worker's share of the random warm-up episodes (shares differ by at most 1)."""
    base, extra = divmod(total, num_workers)
    return base + (1 if worker_index < extra else 0)


# --- Reverb ---

def replay_capacity(params: TrainParamsBase, max_episode_steps: int | None) -> int:
    if params.n_episodes_in_buffer is not None and max_episode_steps:
        return int(params.n_episodes_in_buffer * max_episode_steps)
    return int(params.replay_capacity)


def experience_rate_limiter(params: TrainParamsBase):
    import reverb

    min_size = max(int(params.min_replay_size), 1)
    if params.samples_per_insert is None:
        return reverb.rate_limiters.MinSize(min_size)
    spi = float(params.samples_per_insert)
    error_buffer = params.samples_per_insert_error_buffer
    if error_buffer is None:
        error_buffer = spi * min_size + 10.0 * params.batch_size
    return reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=spi, min_size_to_sample=min_size, error_buffer=float(error_buffer)
    )


def make_tables(params: TrainParamsBase, capacity: int) -> list:
    """The experience table and the one-slot weights table."""
    import reverb

    experience = reverb.Table(
        C.EXPERIENCE_TABLE,
        max_size=capacity,
        sampler=reverb.selectors.Uniform(),
        remover=reverb.selectors.Fifo(),
        rate_limiter=experience_rate_limiter(params),
    )
    weights = reverb.Table(
        C.WEIGHTS_TABLE,
        max_size=1,
        sampler=reverb.selectors.Uniform(),
        remover=reverb.selectors.Fifo(),
        rate_limiter=reverb.rate_limiters.MinSize(1),
    )
    return [experience, weights]


def wait_for_server(address: str, should_stop: Callable[[], bool], timeout_s: float = 600):
    """A reverb.Client once the server answers; StopRequested if asked to stop."""
    import reverb

    client = reverb.Client(address)
    deadline = time.monotonic() + timeout_s
    while True:
        if should_stop():
            raise StopRequested()
        try:
            client.server_info(timeout=2)
            return client
        except Exception:  # not up yet (any gRPC error)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replay server at {address} did not answer in {timeout_s}s") from None
            time.sleep(0.5)


def server_alive(client) -> bool:
    """Whether the replay server answers now (any gRPC failure means no)."""
    try:
        client.server_info(timeout=5)
        return True
    except Exception:
        return False


class WeightsExchange:
    """Publishes and fetches (policy variables, train step) through the one-slot table.

    The table keeps the latest item and sampling does not remove it, so neither
    side ever waits for the other once the learner has published once.
    """

    def __init__(self, client):
        self._client = client

    def publish(self, variables, train_step: int) -> None:
        data = [v.numpy() for v in variables] + [np.asarray(train_step, np.int64)]
        self._client.insert(data, {C.WEIGHTS_TABLE: 1.0})

    def available(self) -> bool:
        return self._client.server_info()[C.WEIGHTS_TABLE].current_size > 0

    def wait_until_available(self, should_stop: Callable[[], bool]) -> None:
        while not self.available():
            if should_stop():
                raise StopRequested()
            time.sleep(0.5)

    def fetch(self) -> tuple[list[np.ndarray], int]:
        sample = next(iter(self._client.sample(C.WEIGHTS_TABLE, num_samples=1,
                                               emit_timesteps=False)))
        arrays = [np.asarray(x)[0] for x in sample.data]
        return arrays[:-1], int(arrays[-1])

    def fetch_into(self, variable_lists) -> int:
        """Assign the published weights to each list of variables; return the train step."""
        arrays, train_step = self.fetch()
        for variables in variable_lists:
            if len(variables) != len(arrays):
                raise ValueError(
                    f"published weights have {len(arrays)} tensors, the policy has "
                    f"{len(variables)}: the learner and worker build different networks"
                )
            for var, value in zip(variables, arrays):
                var.assign(value)
        return train_step


class ExperienceWriter:
    """A driver observer that writes (s, a, r, s') items to the experience table.

    Blocking on the rate limiter happens at episode ends, in bounded waits, so
    a stop request is noticed within about a second even when the table is full.
    """

    # Items a writer may have in flight before it waits for the server: holds a
    # samples-per-insert ratio within an episode and keeps client memory bounded.
    MAX_PENDING_ITEMS = 64

    def __init__(self, client, should_stop: Callable[[], bool]):
        self._writer = client.trajectory_writer(num_keep_alive_refs=C.SEQUENCE_LENGTH)
        self._should_stop = should_stop
        self._steps_in_episode = 0
        self._items_since_flush = 0

    def __call__(self, traj) -> None:
        import tree

        self._writer.append(traj)
        self._steps_in_episode += 1
        if self._steps_in_episode >= C.SEQUENCE_LENGTH:
            item = tree.map_structure(lambda column: column[-C.SEQUENCE_LENGTH:],
                                      self._writer.history)
            self._writer.create_item(C.EXPERIENCE_TABLE, priority=1.0, trajectory=item)
            self._items_since_flush += 1
        if traj.is_boundary():
            self._wait(lambda timeout: self._writer.end_episode(clear_buffers=True,
                                                                timeout_ms=timeout))
            self._steps_in_episode = 0
            self._items_since_flush = 0
        elif self._items_since_flush >= 2 * self.MAX_PENDING_ITEMS:
            self._wait(lambda timeout: self._writer.flush(
                block_until_num_items=self.MAX_PENDING_ITEMS, timeout_ms=timeout))
            self._items_since_flush = self.MAX_PENDING_ITEMS

    def _wait(self, call) -> None:
        """Retry a blocking writer call in 1 s slices so a stop request is seen."""
        import reverb

        while True:
            try:
                call(1000)
                return
            except reverb.errors.DeadlineExceededError:
                if self._should_stop():
                    raise StopRequested() from None

    def close(self) -> None:
        self._writer.close()


# --- Agent and learner data ---

def make_agent(params: TrainParamsBase, time_step_spec, action_spec, train_step):
    from tf_agents.specs import tensor_spec

    time_step_spec = tensor_spec.from_spec(time_step_spec)
    action_spec = tensor_spec.from_spec(action_spec)
    actor_net = params.actor_net_ctor(time_step_spec.observation, action_spec)
    critic_net = params.critic_net_ctor(time_step_spec.observation, action_spec)
    agent = params.agent_ctor(time_step_spec, action_spec, actor_net, critic_net, train_step)
    agent.initialize()
    return agent


def experience_dataset(address: str, collect_data_spec, batch_size: int,
                       rate_limiter_timeout_ms: int = -1):
    """Batches of 2-step trajectories sampled uniformly from the experience table."""
    import reverb
    import tensorflow as tf

    dtypes = tf.nest.map_structure(lambda s: s.dtype, collect_data_spec)
    shapes = tf.nest.map_structure(
        lambda s: tf.TensorShape([C.SEQUENCE_LENGTH]).concatenate(s.shape), collect_data_spec
    )
    dataset = reverb.TrajectoryDataset(
        server_address=address,
        table=C.EXPERIENCE_TABLE,
        dtypes=dtypes,
        shapes=shapes,
        max_in_flight_samples_per_worker=2 * batch_size,
        rate_limiter_timeout_ms=rate_limiter_timeout_ms,
    )
    dataset = dataset.map(lambda sample: sample.data)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(2)
