# The partially observed pendulum (config/pendulum_po.json) with the feed-forward
# agent of the default example:
#   ./run_script.sh examples/pendulum_po_ff_variables.sh
# Relative paths are relative to this file.
SAC_PARAMS=inverted_pendulum.py
SAC_CONFIG=../config/pendulum_po.json
SAC_EXP_NAME=pendulum_po_ff
SAC_LOGS_DIR=../logs

SAC_NUM_COLLECT_WORKERS=auto   # collect/eval workers
SAC_REVERB_CPUS=auto           # CPUs for the Reverb replay server
SAC_TRAIN_CPUS=auto            # CPUs for the learner
SAC_COLLECT_WORKER_CPUS=auto   # CPUs for each worker
