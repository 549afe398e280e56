# Training variables for ./run_script.sh (sourced by bash; relative paths are
# relative to this file). Every variable is documented in README.md.
# The pixels preset (SAC from 84x84 images, DrQ augmentation) on dm_control cheetah run: ./run_script.sh examples/dmc_cheetah_run_variables.sh

# The params file (class TrainParams) and the JSON config it receives as env_config.
SAC_PARAMS=pixels.py
SAC_CONFIG=../config/dmc_cheetah_run.json
# Experiment name: everything goes to $SAC_LOGS_DIR/$SAC_EXP_NAME; the same
# name again resumes the experiment.
SAC_EXP_NAME=dmc_cheetah_run
SAC_LOGS_DIR=../logs

# CPU layout: see training_variables.sh and README.md ("The CPU layout").
SAC_NUM_COLLECT_WORKERS=auto   # collect/eval workers
SAC_REVERB_CPUS=auto           # CPUs for the Reverb replay server
SAC_TRAIN_CPUS=auto            # CPUs for the learner
SAC_COLLECT_WORKER_CPUS=auto   # CPUs for each worker
