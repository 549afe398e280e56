# prior-data comparison (README, "Learning from prior data"): the plain variant; SAC_TASK_ID=i runs seed i.
SAC_PARAMS=prior_data.py
SAC_CONFIG=../config/default.json
SAC_EXP_NAME=prior_data_plain
SAC_SWEEP=prior_data_plain.json
SAC_LOGS_DIR=../logs
SAC_FINAL_VIDEO=0

SAC_NUM_COLLECT_WORKERS=auto   # collect/eval workers
SAC_REVERB_CPUS=auto           # CPUs for the Reverb replay server
SAC_TRAIN_CPUS=auto            # CPUs for the learner
SAC_COLLECT_WORKER_CPUS=auto   # CPUs for each worker
