"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run app/main.py`.

Starts the app on a free loopback port (the same command a user runs), trains a small `shapes` run from the
page, and checks what a person would see: the loss chart grows, validation mAP rises, the maps show both
colourings and switch, hovering an image point shows its picture, the Search tab shows the mounted Gradio
app; before that, the Search tab answers with a checkpoint saved before the app started. Screenshots go to
$ACMR_SHOTS (default: the test's tmp folder) for a human to look at.

    .venv/bin/python -m pytest tests/test_dashboard_browser.py -m browser -s
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from browser import (
    MISSING,
    chromium_context,
    free_port,
    have_chromium,
    http_status,
    progress_text,
    set_number,
    shared_cache_dir,
    star,
    stop_process,
)

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not have_chromium(), reason=MISSING),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app as a user starts it, with one checkpoint saved beforehand (the CLI's kind, named `cli-model`),
    which its Search tab loads at start-up."""
    from acmr_core.checkpoints import save_checkpoint
    from acmr_core.config import ACMRConfig
    from acmr_core.data import load_dataset
    from acmr_core.training import train

    tmp = tmp_path_factory.mktemp("app")
    ds = load_dataset("shapes", n_pairs=600, progress=False)
    cfg = ACMRConfig(epochs=6, image_layers=[256], text_layers=[128], common_dim=64, probe_every=0, snapshot_size=0)
    save_checkpoint(tmp / "checkpoints" / "cli-model", train(ds, cfg).model, cfg, ds.class_names, dataset_info=ds.info,
                    encoders=ds.encoders)
    port = free_port()
    env = dict(os.environ, ACMR_PREFETCH="0", ACMR_CACHE_DIR=str(shared_cache_dir()),
               ACMR_CHECKPOINTS_DIR=str(tmp / "checkpoints"), ACMR_RUNS_DIR=str(tmp / "runs"),
               ACMR_DEFER_STARTUP_S="600")   # start-up work on the first page or /gradio request only
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while http_status(f"http://127.0.0.1:{port}/healthz") != 200:
        if proc.poll() is not None or time.monotonic() - t0 > 90:
            proc.kill()
            pytest.fail(f"the app did not start: {(tmp / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    startup_s = time.monotonic() - t0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
        health_at_start = json.loads(r.read())
    yield {"url": f"http://127.0.0.1:{port}/", "port": port, "tmp": tmp, "startup_s": startup_s,
           "health_at_start": health_at_start}
    stop_process(proc, 15)
    log.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    d = Path(os.environ.get("ACMR_SHOTS") or tmp_path_factory.mktemp("shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def page(server):
    pytest.importorskip("playwright.sync_api")
    with chromium_context(1500, 1700) as ctx:
        pg = ctx.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(server["url"], wait_until="domcontentloaded")
        pg.get_by_role("button", name="Start").wait_for()
        yield pg


# --- helpers: read what the charts show from the Plotly graphs in the page -------------------------------

def charts(pg) -> list[dict]:
    return pg.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
        title: (gd.layout && gd.layout.title && (gd.layout.title.text || gd.layout.title)) || '',
        traces: (gd._fullData || []).map(t => ({name: t.name || '', n: (t.x || []).length,
                                                y: Array.from(t.y || []).slice(-200)})) }))""")


def chart(pg, title_part: str) -> dict | None:
    return next((c for c in charts(pg) if title_part in str(c["title"])), None)


def wait_for(pg, pred, timeout: float, what: str):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            v = pred()
            if v:
                return v
        except Exception:  # noqa: BLE001 - the page is re-rendering
            pass
        time.sleep(0.5)
    shot = Path(os.environ.get("ACMR_SHOTS") or tempfile.gettempdir()) / "failed.png"
    try:
        pg.screenshot(path=str(shot), full_page=True)
    except Exception:  # noqa: BLE001
        pass
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (screenshot: {shot})")


def segmented(pg, option: str):
    """One option of a segmented control (st.segmented_control)."""
    return pg.locator("[data-testid='stButtonGroup']").get_by_text(option, exact=True).first


def select(pg, label: str, option: str) -> None:
    pg.get_by_role("combobox", name=label, exact=True).click()
    pg.get_by_role("option", name=option).first.click()


def test_app_serves_health_and_search_on_one_port(server):
    # the dashboard answers before the search app is built (Gradio: 8.5 s here, built once the first page is
    # drawn or /gradio is asked for), so the first page is not held back by it
    assert server["health_at_start"]["status"] == "ok" and server["health_at_start"]["search"] == "loading"
    assert http_status(server["url"] + "_stcore/health") == 200
    assert http_status(server["url"] + "acmr/plotly.min.js") == 200     # plotly.js for the live charts, from the package
    with urllib.request.urlopen(server["url"] + "gradio/", timeout=120) as r:    # waits for the build
        assert r.status == 200                  # the Gradio search app, mounted in the same process
    with urllib.request.urlopen(server["url"] + "healthz") as r:
        assert json.loads(r.read())["search"] == "ready"


