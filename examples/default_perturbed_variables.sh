# Training variables for ./run_script.sh (sourced by bash; relative paths are
# relative to this file). Every variable is documented in README.md.

# The params file (class TrainParams) and the JSON config it receives as env_config.
SAC_PARAMS=inverted_pendulum.py
SAC_CONFIG=../config/default_perturbed.json
# Experiment name: everything goes to $SAC_LOGS_DIR/$SAC_EXP_NAME; the same
# name again resumes the experiment.
SAC_EXP_NAME=default_perturbed
SAC_LOGS_DIR=../logs

# CPU layout. Each program is pinned with taskset to its own CPUs, taken from
# the CPUs this launch may use (its affinity: right inside cgroups and SLURM).
# "auto": replay server 1 CPU (2 from 32 CPUs), learner CPUs/4 (1 to 8), one
# CPU per worker on what is left. On 1-2 CPUs the learner keeps one CPU and
# the replay server and the workers share the other.
SAC_NUM_COLLECT_WORKERS=auto   # collect/eval workers
SAC_REVERB_CPUS=auto           # CPUs for the Reverb replay server
SAC_TRAIN_CPUS=auto            # CPUs for the learner
SAC_COLLECT_WORKER_CPUS=auto   # CPUs for each worker
