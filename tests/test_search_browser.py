"""The Search app in real Chromium (Playwright): type a query, upload an image, draw, and bad uploads.

Launches the standalone Gradio app (app/search.py) on a free loopback port with a small shapes model.
Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`); skipped without it.
Screenshots go to /tmp/acmr_search_*.png.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import pytest
from browser import MISSING, chromium_context, free_port, have_chromium, star

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHOTS = Path(tempfile.gettempdir())

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not have_chromium(), reason=MISSING),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    pytest.importorskip("playwright.sync_api")
    from acmr_core.config import ACMRConfig
    from acmr_core.data import load_dataset
    from acmr_core.training import train
    from app import search as S
    from app.model_store import ModelStore

    ds = load_dataset("shapes", n_pairs=600, progress=False)
    model = train(ds, ACMRConfig(epochs=8, image_layers=[256], text_layers=[128], common_dim=64, probe_every=0,
                                 snapshot_size=0)).model
    store = ModelStore(tmp_path_factory.mktemp("no-ckpts"))
    store.set_from_training(model, ds, source="a test model")
    examples = tmp_path_factory.mktemp("examples")
    star(examples / "blue_star.png")
    demo = S.build_search_app(store, examples_dir=examples)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False,
                **S.launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture
def page():
    with chromium_context(1300, 1100) as ctx:
        yield ctx.new_page()


def test_type_a_query_and_upload_an_image(app_url, page, tmp_path):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app_url)
    page.get_by_text("Model:").first.wait_for(timeout=30_000)           # the model status has loaded
    page.locator("#acmr-text-query textarea").fill("a small blue triangle in the corner")
    page.locator("#acmr-text-search").click()
    gallery = page.locator("#acmr-result-gallery")
    gallery.locator("img").first.wait_for(timeout=30_000)
    assert gallery.locator("img").count() >= 8
    assert "predicts class" in page.locator("#acmr-summary").inner_text()
    caption = gallery.inner_text()
    assert " · " in caption and ("✓" in caption or "✗" in caption)
    page.screenshot(path=str(SHOTS / "acmr_search_text.png"), full_page=True)

    page.get_by_role("tab", name="Upload").click()
    page.locator("#acmr-image-query input[type=file]").set_input_files(str(star(tmp_path / "query.png")))
    hits = page.locator("#acmr-result-list .acmr-hit")
    hits.first.wait_for(timeout=30_000)
    assert hits.count() == 8
    assert "an image" in page.locator("#acmr-summary").inner_text()
    assert page.locator("#acmr-result-list .acmr-score").first.inner_text().replace(".", "").replace("-", "").isdigit()
    page.screenshot(path=str(SHOTS / "acmr_search_image.png"), full_page=True)
    assert not errors, errors


def test_a_file_that_is_not_an_image_gets_a_clear_message(app_url, page, tmp_path):
    fake = tmp_path / "holiday.png"
    fake.write_text("this is a text file wearing a .png name")
    page.goto(app_url)
    page.get_by_text("Model:").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Upload").click()
    page.locator("#acmr-image-query input[type=file]").set_input_files(str(fake))
    msg = page.locator("#acmr-summary .acmr-warning")
    msg.wait_for(timeout=30_000)
    text = msg.inner_text()
    assert "not an image" in text and "Traceback" not in page.content()
    page.screenshot(path=str(SHOTS / "acmr_search_bad_upload.png"), full_page=True)


def test_draw_a_star(app_url, page):
    page.goto(app_url)
    page.get_by_text("Model:").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("#acmr-sketch canvas").first
    canvas.wait_for(timeout=10_000)
    page.locator('#acmr-sketch button[aria-label="Brush"]').first.wait_for(timeout=30_000)
    page.wait_for_timeout(800)  # the tab's js clicks the brush once its button is there (it polls every 100 ms)
    box = canvas.bounding_box()
    cx, cy, r = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, min(box["width"], box["height"]) * 0.3
    pts = [(cx + r * math.cos(math.radians(90 + 144 * i)), cy - r * math.sin(math.radians(90 + 144 * i)))
           for i in range(6)]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for x, y in pts[1:]:     # the brush joins the points it gets with straight lines: 3 moves per edge draw the
        page.mouse.move(x, y, steps=3)      # same star; headless Chromium took ~350 ms per move, 21 s with 12
    page.mouse.up()
    page.get_by_role("button", name="Search with my drawing").click()
    # about a second on an idle machine; headless Chromium draws and exports the canvas in software, which
    # took over 30 s while the other test worker kept both cores busy
    page.locator("#acmr-result-list .acmr-hit, #acmr-summary:has-text('empty')").first.wait_for(timeout=120_000)
    assert "empty" not in page.locator("#acmr-summary").inner_text(), "the strokes drew nothing: no brush selected?"
    page.locator("#acmr-result-list .acmr-hit").first.wait_for(timeout=10_000)
    page.screenshot(path=str(SHOTS / "acmr_search_drawing.png"), full_page=True)



def test_pick_an_example_and_compare_with_same_modality(app_url, page):
    page.goto(app_url)
    page.get_by_text("Model:").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Examples").click()
    page.locator("#acmr-examples img").first.click()
    page.locator("#acmr-result-list .acmr-hit").first.wait_for(timeout=30_000)
    assert "an image" in page.locator("#acmr-summary").inner_text()
    page.get_by_text("Also show same-modality neighbours").click()
    page.locator("#acmr-same-gallery img").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)  # let the thumbnails load before the screenshot
    page.screenshot(path=str(SHOTS / "acmr_search_example.png"), full_page=True)

