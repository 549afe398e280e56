"""The builder: the one place that constructs an experiment's parts from the user's
params, as Acme's agent builders do. The programs and tools receive finished parts
and only wire them together; no program checks which kind of part it was given.

- environments and their seeds (`make_env`, `Builder.worker_envs`);
- the agent (`Builder.agent`: the params' hooks, SAC by default), its checkpointer,
  its compiled train loop, summary writers;
- the replay data: the replay format (chosen at launch, `Builder.choose_replay_format`;
  read back and checked by the programs, `Builder.replay_format`), the replay
  server's tables, the workers' experience writers, the learner's data source (its
  replay memory, fine-tuning's imported rows, the demonstrations' mix) and the
  behaviour-cloning warm start;
- the workers' actors (numpy for the default actor network) and evaluation policy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tfagents_system import finetune, gymnasium_bridge, hindsight
from tfagents_system.actors import NumpyActor, NumpyGreedyPolicy, TFPolicyActor
from tfagents_system.checkpoint_recovery import choose_restorable
from tfagents_system.core import constants as C
from tfagents_system.core.errors import FatalError
from tfagents_system.core.paths import ExperimentPaths
from tfagents_system.core.records import ExperimentSettings
from tfagents_system.curriculum import CurriculumApplier, check_env_supports, parse_curriculum
from tfagents_system.replay import demo_store
from tfagents_system.replay.auth import (
    PublicationCounter,
    Signer,
    WeightsGate,
    newest_acted,
    read_key,
)
from tfagents_system.replay.checkpoints import ReplayCheckpoints
from tfagents_system.replay.client import ServerLink, WriterLink
from tfagents_system.replay.format import LAYOUT_BLOCKS, FormatError, ReplayFormat, choose
from tfagents_system.replay.limits import ReplaySettings
from tfagents_system.replay.memory import ReplayMemory
from tfagents_system.replay.sources import DataSource, MemorySource, ReverbSource
from tfagents_system.replay.tables import make_tables
from tfagents_system.replay.writers import make_experience_writer

COLLECT, EVAL = "collect", "eval"
HER_SEED_KEY = 7  # derive_seed key of HER's goal draws


# --- Seeds and shares ---

def derive_seed(base_seed: int, *keys: int) -> int:
    """A 31-bit seed that differs for every (base_seed, keys) combination."""
    entropy = [int(base_seed), len(keys), *map(int, keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def worker_env_seeds(params, worker_index: int) -> tuple[int, int]:
    """(collect seed, eval seed) of a worker: distinct per worker and per role."""
    return (derive_seed(params.seed, worker_index, 0), derive_seed(params.seed, worker_index, 1))


def collect_env_seeds(params, worker_index: int) -> list[int]:
    """Seeds of a worker's `num_envs_per_worker` collect envs; the first one is the
    worker's collect seed, so one env per worker seeds exactly as before."""
    first = worker_env_seeds(params, worker_index)[0]
    return [first] + [derive_seed(params.seed, worker_index, 0, j)
                      for j in range(1, int(params.num_envs_per_worker))]


def worker_share(total: int, num_workers: int, worker_index: int) -> int:
    """This worker's share of `total` (episodes, steps); shares differ by at most 1."""
    base, extra = divmod(total, num_workers)
    return base + (1 if worker_index < extra else 0)


def warmup_for_worker(params, num_workers: int,
                      worker_index: int) -> dict[str, int | None]:
    """This worker's uniform-random warm-up as `Collector.run` arguments: its share of
    `n_buffer_init_steps` steps when that is set, else of `n_buffer_init_episodes`."""
    if params.n_buffer_init_steps is not None:
        return {"episodes": None,
                "steps": worker_share(params.n_buffer_init_steps, num_workers, worker_index)}
    return {"episodes": worker_share(params.n_buffer_init_episodes, num_workers, worker_index),
            "steps": None}


# --- Environments ---

