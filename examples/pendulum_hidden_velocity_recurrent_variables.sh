# The pendulum without its velocities (config/pendulum_hidden_velocity.json), with the
# LSTM agent:
#   ./run_script.sh examples/pendulum_hidden_velocity_recurrent_variables.sh
# Relative paths are relative to this file.
SAC_PARAMS=pendulum_recurrent.py
SAC_CONFIG=../config/pendulum_hidden_velocity.json
SAC_EXP_NAME=pendulum_hidden_velocity_recurrent
SAC_LOGS_DIR=../logs

SAC_NUM_COLLECT_WORKERS=auto   # collect/eval workers
SAC_REVERB_CPUS=auto           # CPUs for the Reverb replay server
SAC_TRAIN_CPUS=auto            # CPUs for the learner
SAC_COLLECT_WORKER_CPUS=auto   # CPUs for each worker
