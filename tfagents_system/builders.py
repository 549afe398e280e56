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


def collect_env_seeds(params: TrainParamsBase, worker_index: int) -> list[int]:
    """Seeds of a worker's `num_envs_per_worker` collect envs; the first one is the
    worker's collect seed, so one env per worker seeds exactly as before."""
    first = worker_env_seeds(params, worker_index)[0]
    return [first] + [derive_seed(params.seed, worker_index, 0, j)
                      for j in range(1, int(params.num_envs_per_worker))]


def init_episodes_for_worker(total: int, num_workers: int, worker_index: int) -> int:
    """This worker's share of the random warm-up episodes (shares differ by at most 1)."""
    base, extra = divmod(total, num_workers)
    return base + (1 if worker_index < extra else 0)


def warmup_for_worker(params: TrainParamsBase, num_workers: int,
                      worker_index: int) -> dict[str, int | None]:
    """This worker's uniform-random warm-up as `Collector.run` arguments: its share of
    `n_buffer_init_steps` steps when that is set, else of `n_buffer_init_episodes`."""
    if params.n_buffer_init_steps is not None:
        return {"episodes": None, "steps": init_episodes_for_worker(
            params.n_buffer_init_steps, num_workers, worker_index)}
    return {"episodes": init_episodes_for_worker(params.n_buffer_init_episodes, num_workers,
                                                 worker_index), "steps": None}


# --- Reverb ---

def replay_capacity(params: TrainParamsBase, max_episode_steps: int | None) -> int:
    if params.n_episodes_in_buffer is not None and max_episode_steps:
        return int(params.n_episodes_in_buffer * max_episode_steps)
    return int(params.replay_capacity)


def ratio_error_buffer(params: TrainParamsBase) -> float | None:
    """The samples_per_insert limiter's slack in samples (None without a ratio):
    the setting, or the warm-up's samples plus 10 batches."""
    if params.samples_per_insert is None:
        return None
    if params.samples_per_insert_error_buffer is not None:
        return float(params.samples_per_insert_error_buffer)
    return (float(params.samples_per_insert) * max(int(params.min_replay_size), 1)
            + 10.0 * params.batch_size)


def experience_rate_limiter(params: TrainParamsBase):
    import reverb

    min_size = max(int(params.min_replay_size), 1)
    if params.samples_per_insert is None:
        return reverb.rate_limiters.MinSize(min_size)
    return reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=float(params.samples_per_insert), min_size_to_sample=min_size,
        error_buffer=ratio_error_buffer(params))


def queue_blocks(params: TrainParamsBase) -> int:
    """Blocks the experience queue holds before writers wait. With samples_per_insert
    the queue holds about the limiter's slack in transitions (at least 2 blocks), so
    workers run ahead of the learner about as far as Reverb's own limiter lets them."""
    if params.samples_per_insert is None:
        return QUEUE_MAX_BLOCKS
    lead = ratio_error_buffer(params) / float(params.samples_per_insert)
    return int(max(2, min(QUEUE_MAX_BLOCKS, np.ceil(lead / BlockExperienceWriter.BLOCK_ROWS))))


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
    # packed_blocks layout: a FIFO queue the learner drains into its replay
    # memory; a full queue (a learner away, or held back by samples_per_insert)
    # makes the workers wait.
    queue = reverb.Table.queue(C.QUEUE_TABLE, max_size=queue_blocks(params))
    return [experience, weights, queue]


# Blocks the experience queue holds before writers wait (x BLOCK_ROWS transitions).
QUEUE_MAX_BLOCKS = 512


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
        self.assign(arrays, variable_lists)
        return train_step

    @staticmethod
    def assign(arrays, variable_lists) -> None:
        """Assign fetched weights to each list of variables."""
        for variables in variable_lists:
            if len(variables) != len(arrays):
                raise ValueError(
                    f"published weights have {len(arrays)} tensors, the policy has "
                    f"{len(variables)}: the learner and worker build different networks"
                )
            for var, value in zip(variables, arrays):
                var.assign(value)


_LAST = 2  # tf_agents.trajectories.time_step.StepType.LAST