def env_ctor_context(env_ctor, seed, args: tuple, kind: str,
                     worker_index: int | None) -> dict:
    """`worker_index` and `env_role` for an `env_ctor` whose parameters name them (and
    whose positional `args` do not fill them). Only named parameters: a `**kwargs`
    catch-all must not get them (GymTrainParams and the README's example forward it to
    gym's constructor), so existing env_ctors are called as before."""
    try:
        signature = inspect.signature(env_ctor)
        filled = signature.bind_partial(seed, *args).arguments
    except (TypeError, ValueError):  # no signature, or args it cannot take: as before
        return {}
    named = {name for name, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in filled}
    offered = {"worker_index": worker_index, "env_role": kind}
    return {name: value for name, value in offered.items() if name in named}


def make_env(params, kind: str, seed: int | None,
             worker_index: int | None = None):
    """Build a collect or eval env through the user's `env_ctor`, for worker
    `worker_index` (None: outside a worker)."""
    from tf_agents.environments import py_environment

    args, kwargs = (
        params.collect_env_args_kwargs() if kind == COLLECT else params.eval_env_args_kwargs()
    )
    context = env_ctor_context(params.env_ctor, seed, args, kind, worker_index)
    env = params.env_ctor(seed, *args, **{**context, **kwargs})
    if not isinstance(env, py_environment.PyEnvironment):
        raise TypeError(
            f"TrainParams.env_ctor returned {type(env).__name__}, not a TF-Agents "
            "PyEnvironment; wrap gym envs with tfagents_system.envs.load_gym_env"
        )
    return env


def env_specs(params) -> tuple:
    """(time step spec, action spec) of the collect env (built once and closed)."""
    env = make_env(params, COLLECT, seed=params.seed)
    try:
        return env.time_step_spec(), env.action_spec()
    finally:
        env.close()


