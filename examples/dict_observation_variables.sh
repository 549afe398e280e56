# Training variables for ./run_script.sh (sourced by bash; relative paths are
# relative to this file). Every variable is documented in README.md.
# A dict observation (position, velocity, goal, an int32 counter and a bool flag):
# README, "Structured observations".

# The params file (class TrainParams) and the JSON config it receives as env_config.
SAC_PARAMS=dict_observation.py
SAC_CONFIG=../config/dict_observation.json
# Experiment name: everything goes to $SAC_LOGS_DIR/$SAC_EXP_NAME; the same
# name again resumes the experiment.
SAC_EXP_NAME=dict_observation
SAC_LOGS_DIR=../logs

# CPU layout: see training_variables.sh.
SAC_NUM_COLLECT_WORKERS=auto   # collect/eval workers
SAC_REVERB_CPUS=auto           # CPUs for the Reverb replay server
SAC_TRAIN_CPUS=auto            # CPUs for the learner
SAC_COLLECT_WORKER_CPUS=auto   # CPUs for each worker
