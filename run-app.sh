#!/usr/bin/env bash
# Set up (first time) and start ACMR Lab on http://127.0.0.1:8501 . Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
exec .venv/bin/python -m streamlit run app/main.py "$@"
