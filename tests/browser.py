"""Headless Chromium for the browser tests and the app benchmark: one place for the binary and its flags.

Debian's Chromium at /usr/bin/chromium, driven by Playwright (`run-tests.sh` installs both)."""
from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import socket
import tempfile
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MISSING = f"Chromium not found at {CHROMIUM}: run `apt-get update && apt-get install -y chromium`"


@functools.cache
def shared_cache_dir() -> Path:
    """One ACMR_CACHE_DIR for the app servers of every browser test in this process, removed at exit. Its entries
    are keyed by what they hold (acmr_core/cache.py), so a dataset a test's page built once (shapes, 400 pairs:
    13.7 s inside a server that is starting up) is read back by the next test's server instead of built again."""
    folder = Path(tempfile.mkdtemp(prefix="acmr-browser-cache-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def http_status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status a GET of `url` answers with; 0 while nothing answers (a server still starting)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except Exception:  # noqa: BLE001 - not up yet, or an error status
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def chromium_context(width: int, height: int):
    """A fresh headless Chromium profile (a Playwright BrowserContext), removed afterwards."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="acmr-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                       viewport={"width": width, "height": height})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def stop_process(proc, wait: float = 15) -> None:
    """Ask a server process to end; kill it if it has not within `wait` seconds."""
    proc.terminate()
    try:
        proc.wait(wait)
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
        proc.kill()


def set_number(pg, label: str, value, tries: int = 5) -> None:
    """Type `value` into the Streamlit number input labelled `label` and press Enter, then check, after the
    rerun that causes, that the box still shows it. On a busy machine a rerun still drawing the page from an
    earlier change can replace the box with its old value; then type it again."""
    import time

    for _ in range(tries):
        box = pg.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
        time.sleep(1.5)
        if pg.get_by_label(label, exact=True).input_value() == str(value):
            return
    raise AssertionError(f"the page did not keep {label} = {value} after {tries} tries")


def progress_text(pg, timeout_ms: float = 5_000) -> str:
    """The dashboard's progress bar text (state, run id, epoch and step)."""
    return pg.locator("[data-testid='stProgress']").first.inner_text(timeout=timeout_ms)


def star(path: Path, size=64, colour=(35, 75, 205)) -> Path:
    """A five-pointed star on a light background, saved as a PNG at `path` (an image query)."""
    import math

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (245, 245, 242))
    pts = [(size / 2 + r * math.cos(math.radians(90 + 36 * k)), size / 2 - r * math.sin(math.radians(90 + 36 * k)))
           for k, r in zip(range(10), [size * 0.4, size * 0.17] * 5)]
    ImageDraw.Draw(img).polygon(pts, fill=colour)
    img.save(path)
    return path
