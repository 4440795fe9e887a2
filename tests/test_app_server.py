"""The served app's start-up and shutdown, as `streamlit run app/main.py` (no browser): the dashboard answers
before the search app is built, and the server stops at once when asked, even before any client came."""
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())
    except Exception:  # noqa: BLE001 - not up yet
        return None


def test_the_server_answers_before_the_search_app_is_built_and_stops_at_once_before_any_client(tmp_path):
    port = free_port()
    env = dict(os.environ, ACMR_PREFETCH="0", ACMR_DEFER_STARTUP_S="600", ACMR_RUNS_DIR=str(tmp_path / "runs"),
               ACMR_CHECKPOINTS_DIR=str(tmp_path / "checkpoints"), ACMR_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        while (health := _health(port)) is None:
            assert proc.poll() is None and time.monotonic() - t0 < 90, "the app did not start"
            time.sleep(0.2)
        # no page drawn, no /gradio request: the search app and the start-up work wait for a client
        assert health["search"] == "loading" and health["umap"] == "idle", health
        t1 = time.monotonic()
        proc.terminate()
        proc.wait(30)
        # it did not wait for a build that no client asked for (600 s here)
        assert time.monotonic() - t1 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