def test_search_inside_the_dashboard_tab_finds_the_saved_checkpoint(server, tmp_path):
    """Before anything is trained here: the Search tab (the mounted Gradio app) loaded the newest checkpoint at
    start-up, answers a sentence and an uploaded image."""
    pytest.importorskip("playwright.sync_api")
    with chromium_context(1300, 1100) as ctx:
        page = ctx.new_page()
        page.goto(server["url"])
        page.get_by_role("tab", name="Search").click(timeout=60_000)
        frame = page.frame_locator("iframe[src*='gradio']")
        frame.get_by_text("cli-model").first.wait_for(timeout=60_000)    # the newest checkpoint was loaded
        # ... and the dashboard's line above the search app names it too (it said "no model yet" while it loaded)
        page.get_by_text("Searching with:").filter(has_text="cli-model").first.wait_for(timeout=30_000)
        frame.locator("#acmr-text-query textarea").fill("a red heart on a black background")
        frame.locator("#acmr-text-search").click()
        frame.locator("#acmr-result-gallery img").first.wait_for(timeout=60_000)
        assert "predicts class" in frame.locator("#acmr-summary").inner_text()
        frame.get_by_role("tab", name="Upload").click()
        frame.locator("#acmr-image-query input[type=file]").set_input_files(str(star(tmp_path / "q.png")))
        frame.locator("#acmr-result-list .acmr-hit").first.wait_for(timeout=60_000)
        assert frame.locator("#acmr-result-list .acmr-hit").count() == 8
        page.wait_for_timeout(1000)
        page.screenshot(path=str(Path(os.environ.get("ACMR_SHOTS") or tempfile.gettempdir()) / "acmr_search_in_dashboard.png"),
                        full_page=True)


EPOCHS = 20


