"""Runs on disk, end to end in a real browser (Debian's Chromium driven by Playwright) against
`streamlit run app/main.py`, the command a user runs:

  start a run from the page, reload: the run is still on screen and moving; a second browser profile (another
  viewer) sees the same run; kill -9 the server mid-run: `python -m acmr_core runs` lists the run as
  `interrupted` with the epochs it finished, and the restarted app shows what it recorded.

    .venv/bin/python -m pytest tests/test_runs_browser.py -m browser -s
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from browser import (
    CHROMIUM,
    FLAGS,
    MISSING,
    free_port,
    have_chromium,
    http_status,
    progress_text,
    set_number,
    shared_cache_dir,
    stop_process,
)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not have_chromium(), reason=MISSING)]


def start_server(tmp: Path, env: dict, log_name: str):
    port = free_port()
    log = open(tmp / log_name, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while http_status(f"http://127.0.0.1:{port}/healthz") != 200:
        if proc.poll() is not None or time.monotonic() - t0 > 120:
            proc.kill()
            pytest.fail(f"the app did not start: {(tmp / log_name).read_text()[-2000:]}")
        time.sleep(0.3)
    return proc, f"http://127.0.0.1:{port}/", log


@contextlib.contextmanager
def two_profiles(width: int, height: int):
    """Two fresh Chromium profiles (two viewers that share nothing: no cookies, no storage) in one Playwright."""
    from playwright.sync_api import sync_playwright

    dirs = [tempfile.mkdtemp(prefix="acmr-chromium-") for _ in range(2)]
    try:
        with sync_playwright() as p:
            ctxs = [p.chromium.launch_persistent_context(d, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                         viewport={"width": width, "height": height}) for d in dirs]
            try:
                yield ctxs
            finally:
                for c in ctxs:
                    c.close()
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def chart_points(pg, title_part: str) -> int:
    """How many points the longest trace of the chart titled `title_part` has (0 if there is no such chart)."""
    return pg.evaluate("""(part) => {
        const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
            .find(g => String((g.layout && g.layout.title && (g.layout.title.text || g.layout.title)) || '').includes(part));
        if (!gd) return 0;
        return Math.max(0, ...(gd._fullData || []).map(t => (t.x || []).length));
    }""", title_part)


def mark_chart(pg, title_part: str) -> bool:
    """Tag the drawing of the chart titled `title_part` (its first SVG layer: Plotly.react keeps it, a chart drawn
    again from scratch gets a new one); marked_points() later reads the chart that still holds the tag."""
    return pg.evaluate("""(part) => {
        const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
            .find(g => String((g.layout && g.layout.title && (g.layout.title.text || g.layout.title)) || '').includes(part));
        if (!gd) return false;
        const svg = gd.querySelector('svg.main-svg');
        if (!svg) return false;
        svg.dataset.acmrMark = 'kept';
        return true;
    }""", title_part)


def marked_points(pg) -> int:
    """Points in the longest trace of the chart tagged by mark_chart (0 once that node is gone)."""
    return pg.evaluate("""() => {
        const svg = document.querySelector('svg.main-svg[data-acmr-mark="kept"]');
        const gd = svg && svg.closest('.js-plotly-plot');
        return gd ? Math.max(0, ...(gd._fullData || []).map(t => (t.x || []).length)) : 0;
    }""")


def wait_for(pg, pred, timeout: float, what: str, shots: Path):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            v = pred()
            if v:
                return v
        except Exception:  # noqa: BLE001 - the page is re-rendering
            pass
        time.sleep(0.5)
    pg.screenshot(path=str(shots / "runs-failed.png"), full_page=True)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (screenshot: {shots / 'runs-failed.png'})")


def epochs_on_disk(run_dir: Path) -> list[int]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e["epoch"] for e in map(json.loads, lines) if e.get("kind") == "epoch" and e["epoch"] > 0]


def test_reload_second_viewer_kill_and_restart(tmp_path):
    pytest.importorskip("playwright.sync_api")
    shots = Path(os.environ.get("ACMR_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    runs_dir = tmp_path / "runs"
    env = dict(os.environ, ACMR_PREFETCH="0", ACMR_CACHE_DIR=str(shared_cache_dir()), ACMR_RUNS_DIR=str(runs_dir),
               ACMR_CHECKPOINTS_DIR=str(tmp_path / "checkpoints"))
    proc, url, log = start_server(tmp_path, env, "server.log")
    try:
        with two_profiles(1400, 1500) as (ctx_a, ctx_b):
            a = ctx_a.new_page()
            a.set_default_timeout(60_000)
            a.goto(url, wait_until="domcontentloaded")
            a.get_by_role("button", name="Start").wait_for()
            assert a.get_by_text("may pause or stop it").first.is_visible()      # who may control a run, said
            a.get_by_text("Shapes options").click()
            set_number(a, "Pairs", 400)
            a.get_by_text("Optimisation").first.click()
            set_number(a, "Epochs", 1000)                                       # far more than the test waits for
            a.get_by_role("button", name="Start").click()

            # the page names the run in its address, and on screen
            rid = wait_for(a, lambda: (re.search(r"[?&]run=([\w-]+)", a.evaluate("location.search")) or [None, None])[1],
                           120, "the run id in the URL", shots)
            wait_for(a, lambda: chart_points(a, "Losses during training") > 0, 240, "the first loss points", shots)
            wait_for(a, lambda: rid in progress_text(a), 180, "the run id on the page", shots)

            # reload: the same run, still on screen, still moving
            a.reload(wait_until="domcontentloaded")
            wait_for(a, lambda: rid in progress_text(a), 180, "the run after the reload", shots)
            n1 = wait_for(a, lambda: chart_points(a, "Losses during training"), 180, "the loss chart after the reload", shots)
            assert mark_chart(a, "Losses during training")
            # it keeps growing, and in place: the same chart gets the new points (Plotly.react, app/live_chart.py),
            # it is not thrown away and drawn again at every poll
            wait_for(a, lambda: marked_points(a) > n1, 180, "the same loss chart to keep growing", shots)
            assert "training" in progress_text(a) and a.get_by_role("button", name="Stop").is_enabled()
            a.screenshot(path=str(shots / "runs-01-after-reload.png"))
            # the first viewer leaves (its live page would take one of the machine's two cores from the next one's
            # first load: 27 s instead of 10; two viewers at once are tested in test_dashboard.py)
            a.close()

            # a second viewer (another browser profile, the plain address) sees the same run, moving
            b = ctx_b.new_page()
            b.set_default_timeout(60_000)
            b.goto(url, wait_until="domcontentloaded")
            wait_for(b, lambda: rid in progress_text(b), 180, "the live run in the second profile", shots)
            m1 = wait_for(b, lambda: chart_points(b, "Losses during training"), 180, "the second viewer's loss chart", shots)
            wait_for(b, lambda: chart_points(b, "Losses during training") > m1, 180, "the second viewer's chart to move",
                     shots)
            b.screenshot(path=str(shots / "runs-02-second-viewer.png"))

            # kill -9 the server mid-run, once a few epochs are recorded
            run_dir = runs_dir / rid
            wait_for(b, lambda: len(epochs_on_disk(run_dir)) >= 2, 180, "two epochs on disk", shots)
            proc.kill()
            proc.wait(10)
            done = max(epochs_on_disk(run_dir))
            r = subprocess.run([sys.executable, "-m", "acmr_core", "runs"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            line = next(ln for ln in r.stdout.splitlines() if ln.startswith(rid))
            assert line == f"{rid} interrupted {done}/1000 shapes", r.stdout

            # the restarted app shows what the run recorded
            proc, url, log = start_server(tmp_path, env, "server2.log")
            b.goto(f"{url}?run={rid}", wait_until="domcontentloaded")
            wait_for(b, lambda: "interrupted" in progress_text(b) and rid in progress_text(b), 180,
                     "the interrupted run in the restarted app", shots)
            wait_for(b, lambda: chart_points(b, "Validation mAP") == done + 1, 180,
                     f"the {done + 1} recorded epochs (0..{done}) in the mAP chart", shots)
            assert b.get_by_text("This run was interrupted").first.is_visible()
            assert not b.get_by_role("button", name="Stop").is_enabled()
            b.screenshot(path=str(shots / "runs-03-interrupted-after-restart.png"), full_page=True)
    finally:
        stop_process(proc, 15)
        log.close()
