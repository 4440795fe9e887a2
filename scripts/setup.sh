#!/usr/bin/env bash
# Create or update the virtual environment at .venv (idempotent: reinstalls only when a requirements file changed).
#   scripts/setup.sh          the app's packages
#   scripts/setup.sh --dev    plus test tools, and Debian's Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1
req=requirements.txt; [ $dev = 1 ] && req=requirements-dev.txt
PY=${PYTHON:-python3}
stamp=.venv/.installed-$(cat requirements.txt "$req" | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  # a fresh install takes about 7 GB (torch ships its CUDA libraries) and pip unpacks wheels beside it: say so
  # plainly rather than let pip stop half-way with "OSError: [Errno 28] No space left on device"
  need_gb=${ACMR_SETUP_NEED_GB:-9}
  free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
  if [ -n "$free_kb" ] && [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
    echo "[setup] only $((free_kb / 1024 / 1024)) GB free on the disk that holds $(pwd): installing the packages" \
         "needs about $need_gb GB. Free some space (old virtual environments, checkouts, pip's cache) and run" \
         "this again (ACMR_SETUP_NEED_GB=0 skips this check)." >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PY --version)"
    $PY -m venv .venv
  fi
  echo "[setup] installing $req into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
# umap-learn's numba code, compiled once into numba's disk cache: otherwise the first process after an install
# compiles it (about a minute of CPU on a 2-core laptop) while the app starts up or the tests run; and the
# built-in shapes dataset the app starts with, built once into the dataset cache (22 s here)
compiled=.venv/.umap-compiled-${stamp##*-}
if [ ! -f "$compiled" ]; then
  echo "[setup] compiling UMAP's code and building the built-in dataset, once (about a minute)"
  if .venv/bin/python -m acmr_core warm-up; then touch "$compiled"; fi
fi
if [ $dev = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "[setup] /usr/bin/chromium is missing and cannot be installed here: browser tests will be skipped" >&2
  fi
fi
