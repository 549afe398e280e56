"""Names shared by every program, so the processes cannot disagree.

The experiment directory layout, the Reverb table names and the metric names
live here and nowhere else.
"""

# Reverb tables.
EXPERIENCE_TABLE = "experience"
# packed_blocks layout: workers write blocks of transitions into this FIFO queue,
# the learner drains it into its own replay memory.
QUEUE_TABLE = "experience_queue"
WEIGHTS_TABLE = "variables"

# SAC learns from (s, a, r, s') transitions: two consecutive steps per item.
SEQUENCE_LENGTH = 2

# Experiment directory layout (relative to logs/<SAC_EXP_NAME>/); paths.ExperimentPaths
# joins them.
CONFIG_COPY = "config.json"
PARAMS_COPY = "params.py"
SETTINGS_FILE = "settings.json"
LAUNCHES_FILE = "launches.jsonl"
LAUNCH_LOCK_FILE = ".launch.lock"
LAYOUT_FILE = "replay_layout.json"  # the experience-item layout, chosen at creation
REPLAY_KEY_FILE = "replay.key"  # the secret that signs experience and weights (mode 0600)
CHECKPOINT_DIR = "checkpoints"
DAMAGED_CHECKPOINT_DIR = "checkpoints_damaged"  # learner checkpoints that could not be read
TF_CHECKPOINT_INDEX = "checkpoint"  # TensorFlow's index file in a checkpoint directory
REPLAY_CHECKPOINT_DIR = "replay_checkpoints"  # Reverb's own (it keeps only the newest)
REPLAY_CHECKPOINTS_KEPT_DIR = "replay_checkpoints_kept"  # hard links to the newest complete
REPLAY_CHECKPOINTS_DAMAGED_DIR = "replay_checkpoints_damaged"  # ones Reverb failed to load
REPLAY_CHECKPOINT_LOCK = ".replay_checkpoint.lock"  # serializes the learner's and server's saves
REPLAY_CHECKPOINTS_TO_KEEP = 2
DEMONSTRATIONS_DIR = "demonstrations"  # the demonstrations' replay rows, stored at creation
REPLAY_MEMORY_DIR = "replay_memory"  # the learner's log of every transition it stored
REPLAY_AUTH_DIR = "replay_auth"  # what makes replays of genuine items fail: counters, sequences
PUBLICATIONS_FILE = "publications.json"  # under REPLAY_AUTH_DIR: the learner's number ceiling
BLOCK_SEQUENCES_FILE = "block_sequences.npz"  # under REPLAY_AUTH_DIR: writers' last blocks
WEIGHTS_SEEN_SUFFIX = ".weights.json"  # under REPLAY_AUTH_DIR: a worker's newest weights
# A worker that has refused every weights item for this long says so (log, status, monitor).
STALE_WEIGHTS_S = 120.0
REPLAY_IMPORTED_FILE = "imported.json"  # under REPLAY_MEMORY_DIR: rows fine-tuning imported
# Fine-tuning: the source, checkpoint and parts a new experiment started from, and its
# copy of that checkpoint.
INIT_FROM_FILE = "init_from.json"
INIT_FROM_CHECKPOINT_DIR = "init_from_checkpoint"
# Prior-regularized SAC: the experiment's copy of its prior policy (a SavedModel).
PRIOR_POLICY_DIR = "prior_policy"
POLICY_DIR = "policies"
COLLECT_POLICY = "collect_policy"
GREEDY_POLICY = "greedy_policy"
BC_POLICY = "bc_policy"  # under POLICY_DIR: the collect policy after the BC warm start
POLICY_READY = "READY"  # sentinel written last into an exported policy dir
POLICY_CHECKPOINT_DIR = "checkpoints"  # under POLICY_DIR: greedy weights per checkpoint
POLICY_CHECKPOINT_PREFIX = "policy_checkpoint_"
FINAL_POLICY_DIR = "final"  # under POLICY_DIR: the policies with the final weights
TRAIN_TB_DIR = "train"
COLLECT_TB_DIR = "collect"
EVAL_TB_DIR = "eval"
PROCESS_LOG_DIR = "process_logs"
STATUS_DIR = "status"
COMPLETE_FILE = "TRAINING_COMPLETE.json"
VARIANT_FILE = "variant.json"  # a sweep task's overrides (absent for plain runs)
EVALUATIONS_DIR = "evaluations"  # tfagents_system.run's output, one dir per evaluation
EVAL_SUMMARY_FILE = "summary.json"
ENSEMBLE_PREFIX = "ensemble_"  # + a hash of its members: an ensemble's evaluation name
ENSEMBLE_FILE = "ensemble.json"  # in an exported ensemble: its members
CONDITION_SWEEP_PREFIX = "sweep_"  # + the sweep file's stem + "_" + the evaluation name
CONDITION_SWEEP_STEM = "robustness"  # a condition sweep's robustness.{csv,md,json,png}
FINAL_EVALUATION = "final"  # the evaluation made when training completes: final_seed0
LEARNING_CURVES_FILE = "learning_curves.png"
# Supervision of one launch (another node's under RUN_DIR/node-<name>/).
RUN_DIR = "run"
RUN_NODE_PREFIX = "node-"
SUPERVISOR_PID = "supervisord.pid"
SUPERVISOR_CONF = "supervisord.conf"
SUPERVISOR_FILE = "supervisor.json"  # supervisord's socket, for the monitor and status
OUTCOME_FILE = "outcome.json"
FATAL_SUFFIX = ".fatal.json"  # run/<program>.fatal.json: an error a restart cannot fix
RESTARTS_FILE = "restarts.json"
DISK_RESERVE_FILE = ".disk_reserve"  # room the monitor keeps for the outcome on a full disk
MONITOR = "monitor"  # the event listener's program and log name
SUPERVISORD = "supervisord"

