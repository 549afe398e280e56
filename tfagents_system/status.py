"""`python -m tfagents_system.status EXP_DIR` (or `./run_script.sh --status EXP_DIR`):
the state of a running or finished experiment (`tools.status`)."""

import sys

from tfagents_system.tools.status import main

if __name__ == "__main__":
    sys.exit(main())
