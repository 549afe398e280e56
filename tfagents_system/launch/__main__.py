"""`python -m tfagents_system.launch TRAINING_VARIABLES.sh` (train_script.sh runs it)."""

from tfagents_system.launch.console import main

raise SystemExit(main())
