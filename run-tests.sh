#!/usr/bin/env bash
# Set up (first time, Chromium included), lint with ruff and run the whole test suite. Extra arguments go to pytest
# (e.g. -m "not slow and not browser" for the quick loop).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --dev
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
.venv/bin/ruff check --quiet .
# two workers (pytest-xdist), each test file on one worker; when browser tests run, all of them on the same worker,
# one after another (loadgroup, tests/conftest.py). Without browser tests plain loadfile: measured 15-20 s
# faster on the quick loop. Pass -n 0 to run in one process.
dist=loadgroup
case " $* " in *"not browser"*) dist=loadfile ;; esac
exec .venv/bin/python -m pytest -n "${ACMR_TEST_WORKERS:-2}" --dist "$dist" "$@"
