#!/usr/bin/env bash
# Set up (first time, Chromium included), lint with ruff and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --dev
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
