"""The launch: validate everything, create or reopen the experiment, run its programs
under supervisord and show their progress.

    python -m tfagents_system.launch TRAINING_VARIABLES.sh

(`train_script.sh` calls this.) Everything is checked before the first program
starts: a bad variable, config, params file or environment gives one line and exit
code 2, and no existing experiment is touched.

- `errors`: what a launch refuses with (`BAD_INPUT`: one `error:` line, exit code 2).
- `host`: the machine's checks (network exposure, free disk space).
- `checks`: the user's environment and settings as the experiment will run them (the
  env's steps and specs, the replay capacity, a prior policy, a fine-tuning source,
  the replay format, the demonstrations), under a time bound.
- `experiment`: the experiment directory: created whole, or reopened, and its lock.
- `plan`: `prepare`, the new and the resumed path to a `Plan`, and where programs run.
- `processes`: the supervised programs, supervisord, other nodes' steps, the run loop.
- `console`: the progress line, the summary, the final video; `main`.
"""
