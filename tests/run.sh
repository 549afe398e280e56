#!/usr/bin/env bash
# Runs the whole test suite: ./tests/run.sh [pytest args]
# Sets up the project's Python environment first if it is missing (the same
# one run_script.sh uses). Slow learning tests run too; add -m "not slow" to
# skip them locally.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/ensure_env.sh" || exit $?
cd "$ROOT"
"$SAC_PYTHON" -m pytest tests "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "error: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
exit $rc