class Builder:
    """Makes an experiment's parts from its params. `paths` and `settings`: the
    experiment the parts belong to (None at launch, before it exists). An experiment
    trains with its own copy of its prior policy, whatever the params name."""

    def __init__(self, params, paths: ExperimentPaths | None = None,
                 settings: ExperimentSettings | None = None):
        self.params = params
        self.paths = paths
        self.capacity = None if settings is None else int(settings.replay_capacity)
        if paths is not None and params.prior_policy is not None and paths.prior_policy.is_dir():
            params.prior_policy = str(paths.prior_policy)
        self._specs = None
        self._demonstrations: demo_store.Demonstrations | None = None

    # --- environments ---

    def env(self, kind: str, seed: int | None, worker_index: int | None = None):
        """A collect or eval env, for worker `worker_index` (None: outside a worker)."""
        return make_env(self.params, kind, seed, worker_index)

    def specs(self) -> tuple:
        """(time step spec, action spec) of the collect env (built once and closed)."""
        if self._specs is None:
            self._specs = env_specs(self.params)
        return self._specs

    def worker_envs(self, worker_index: int, log) -> tuple[list, object]:
        """A worker's collect envs and eval env, each with its own seed."""
        collect_seeds = collect_env_seeds(self.params, worker_index)
        eval_seed = worker_env_seeds(self.params, worker_index)[1]
        log.info("collect env seed%s %s, eval env seed %d", "s" if len(collect_seeds) > 1
                 else "", ", ".join(map(str, collect_seeds)), eval_seed)
        collect_envs = [self.env(COLLECT, seed, worker_index) for seed in collect_seeds]
        if self._specs is None:  # the worker's own env: no other is built for the specs
            self._specs = collect_envs[0].time_step_spec(), collect_envs[0].action_spec()
        return collect_envs, self.env(EVAL, eval_seed, worker_index)

    def hindsight(self, collect_envs: list, worker_index: int):
        """`wrap(writers)`: a worker's experience writers (one per collect env) with
        HER's relabeling of each env's episodes when the params ask for it."""
        settings = hindsight.settings_of(self.params)
        if settings is None:
            return lambda writers: writers
        functions = []
        for env in collect_envs:
            goal_env = gymnasium_bridge.goal_env(env)
            problem = hindsight.env_problem(env.observation_spec(), goal_env)
            if problem:
                raise hindsight.HindsightError(f"her_strategy={settings.strategy!r}: {problem}")
            functions.append(hindsight.GoalFunctions(goal_env))
        seeds = [derive_seed(self.params.seed, HER_SEED_KEY, worker_index, i)
                 for i in range(len(collect_envs))]

        def wrap(writers):  # new generators per opening: a reconnection starts over
            return [hindsight.HindsightWriter(w, settings, f, np.random.default_rng(s))
                    for w, f, s in zip(writers, functions, seeds)]
        return wrap

    def curriculum(self, collect_envs: list, eval_env, log) -> CurriculumApplier:
        """The config's curriculum, applied to a worker's envs (which must take it)."""
        curriculum = parse_curriculum(self.params.env_config, str(self.paths.config))
        for env, kind in [(env, COLLECT) for env in collect_envs] + [(eval_env, EVAL)]:
            check_env_supports(curriculum, env, kind, str(self.paths.config))
        return CurriculumApplier(curriculum, {COLLECT: collect_envs, EVAL: eval_env}, log)

    # --- the agent ---

    def agent(self, train_step, specs: tuple | None = None):
        """The params' agent (SAC by default) on the env's specs, initialized; FormatError
        if it cannot be trained as the params ask (`agents.sac.training_problem`)."""
        from tf_agents.specs import tensor_spec

        from tfagents_system.agents.sac import training_problem

        time_step_spec, action_spec = (tensor_spec.from_spec(s) for s in specs or self.specs())
        actor_net = self.params.actor_net_ctor(time_step_spec.observation, action_spec)
        critic_net = self.params.critic_net_ctor(time_step_spec.observation, action_spec)
        agent = self.params.agent_ctor(time_step_spec, action_spec, actor_net, critic_net,
                                       train_step)
        agent.initialize()
        problem = training_problem(agent, self.params.window is not None)
        if problem:
            raise FormatError(problem)
        return agent

    def restored_agent(self, train_step, log) -> tuple[object, object, bool]:
        """(agent, checkpointer, whether it restored a checkpoint of its own): the latest
        readable learner checkpoint, else fine-tuning's parts (`finetune`)."""
        from tf_agents.utils import common

        own = choose_restorable(self.paths.checkpoints, self.paths.checkpoints_damaged, log)
        agent = self.agent(train_step)
        checkpointer = common.Checkpointer(
            str(self.paths.checkpoints), max_to_keep=self.params.checkpoints_to_keep,
            agent=agent, train_step=train_step)
        if own is None:  # before the policies are exported and published
            finetune.initialize_agent(agent, self.paths, log)
        return agent, checkpointer, own is not None

    @staticmethod
    def train_loop(agent, source: DataSource):
        """`train_steps(n, *source.loop_args())`: a compiled loop of n gradient steps,
        each on `source.next_batch`; returns the last step's LossInfo. Several steps per
        call keep Python out of the loop. The step is a function of its own, traced once
        for its two call sites (a third less tracing, the same speed)."""
        import tensorflow as tf

        from tfagents_system.agents.sac import train

        @tf.function
        def step(*loop_args):
            return train(agent, source.next_batch(*loop_args))

        @tf.function
        def train_steps(n, *loop_args):
            loss_info = step(*loop_args)
            for _ in tf.range(n - 1):
                loss_info = step(*loop_args)
            return loss_info

        return train_steps

    def summary_writer(self, kind: str, program: str | None = None):
        """A TensorBoard writer for `kind` (train/collect/eval), per worker where given."""
        import tensorflow as tf

        return tf.summary.create_file_writer(str(self.paths.tensorboard(kind, program)))

    # --- the replay data ---

    def replay_settings(self) -> ReplaySettings:
        """The replay buffer's size and the learner's sampling."""
        return self.params.replay_settings(self.capacity)

    def choose_replay_format(self, agent, capacity: int) -> ReplayFormat:
        """A new experiment's replay format (`replay.format.choose`), for this agent."""
        from tf_agents.agents.sac import sac_agent

        unsupported = (None if isinstance(agent, sac_agent.SacAgent)
                       else f"the agent is a {type(agent).__name__}, not a SacAgent")
        spec = agent.collect_data_spec
        return choose(spec, capacity, self.params.learner_keeps_replay, self.params.window,
                      self.params.n_step_returns, unsupported,
                      self.params.frame_stack).bind(spec.observation,
                                                                    spec.action)

    def recorded_format(self) -> ReplayFormat:
        """The experiment's replay format as recorded (not bound to the env's specs: the
        replay server needs no env); FatalError if there is none or it is damaged."""
        if not self.paths.layout.is_file():
            raise FatalError(f"{self.paths.layout} is missing: the launch records it; relaunch "
                             "the experiment with ./run_script.sh")
        try:
            return ReplayFormat.read(self.paths.layout)
        except ValueError as exc:
            raise FatalError(str(exc)) from exc

    def replay_format(self) -> ReplayFormat:
        """The experiment's recorded replay format, bound to the env's specs; FatalError
        if there is none, or the env or the params no longer match it."""
        recorded = self.recorded_format()
        time_step_spec, action_spec = self.specs()
        problem = recorded.mismatch(time_step_spec.observation, action_spec, self.params.window,
                                    self.params.n_step_returns, str(self.paths.layout))
        if problem:
            raise FatalError(problem)
        return recorded.bind(time_step_spec.observation, action_spec)

    def tables(self, replay_format: ReplayFormat) -> list:
        """The replay server's tables."""
        return make_tables(self.replay_settings(), replay_format)

    def replay_checkpoints(self) -> ReplayCheckpoints:
        """The replay server's table checkpoints."""
        return ReplayCheckpoints(self.paths)

    def signer(self) -> Signer:
        """Signs and checks what travels through the replay server (the experiment's key)."""
        return Signer(read_key(self.paths.replay_key))

    def _replay_auth(self) -> Path:
        """The directory of the state that refuses replayed items, made where an
        experiment from before it lacks it."""
        self.paths.replay_auth.mkdir(mode=0o700, exist_ok=True)
        return self.paths.replay_auth

    def server_link(self, address: str, should_stop, log) -> ServerLink:
        """The learner's reconnecting link to the replay server; its weights publications
        are numbered above every earlier one of the experiment."""
        auth_dir = self._replay_auth()
        floor = max((newest_acted(p) for p in auth_dir.glob(f"*{C.WEIGHTS_SEEN_SUFFIX}")),
                    default=0)
        return ServerLink(address, should_stop, log, self.signer(),
                          publications=PublicationCounter(self.paths.publications, floor))

    def writer_link(self, address: str, replay_format: ReplayFormat, count: int,
                    should_stop, give_up_writing, log, worker: str) -> WriterLink:
        """A worker's link to the replay server, with `count` experience writers (one per
        collect env) of the replay format, reopened after a reconnection, and the gate
        its weights pass (remembering the newest it acted with across restarts)."""
        signer = self.signer()
        self._replay_auth()
        gate = WeightsGate(signer, self.paths.weights_seen(worker))
        return WriterLink(address, should_stop, log, signer,
                          lambda client: make_experience_writer(client, replay_format,
                                                                give_up_writing, signer),
                          count, gate)

    def data_source(self, replay_format: ReplayFormat, agent, link: ServerLink, should_stop,
                    log) -> DataSource:
        """The learner's replay data: its own memory (packed_blocks), or Reverb's table,
        with the experiment's demonstrations mixed into every batch when it has any."""
        settings = self.replay_settings()
        if replay_format.layout == LAYOUT_BLOCKS:
            self._replay_auth()
            source = MemorySource(self._memory(replay_format, log), replay_format, settings,
                                  link, should_stop, log, self.paths.block_sequences)
        else:
            finetune.rows_to_import(self.paths, replay_format)  # refused for these layouts
            source = ReverbSource(replay_format, settings, link, agent.collect_data_spec, log)
        demonstrations = self.demonstrations(replay_format, log)
        if demonstrations is None:
            return source
        return demo_store.DemoMixSource(source, demonstrations, settings.batch_size,
                                        demo_store.DemoShare(self.params.demo_ratio,
                                                             demonstrations.count))

    def _memory(self, replay_format: ReplayFormat, log) -> ReplayMemory:
        """The learner's replay memory, restored from its log; an empty one of a
        fine-tuned experiment first takes the source's rows."""
        capacity = replay_format.items(self.capacity)
        memory = ReplayMemory(capacity, replay_format.packer().size, self.paths.replay_memory)
        restored = memory.restore()
        log.info("replay memory: %d transitions restored (%d stored in all), capacity %d",
                 restored, memory.inserted, capacity)
        rows = None if memory.inserted else finetune.rows_to_import(self.paths, replay_format)
        if rows is not None:
            memory.import_rows(rows)
            log.info("fine-tuning: imported %d replay rows (transitions, or windows of "
                     "recurrent training) from the source experiment", len(rows))
        return memory

    def demonstrations(self, replay_format: ReplayFormat, log
                       ) -> demo_store.Demonstrations | None:
        """The experiment's stored demonstration rows (loaded once); None without any."""
        if self._demonstrations is not None:
            return self._demonstrations
        if replay_format.frames is not None:
            return None  # refused at launch (`launch.checks`)
        found = demo_store.load(self.paths.demonstrations, replay_format.packer().size)
        if found is None:
            if self.params.env_config.get("demonstrations") or self.params.demonstrations:
                raise FatalError(f"{self.paths.demonstrations} is missing: the experiment's "
                                 "demonstrations are stored there when the launcher creates "
                                 "it; start a new experiment to load them")
            return None
        rows, meta = found
        ratio = self.params.demo_ratio
        log.info("demonstrations: %d rows from %s (stored at creation), share of each batch: "
                 "%s", len(rows), ", ".join(meta.files),
                 "their share of all rows" if ratio is None else ratio)
        self._demonstrations = demo_store.Demonstrations(rows, replay_format.packer())
        return self._demonstrations

    def warm_start(self, agent, replay_format: ReplayFormat, writer, log
                   ) -> Callable[[], float] | None:
        """The behaviour-cloning warm start on the demonstrations (None without one)."""
        steps = int(self.params.bc_warm_start_steps)
        demonstrations = self.demonstrations(replay_format, log)
        if not steps or demonstrations is None:
            return None
        from tfagents_system.agents import behaviour_cloning

        batch_size = self.replay_settings().batch_size
        return lambda: behaviour_cloning.warm_start(
            agent, lambda: demonstrations.batch(batch_size), steps,
            self.params.actor_learning_rate, writer, log)

    # --- the workers' policies ---

    def collect_actor(self, env, seed: int, log) -> tuple:
        """(actor, TF variables to refresh): numpy for the default actor network, else
        the exported collect policy."""
        from tf_agents.policies import py_tf_eager_policy
        from tf_agents.specs import tensor_spec

        actor_net = self.params.actor_net_ctor(tensor_spec.from_spec(env.observation_spec()),
                                               tensor_spec.from_spec(env.action_spec()))
        actor, reason = NumpyActor.from_network(actor_net, env.action_spec(), seed,
                                                self.params.sde_sample_freq)
        if actor is not None:
            log.info("collect policy: the SAC actor network in numpy%s",
                     " with gSDE's noise" if self.params.use_sde is True else "")
            return actor, []
        log.info("collect policy: the exported TF policy (%s)", reason)
        if self.params.use_sde is True:
            log.warning("use_sde: the exported TF policy samples gSDE's density afresh at "
                        "every step (no noise matrix held over an episode)")
        policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
            str(self.paths.policy(C.COLLECT_POLICY)), load_specs_from_pbtxt=True,
            batch_time_steps=False)
        return TFPolicyActor(policy, self.params.num_envs_per_worker), policy.variables()

    def eval_policy(self, actor) -> tuple:
        """(greedy policy, TF variables to refresh) for a worker's evaluation: the numpy
        actor's mode when the collect actor is a NumpyActor (the same network), else the
        exported greedy policy."""
        from tf_agents.policies import py_tf_eager_policy

        if isinstance(actor, NumpyActor):
            return NumpyGreedyPolicy(actor), []
        policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
            str(self.paths.policy(C.GREEDY_POLICY)), load_specs_from_pbtxt=True)
        return policy, policy.variables()
