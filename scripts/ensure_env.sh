# Sourced by run_script.sh and tests/run.sh: makes sure the project's Python
# environment exists with the pinned stack, and exports SAC_PYTHON.
#
# SAC_PYTHON=/path/to/python  use that interpreter as is (e.g. a conda env made
#                             from environment.yml); nothing is installed.
# SAC_VENV=/path              where to create the virtual environment
#                             (default: .venv in the repository).
_sac_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${SAC_PYTHON:-}" ]; then
  _sac_venv="${SAC_VENV:-$_sac_root/.venv}"
  _sac_want="$(sha256sum "$_sac_root/requirements.txt" | cut -d' ' -f1)"
  if [ ! -x "$_sac_venv/bin/python" ] || [ "$(cat "$_sac_venv/.requirements.sha256" 2>/dev/null)" != "$_sac_want" ]; then
    _sac_boot=""
    for _c in "${SAC_BOOTSTRAP_PYTHON:-}" python3.11 python3 python; do
      if [ -n "$_c" ] && command -v "$_c" >/dev/null 2>&1 && \
         "$_c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
        _sac_boot="$_c"; break
      fi
    done
    if [ -z "$_sac_boot" ]; then
      echo "error: Python 3.11 not found (the pinned stack needs exactly 3.11); install it or set SAC_BOOTSTRAP_PYTHON=/path/to/python3.11" >&2
      exit 2
    fi
    echo "setting up the Python environment in $_sac_venv (first use only; a few minutes)..."
    "$_sac_boot" -m venv "$_sac_venv" || { echo "error: '$_sac_boot -m venv' failed; on Debian/Ubuntu install python3.11-venv" >&2; exit 2; }
    "$_sac_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$_sac_root/requirements.txt" \
      || { echo "error: installing $_sac_root/requirements.txt failed (see pip's message above)" >&2; exit 2; }
    echo "$_sac_want" > "$_sac_venv/.requirements.sha256"
  fi
  SAC_PYTHON="$_sac_venv/bin/python"
fi
# Off-screen rendering (pixel observations, MuJoCo videos) needs OSMesa: installed
# here when it is missing and this is a root shell with apt-get; otherwise a launch
# that must render says so in one line, naming the package.
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa && [ "$(id -u)" = 0 ] && \
   command -v apt-get >/dev/null 2>&1; then
  echo "installing libosmesa6 (off-screen rendering; first use only)..."
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends libosmesa6 >/dev/null; } \
    || echo "warning: could not install libosmesa6; pixel envs and MuJoCo videos need it" >&2
fi
if ! command -v taskset >/dev/null 2>&1; then
  echo "error: taskset not found; install util-linux (apt-get install util-linux)" >&2
  exit 2
fi
export SAC_PYTHON