# --- Item layouts of the experience table ---
#
# LAYOUT_STEPS: the TF-Agents layout. An item is two consecutive trajectory
#   steps (2 x every field of the Trajectory), one column per field: any specs.
# LAYOUT_PACKED: an item is one step holding the whole transition
#   (s, a, r, s', step types, discount) in a single float32 vector. Reverb's
#   per-item costs grow with the columns and steps an item spans: this layout
#   costs the learner's sampling and the workers' writes several times less CPU
#   (measured in docs/performance.md). Used for agents trained on transitions
#   (SAC) whose observations and actions are float32 and whose collect policy
#   has no info; the learner decides and records the choice in the experiment.
# LAYOUT_BLOCKS: the packed vectors travel in blocks of up to BLOCK_ROWS
#   transitions through a FIFO queue table to the learner, which keeps the
#   replay buffer in its own memory (tfagents_system.replay_memory) and samples
#   it there: neither side pays Reverb's per-item costs per transition. Chosen
#   over LAYOUT_PACKED when the buffer fits comfortably in the learner's RAM.
LAYOUT_STEPS = "steps2"
LAYOUT_PACKED = "packed_transition"
LAYOUT_BLOCKS = "packed_blocks"
LAYOUTS = (LAYOUT_STEPS, LAYOUT_PACKED, LAYOUT_BLOCKS)
LAYOUT_FILE = "replay_layout.json"  # in the experiment directory, written by the learner


class TransitionPacker:
    """One (s, a, r, s') transition <-> one float32 vector.

    Vector: [step_type, next_step_type, reward, discount, observation...,
    action..., next observation...] (nested observations and actions are
    flattened leaf by leaf, in tf.nest order). Step types 0-2 are exact in
    float32. `unpack` rebuilds exactly what `trajectory.to_transition` gives for
    the 2-step item of the TF-Agents layout (zero reward and discount in the
    first time step).
    """

    HEAD = 4

    def __init__(self, observation_spec, action_spec):
        import tensorflow as tf

        self.observation_spec = observation_spec
        self.action_spec = action_spec
        self._obs_shapes = [tuple(s.shape) for s in tf.nest.flatten(observation_spec)]
        self._act_shapes = [tuple(s.shape) for s in tf.nest.flatten(action_spec)]
        self._obs_sizes = [int(np.prod(shape)) for shape in self._obs_shapes]
        self._act_sizes = [int(np.prod(shape)) for shape in self._act_shapes]
        self.obs_size = sum(self._obs_sizes)
        self.act_size = sum(self._act_sizes)
        self.size = self.HEAD + 2 * self.obs_size + self.act_size
        self._obs_at = self.HEAD
        self._act_at = self.HEAD + self.obs_size
        self._next_obs_at = self._act_at + self.act_size
        self._single_obs = len(self._obs_sizes) == 1
        self._single_act = len(self._act_sizes) == 1

    @staticmethod
    def unsupported_reason(collect_data_spec) -> str | None:
        """Why a Trajectory spec cannot be packed, or None if it can."""
        import tensorflow as tf

        spec = collect_data_spec
        if tf.nest.flatten(spec.policy_info):
            return "the collect policy emits info"
        for name in ("observation", "action"):
            for leaf in tf.nest.flatten(getattr(spec, name)):
                if tf.as_dtype(leaf.dtype) != tf.float32:
                    return f"an {name} leaf is {tf.as_dtype(leaf.dtype).name}, not float32"
        for name in ("reward", "discount"):
            leaf = getattr(spec, name)
            if tf.nest.flatten(leaf) != [leaf] or tuple(leaf.shape) != ():
                return f"{name} is not a scalar"
        return None

    def _fill(self, out, at, value, single, sizes):
        import tensorflow as tf

        if single:
            out[at:at + sizes[0]] = np.reshape(value, -1)
            return
        for leaf, size in zip(tf.nest.flatten(value), sizes):
            out[at:at + size] = np.reshape(leaf, -1)
            at += size

    def pack(self, time_step, action, next_time_step, out=None) -> np.ndarray:
        """The transition's vector, written into `out` (a float32 row) if given."""
        if out is None:
            out = np.empty(self.size, np.float32)
        out[0] = time_step.step_type
        out[1] = next_time_step.step_type
        out[2] = next_time_step.reward
        out[3] = next_time_step.discount
        self._fill(out, self._obs_at, time_step.observation, self._single_obs, self._obs_sizes)
        self._fill(out, self._act_at, action, self._single_act, self._act_sizes)
        self._fill(out, self._next_obs_at, next_time_step.observation, self._single_obs,
                   self._obs_sizes)
        return out

    def _split(self, packed, at, spec, shapes, sizes):
        import tensorflow as tf

        leaves = []
        for shape, size in zip(shapes, sizes):
            leaves.append(tf.reshape(packed[:, at:at + size], [-1, *shape]))
            at += size
        return tf.nest.pack_sequence_as(spec, leaves)

    def unpack(self, packed):
        """A [B, size] float32 batch -> a Transition with [B, ...] tensors."""
        import tensorflow as tf
        from tf_agents.trajectories import policy_step, trajectory
        from tf_agents.trajectories import time_step as ts

        step_type = tf.cast(packed[:, 0], tf.int32)
        next_step_type = tf.cast(packed[:, 1], tf.int32)
        reward, discount = packed[:, 2], packed[:, 3]
        observation = self._split(packed, self._obs_at, self.observation_spec,
                                  self._obs_shapes, self._obs_sizes)
        action = self._split(packed, self._act_at, self.action_spec, self._act_shapes,
                             self._act_sizes)
        next_observation = self._split(packed, self._next_obs_at, self.observation_spec,
                                       self._obs_shapes, self._obs_sizes)
        return trajectory.Transition(
            time_step=ts.TimeStep(step_type, tf.zeros_like(reward), tf.zeros_like(discount),
                                  observation),
            action_step=policy_step.PolicyStep(action, (), ()),
            next_time_step=ts.TimeStep(next_step_type, reward, discount, next_observation),
        )