# Program names (also the stems of their log, status and heartbeat files).
REPLAY_SERVER = "replay_server"
LEARNER = "learner"
WORKER_PREFIX = "worker_"
STATUS_SUFFIX = ".json"
HEARTBEAT_SUFFIX = ".heartbeat"
LOG_SUFFIX = ".log"


# An array task's (or SAC_TASK_ID's) experiment: <SAC_EXP_NAME><TASK_INFIX><task id>.
TASK_INFIX = "_task_"


def task_experiment_name(exp_name: str, task_id: int) -> str:
    """The experiment directory name of task `task_id` of experiment `exp_name`."""
    return f"{exp_name}{TASK_INFIX}{task_id}"


def worker_name(index: int) -> str:
    """The program name of worker `index`."""
    return f"{WORKER_PREFIX}{index}"


def is_worker(program: str) -> bool:
    """Whether a program name is a worker's."""
    return program.startswith(WORKER_PREFIX)


def policy_checkpoint_name(train_step: int) -> str:
    """The directory name of the greedy policy's checkpoint at `train_step`."""
    return f"{POLICY_CHECKPOINT_PREFIX}{int(train_step):010d}"


def policy_checkpoint_step(name: str) -> int | None:
    """The train step a policy checkpoint directory name holds, or None if it is not one."""
    digits = name[len(POLICY_CHECKPOINT_PREFIX):]
    if not name.startswith(POLICY_CHECKPOINT_PREFIX) or not digits.isascii() \
            or not digits.isdigit():
        return None
    return int(digits)


def evaluation_name(checkpoint: str, seed: int) -> str:
    """The directory name of an evaluation of `checkpoint` with `seed`."""
    return f"{checkpoint}_seed{seed}"


# Config keys the framework itself reads (GymTrainParams, the curriculum); a sweep may set
# them even where the config file leaves them out.
CONFIG_KEYS = ("env_id", "max_episode_steps", "gym_kwargs", "domain_randomization",
               "perturbations", "observation_indices", "curriculum", "demonstrations",
               "pixels", "agent")

# Exit code of every command for bad input (one `error:` line names the fix).
EXIT_BAD_INPUT = 2

# Environment variables through which the launcher tells a program its share.
ENV_THREADS = "SAC_PROCESS_THREADS"

# TensorBoard metric names (documented in README.md, section "TensorBoard metrics").
M_ACTOR_LOSS = "losses/actor_loss"
M_CRITIC_LOSS = "losses/critic_loss"
M_ALPHA_LOSS = "losses/alpha_loss"
M_ALPHA = "alpha"
M_ENTROPY = "policy/entropy"
# Only with a prior policy (README, "Prior-regularized SAC").
M_PRIOR_DIVERGENCE = "prior_divergence"
M_GRAD_STEPS_PER_SEC = "speed/grad_steps_per_sec"
M_REPLAY_SIZE = "replay/size"
M_DEMO_SHARE = "replay/demo_share"
M_BC_LOSS = "losses/bc_loss"
M_RETURN = "episode/return"
M_EPISODE_LENGTH = "episode/length"
M_ENV_STEPS = "episode/env_steps"
M_ENV_STEPS_PER_SEC = "speed/env_steps_per_sec"
M_EVAL_RETURN = "eval/return"
M_EVAL_LENGTH = "eval/episode_length"
M_CURRICULUM_PREFIX = "curriculum/"  # + parameter name, per worker (collect/<worker>/)
# Task metrics, from each episode's final step info (TrainParams.episode_success and
# episode_metrics): the success rate, and each named scalar as <prefix><name>.
SUCCESS_RATE = "success_rate"
M_COLLECT_METRIC_PREFIX = "collect/"
M_EVAL_METRIC_PREFIX = "eval/"
M_COLLECT_SUCCESS_RATE = M_COLLECT_METRIC_PREFIX + SUCCESS_RATE
M_EVAL_SUCCESS_RATE = M_EVAL_METRIC_PREFIX + SUCCESS_RATE
# A worker's collect task metrics are means over its last this many episodes reporting them.
COLLECT_METRICS_WINDOW = 100
