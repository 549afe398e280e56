"""`python -m tfagents_system.plot EXP_DIR ... [--output PNG]`: learning curves
(`tools.plots`)."""

import sys

from tfagents_system.tools.plots import main

if __name__ == "__main__":
    sys.exit(main())