def memory_budget_bytes() -> int:
    """The most a learner's replay memory may take: a quarter of the RAM available now."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024 // 4
    except (OSError, KeyError, ValueError):
        return 0


def choose_layout(agent, capacity: int | None = None,
                  learner_keeps: bool = True) -> tuple[str, str]:
    """(layout, reason) for an agent: packed where it is exact, else the TF-Agents one.

    With a capacity (and `learner_keeps`), packed transitions go in blocks to the
    learner's own replay memory if capacity x vector size fits in
    `memory_budget_bytes()`; else the learner samples them from Reverb.
    """
    from tf_agents.agents.sac import sac_agent

    if not isinstance(agent, sac_agent.SacAgent):
        return LAYOUT_STEPS, f"the agent is a {type(agent).__name__}, not a SacAgent"
    networks = [agent._actor_network, agent._critic_network_1]  # noqa: SLF001
    if any(net.state_spec for net in networks):
        return LAYOUT_STEPS, "a network is recurrent"
    reason = TransitionPacker.unsupported_reason(agent.collect_data_spec)
    if reason:
        return LAYOUT_STEPS, reason
    if capacity is None:
        return LAYOUT_PACKED, "SacAgent on float32 transitions"
    if not learner_keeps:
        return LAYOUT_PACKED, ("SacAgent on float32 transitions; learner_keeps_replay = False, "
                               "so Reverb keeps the buffer")
    spec = agent.collect_data_spec
    need = int(capacity) * TransitionPacker(spec.observation, spec.action).size * 4
    budget = memory_budget_bytes()
    if need > budget:
        return LAYOUT_PACKED, (f"SacAgent on float32 transitions; a replay memory of "
                               f"{need / 2**30:.2f} GiB exceeds a quarter of the available "
                               f"RAM ({budget / 2**30:.2f} GiB), so Reverb keeps the buffer")
    return LAYOUT_BLOCKS, (f"SacAgent on float32 transitions; the learner keeps the buffer "
                           f"({need / 2**30:.2f} GiB)")


class _BlockingWrites:
    """Bounded waits on a Reverb writer so that a stop request is seen within a second."""

    # Items a writer may have in flight before it waits for the server: holds a
    # samples-per-insert ratio within an episode and keeps client memory bounded.
    MAX_PENDING_ITEMS = 64
    CLOSE_WAIT_MS = 1000

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

    def _end_episode(self) -> None:
        self._wait(lambda timeout: self._writer.end_episode(clear_buffers=True,
                                                            timeout_ms=timeout))
        self._items_since_flush = 0

    def _maybe_flush(self) -> None:
        if self._items_since_flush >= 2 * self.MAX_PENDING_ITEMS:
            self._wait(lambda timeout: self._writer.flush(
                block_until_num_items=self.MAX_PENDING_ITEMS, timeout_ms=timeout))
            self._items_since_flush = self.MAX_PENDING_ITEMS

    def close(self) -> None:
        """Wait (about a second at most) for the server to confirm the items in flight,
        then close: Reverb's Close drops items not yet confirmed."""
        try:
            self._writer.flush(block_until_num_items=0, timeout_ms=self.CLOSE_WAIT_MS)
        except Exception:  # a server gone or too slow: the items in flight are lost
            pass
        self._writer.close()


