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
POLICY_KEY = "policy_variables"
TRAIN_STEP_KEY = "train_step"

# SAC learns from (s, a, r, s') transitions: two consecutive steps per item.
SEQUENCE_LENGTH = 2

# Experiment directory layout (relative to logs/<SAC_EXP_NAME>/).
CONFIG_COPY = "config.json"
PARAMS_COPY = "params.py"
SETTINGS_FILE = "settings.json"
LAUNCHES_FILE = "launches.jsonl"
CHECKPOINT_DIR = "checkpoints"
REPLAY_CHECKPOINT_DIR = "replay_checkpoints"
REPLAY_CHECKPOINTS_TO_KEEP = 2
REPLAY_MEMORY_DIR = "replay_memory"  # the learner's log of every transition it stored
POLICY_DIR = "policies"
COLLECT_POLICY = "collect_policy"
GREEDY_POLICY = "greedy_policy"
POLICY_READY = "READY"  # sentinel written last into an exported policy dir
TRAIN_TB_DIR = "train"
COLLECT_TB_DIR = "collect"
EVAL_TB_DIR = "eval"
PROCESS_LOG_DIR = "process_logs"
STATUS_DIR = "status"
COMPLETE_FILE = "TRAINING_COMPLETE.json"
VARIANT_FILE = "variant.json"  # a sweep task's overrides (absent for plain runs)

# Program names (also the log file stems and status file stems).
REPLAY_SERVER = "replay_server"
LEARNER = "learner"


def worker_name(index: int) -> str:
    return f"worker_{index}"


# Environment variables through which the launcher tells a program its share.
ENV_THREADS = "SAC_PROCESS_THREADS"

# TensorBoard metric names (documented in README.md, section "TensorBoard metrics").
M_ACTOR_LOSS = "losses/actor_loss"
M_CRITIC_LOSS = "losses/critic_loss"
M_ALPHA_LOSS = "losses/alpha_loss"
M_ALPHA = "alpha"
M_ENTROPY = "policy/entropy"
M_GRAD_STEPS_PER_SEC = "speed/grad_steps_per_sec"
M_REPLAY_SIZE = "replay/size"
M_RETURN = "episode/return"
M_EPISODE_LENGTH = "episode/length"
M_ENV_STEPS = "episode/env_steps"
M_ENV_STEPS_PER_SEC = "speed/env_steps_per_sec"
M_EVAL_RETURN = "eval/return"
M_EVAL_LENGTH = "eval/episode_length"
M_CURRICULUM_PREFIX = "curriculum/"  # + parameter name, per worker (collect/<worker>/)
