# Plain SAC on the default pendulum at one gradient step per env step: the baseline
# of the prior-data comparisons (README, "Learning from prior data").
SAC_PARAMS=prior_data.py
SAC_CONFIG=../config/default.json
SAC_EXP_NAME=prior_data_plain
SAC_LOGS_DIR=../logs
SAC_FINAL_VIDEO=0

SAC_NUM_COLLECT_WORKERS=auto   # collect/eval workers
SAC_REVERB_CPUS=auto           # CPUs for the Reverb replay server
SAC_TRAIN_CPUS=auto            # CPUs for the learner
SAC_COLLECT_WORKER_CPUS=auto   # CPUs for each worker