class ExperienceWriter(_BlockingWrites):
    """Writes 2-step trajectory items (LAYOUT_STEPS) to the experience table.

    Usable as a driver observer (`writer(traj)`) or with transitions
    (`writer.add(time_step, action_step, next_time_step)`). Blocking on the rate
    limiter happens at episode ends and every few dozen items, in bounded waits.
    """

    layout = LAYOUT_STEPS

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
            self._end_episode()
            self._steps_in_episode = 0
        else:
            self._maybe_flush()

    def add(self, time_step, action_step, next_time_step) -> None:
        """One env step. At an episode end also writes the LAST -> FIRST boundary
        step a PyDriver would have produced (its observation is s' of the last item)."""
        from tf_agents.trajectories import time_step as ts
        from tf_agents.trajectories import trajectory

        self(trajectory.from_transition(time_step, action_step, next_time_step))
        if next_time_step.step_type == _LAST:
            self(trajectory.Trajectory(
                step_type=next_time_step.step_type,
                observation=next_time_step.observation,
                action=action_step.action,
                policy_info=action_step.info,
                next_step_type=np.asarray(ts.StepType.FIRST, dtype=np.int32),
                reward=np.zeros_like(next_time_step.reward),
                discount=np.ones_like(next_time_step.discount),
            ))


class PackedExperienceWriter(_BlockingWrites):
    """Writes one-step packed-transition items (LAYOUT_PACKED) to the experience table.

    Calls the C++ writer of the pinned dm-reverb 0.14 directly (Append and
    CreateItem): the Python TrajectoryWriter spends most of a step rebuilding
    column histories. Steps go to Reverb in chunks of `CHUNK_LENGTH` steps.
    Each chunk costs the writer about 0.2 ms of CPU (compression, a gRPC
    message), each item about 0.05 ms; but a sampled item brings its whole
    chunk to the learner, and the learner is the bottleneck of every layout the
    launcher makes. The benchmark measures chunks of 1 and 16 beside this one
    (docs/performance.md, "Alternatives measured"): longer chunks speed the
    worker up and slow the learner down; 4 keeps nearly all of the learner's
    speed with 1 and most of the worker's gain with 16.
    """

    layout = LAYOUT_PACKED
    CHUNK_LENGTH = 4
    # Flushing at 48 pending items down to 16 stays below the count at which the
    # C++ writer logs "pending items is alarmingly high".
    MAX_PENDING_ITEMS = 16

    def __init__(self, client, packer: TransitionPacker, should_stop: Callable[[], bool],
                 chunk_length: int | None = None):
        import reverb
        from reverb import pybind

        chunk_length = chunk_length or self.CHUNK_LENGTH
        self._cpp = client._client.NewTrajectoryWriter(  # noqa: SLF001 (see above)
            pybind.ConstantChunkerOptions(max_chunk_length=chunk_length,
                                          num_keep_alive_refs=chunk_length),
            False)  # validate_items: every item has the same single-step shape
        self._writer = reverb.TrajectoryWriter(self._cpp)
        self._packer = packer
        self._should_stop = should_stop
        self._items_since_flush = 0

    def add(self, time_step, action_step, next_time_step) -> None:
        refs = self._cpp.Append([self._packer.pack(time_step, action_step.action,
                                                   next_time_step)])
        self._cpp.CreateItem(C.EXPERIENCE_TABLE, 1.0, [[refs[0]]], [True])
        self._items_since_flush += 1
        if next_time_step.step_type == _LAST:  # TimeStep.is_last() costs ~20 us
            self._end_episode()
        elif self._items_since_flush >= 3 * self.MAX_PENDING_ITEMS:
            self._wait(lambda timeout: self._writer.flush(
                block_until_num_items=self.MAX_PENDING_ITEMS, timeout_ms=timeout))
            self._items_since_flush = self.MAX_PENDING_ITEMS


PAD_STEP_TYPE = -1.0  # step type of the unused rows at the end of a short block