def test_train_watch_maps_and_search_in_chromium(page, server, shots):
    pg = page
    pg.screenshot(path=str(shots / "01-start.png"))
    # a small shapes run: fewer pairs than the demo default, same code path; enough epochs (the trainer is fast:
    # 6 epochs of 400 pairs end in about 4 s) that the page is seen while training still runs
    pg.get_by_text("Shapes options").click()
    set_number(pg, "Pairs", 400)
    pg.get_by_text("Optimisation").first.click()
    set_number(pg, "Epochs", EPOCHS)
    pg.get_by_role("button", name="Start").click()

    # the loss chart grows while training runs
    def loss_points():
        c = chart(pg, "Losses during training")
        return c and max(t["n"] for t in c["traces"])
    n1 = wait_for(pg, lambda: (loss_points() or 0) > 0 and loss_points(), 240, "the first loss points")
    # on a loaded machine (CI runs other tests beside this one) the page may first draw after this short run has
    # ended; then there is nothing left to grow. test_runs_browser checks the growth on a 1000-epoch run, always.
    if "finished" not in progress_text(pg, 60_000):
        n2 = wait_for(pg, lambda: (loss_points() or 0) > n1 and loss_points(), 120, "the loss chart to grow")
        assert n2 > n1
    pg.screenshot(path=str(shots / "02-training.png"))

    # ... and validation mAP rises by the end
    wait_for(pg, lambda: "finished" in progress_text(pg, 60_000), 300, "training to finish")
    # the page re-renders once more after the last epoch: wait until the chart shows every epoch
    def final_avg():
        m = chart(pg, "Validation mAP")
        avg = m and next((t["y"] for t in m["traces"] if t["name"] == "average"), None)
        return avg if avg and len(avg) == EPOCHS + 1 else None
    avg = wait_for(pg, final_avg, 60, "the validation chart with every epoch")
    assert len(avg) == EPOCHS + 1 and max(avg[1:]) > avg[0] + 0.01, avg
    pg.screenshot(path=str(shots / "03-finished.png"), full_page=True)

    # the maps: both colourings side by side
    pg.get_by_role("tab", name="Maps").click()
    wait_for(pg, lambda: chart(pg, "by modality") and chart(pg, "by class"), 120, "the two maps")
    wait_for(pg, lambda: "computing" not in pg.get_by_text("UMAP frames").first.inner_text(), 120,
             "the UMAP frames")
    time.sleep(1)
    pg.screenshot(path=str(shots / "04-maps-umap.png"))

    # hover an image point: its picture appears beside the hover label. The point is the image farthest from
    # every other point (Plotly's hover takes the closest point of any trace: a text point drawn on top of the
    # chosen image once took the hover in CI)
    pt = pg.evaluate("""() => {
        const gd = Array.from(document.querySelectorAll('.js-plotly-plot'))
            .find(g => String(g.layout.title.text || '').includes('by modality'));
        const fl = gd._fullLayout, r = gd.getBoundingClientRect();
        const px = (t, k) => [r.left + fl._size.l + fl.xaxis.d2p(t.x[k]), r.top + fl._size.t + fl.yaxis.d2p(t.y[k])];
        const img = gd._fullData.find(t => t.meta && t.meta.thumb);
        const all = gd._fullData.flatMap(t => Array.from(t.x, (_, k) => ({t, k, p: px(t, k)})));
        let best = null, bestD = -1;
        for (let k = 0; k < img.x.length; k++) {
            const p = px(img, k);
            const d = Math.min(...all.filter(o => !(o.t === img && o.k === k))
                                      .map(o => Math.hypot(o.p[0] - p[0], o.p[1] - p[1])));
            if (d > bestD) { bestD = d; best = p; }
        }
        return {x: best[0], y: best[1]};
    }""")
    pg.mouse.move(pt["x"] - 30, pt["y"] - 30)
    pg.mouse.move(pt["x"], pt["y"], steps=5)
    wait_for(pg, lambda: pg.evaluate("""() => { const t = document.getElementById('acmr-thumb-tip');
        const i = t && t.querySelector('img'); return t && t.style.display === 'block' && i.complete &&
        i.naturalWidth > 0; }"""), 20, "the hover thumbnail")
    # the picture sits beside the hover label, not over its text (the label wraps a long caption into lines)
    overlap = wait_for(pg, lambda: pg.evaluate("""() => {
        const a = document.getElementById('acmr-thumb-tip').getBoundingClientRect();
        const l = document.querySelector('.hoverlayer .hovertext');
        if (!l) return null;
        const b = l.getBoundingClientRect();
        return {w: Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)),
                h: Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top)),
                lines: l.querySelectorAll('tspan.line').length};
    }"""), 10, "the hover label")
    assert overlap["w"] * overlap["h"] == 0 and overlap["lines"] >= 2, overlap
    pg.screenshot(path=str(shots / "05-map-hover-thumbnail.png"))
    # click it: the pair is listed below the maps (the chart sends its selection back to the server)
    pg.mouse.click(pt["x"], pt["y"])
    pg.get_by_text("Selected: 1 pair(s)").first.wait_for(timeout=30_000)

    # scrub: stop following the newest epoch, go back to the untrained model (epoch 0)
    pg.get_by_text("Follow live", exact=True).click()
    slider = pg.get_by_role("slider").first
    wait_for(pg, lambda: slider.is_enabled(), 20, "the slider to unlock")
    slider.focus()
    slider.press("Home")
    wait_for(pg, lambda: chart(pg, "epoch 0: by modality") and chart(pg, "epoch 0: by class"), 30, "epoch 0's maps")
    time.sleep(1)
    pg.screenshot(path=str(shots / "05b-map-epoch-0.png"))
    pg.get_by_text("Follow live", exact=True).click()          # back to the newest epoch
    wait_for(pg, lambda: chart(pg, f"epoch {EPOCHS}: by modality"), 30, "the newest epoch again")

    # switch the colouring: before/after, coloured by modality, then by class
    segmented(pg, "Before / after").click()
    wait_for(pg, lambda: chart(pg, "before: epoch 0") and chart(pg, f"after: epoch {EPOCHS}"), 30, "the before/after view")
    segmented(pg, "modality").click()
    wait_for(pg, lambda: chart(pg, "(by modality)"), 30, "colour by modality")
    time.sleep(1)
    pg.screenshot(path=str(shots / "06-before-after-modality.png"))
    segmented(pg, "class").click()
    wait_for(pg, lambda: chart(pg, "(by class)"), 30, "colour by class")
    time.sleep(1)
    pg.screenshot(path=str(shots / "07-before-after-class.png"))

    # PCA, live per epoch
    segmented(pg, "PCA").click()
    wait_for(pg, lambda: chart(pg, "PCA · before"), 30, "the PCA map")

    # Search: the mounted Gradio app, inside the dashboard
    pg.get_by_role("tab", name="Search").click()
    frame = pg.frame_locator("iframe").first
    frame.get_by_text("Search the common space").first.wait_for(timeout=60_000)
    time.sleep(2)
    pg.screenshot(path=str(shots / "08-search.png"))
    print(f"\nscreenshots in {shots}; app start-up {server['startup_s']:.1f} s")