class BlockExperienceWriter(_BlockingWrites):
    """Writes packed transitions in blocks of `BLOCK_ROWS` to the experience queue
    (LAYOUT_BLOCKS): one Reverb item per block, sent when the block is full or an
    episode ends (a short block is padded with rows of step type -1, which the
    learner drops). A worker's CPU then goes to its envs, not to Reverb: one
    gRPC item per 128 steps instead of one per step. Uses the same private C++
    writer calls as PackedExperienceWriter (dm-reverb 0.14)."""

    layout = LAYOUT_BLOCKS
    BLOCK_ROWS = 128
    MAX_PENDING_ITEMS = 2

    def __init__(self, client, packer: TransitionPacker, should_stop: Callable[[], bool],
                 block_rows: int | None = None):
        import reverb
        from reverb import pybind

        self._cpp = client._client.NewTrajectoryWriter(  # noqa: SLF001 (see above)
            pybind.ConstantChunkerOptions(max_chunk_length=1, num_keep_alive_refs=1), False)
        self._writer = reverb.TrajectoryWriter(self._cpp)
        self._packer = packer
        self._should_stop = should_stop
        self._block = np.zeros((block_rows or self.BLOCK_ROWS, packer.size), np.float32)
        self._count = 0

    def add(self, time_step, action_step, next_time_step) -> None:
        self._packer.pack(time_step, action_step.action, next_time_step,
                          out=self._block[self._count])
        self._count += 1
        if self._count == len(self._block) or next_time_step.step_type == _LAST:
            self.send()

    def send(self) -> None:
        """Queue the block (padded if short) and wait while the queue is full."""
        if not self._count:
            return
        block, self._block = self._block, np.zeros_like(self._block)  # Reverb may keep it
        block[self._count:, 0] = PAD_STEP_TYPE
        self._count = 0
        refs = self._cpp.Append([block])
        self._cpp.CreateItem(C.QUEUE_TABLE, 1.0, [[refs[0]]], [True])
        self._wait(lambda timeout: self._writer.flush(
            block_until_num_items=self.MAX_PENDING_ITEMS, timeout_ms=timeout))

    def close(self) -> None:
        """Send a partly filled block and wait for the blocks in flight (best effort,
        about two seconds at most), then close."""
        try:
            self.send()
        except Exception:  # a stop request or a server gone: the partial block is lost
            pass
        super().close()


def make_experience_writer(client, layout: str, observation_spec, action_spec,
                           should_stop: Callable[[], bool]):
    """The writer of a layout; `add(time_step, action_step, next_time_step)` per env step."""
    if layout == LAYOUT_BLOCKS:
        return BlockExperienceWriter(client, TransitionPacker(observation_spec, action_spec),
                                     should_stop)
    if layout == LAYOUT_PACKED:
        return PackedExperienceWriter(client, TransitionPacker(observation_spec, action_spec),
                                      should_stop)
    if layout == LAYOUT_STEPS:
        return ExperienceWriter(client, should_stop)
    raise ValueError(f"unknown replay item layout {layout!r}; known: {', '.join(LAYOUTS)}")


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
                       rate_limiter_timeout_ms: int = -1, layout: str = LAYOUT_STEPS):
    """Batches sampled uniformly from the experience table.

    LAYOUT_STEPS: Trajectories with [batch, 2, ...] tensors. LAYOUT_PACKED:
    Transitions with [batch, ...] tensors (what SacAgent.train turns a 2-step
    trajectory into). Items are batched before they are touched: a per-item
    `map` costs more than the sampling itself.
    """
    import reverb
    import tensorflow as tf

    if layout == LAYOUT_PACKED:
        packer = TransitionPacker(collect_data_spec.observation, collect_data_spec.action)
        dtypes, shapes = tf.float32, tf.TensorShape([packer.size])
        decode = packer.unpack
    elif layout == LAYOUT_STEPS:
        dtypes = tf.nest.map_structure(lambda s: s.dtype, collect_data_spec)
        shapes = tf.nest.map_structure(
            lambda s: tf.TensorShape([C.SEQUENCE_LENGTH]).concatenate(s.shape),
            collect_data_spec)
        decode = None
    else:
        raise ValueError(f"unknown replay item layout {layout!r}; known: {', '.join(LAYOUTS)}")
    dataset = reverb.TrajectoryDataset(
        server_address=address,
        table=C.EXPERIENCE_TABLE,
        dtypes=dtypes,
        shapes=shapes,
        max_in_flight_samples_per_worker=SAMPLES_IN_FLIGHT_BATCHES * batch_size,
        rate_limiter_timeout_ms=rate_limiter_timeout_ms,
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda sample: sample.data if decode is None else decode(sample.data))
    return dataset.prefetch(PREFETCH_BATCHES)


# Batches a sampling stream requests ahead, and batches ready before they are needed.
SAMPLES_IN_FLIGHT_BATCHES = 2
PREFETCH_BATCHES = 2
