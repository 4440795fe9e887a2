"""Hostile images, texts and k values through the Search app's handlers and API functions (called directly, one
small model for the module). Each case: a message that names the problem and says what to do, no traceback text in
what the page shows, no stale results, and the model still answers a good query afterwards."""
from __future__ import annotations

import base64
import io
import math
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from conftest import lazy_import  # noqa: E402

from acmr_core.retrieval import K_MAX, MAX_TEXT_CHARS, QueryError, check_k  # noqa: E402
from app.model_store import ModelStore  # noqa: E402
from app.upload_guard import REFUSED_MESSAGE, placeholder_file  # noqa: E402

gr = lazy_import("gradio")        # imported on first use: see conftest.lazy_import
S = lazy_import("app.search")

SMALL = dict(image_layers=[128], text_layers=[64], common_dim=32, probe_every=0, snapshot_size=0)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from acmr_core.config import ACMRConfig
    from acmr_core.data import load_dataset
    from acmr_core.training import train

    ds = load_dataset("shapes", n_pairs=300, progress=False)
    s = ModelStore(tmp_path_factory.mktemp("no-ckpts"))
    s.set_from_training(train(ds, ACMRConfig(epochs=3, **SMALL)).model, ds)
    yield s
    S.REAPER.run_due(now=float("inf"))


def star(size=64) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    pts = [(size / 2 + r * math.cos(math.radians(90 + 36 * k)), size / 2 - r * math.sin(math.radians(90 + 36 * k)))
           for k, r in zip(range(10), [size * 0.4, size * 0.17] * 5)]
    ImageDraw.Draw(img).polygon(pts, fill=(210, 35, 35))
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def upload_file(name: str, data: bytes):
    from gradio.utils import get_upload_folder

    d = __import__("pathlib").Path(get_upload_folder()) / f"hostile-{os.urandom(6).hex()}"
    d.mkdir(parents=True)
    p = d / name
    p.write_bytes(data)
    return p


def assert_page_message(out, *needles):
    html = out[0]
    assert "acmr-message" in html, html
    for bad in ("Traceback", "Error:", 'File "'):
        assert bad not in html, html
    for n in needles:
        assert n.lower() in html.lower(), (n, html)
    assert out[1]["visible"] is False and out[2]["visible"] is False      # no stale results
    assert any(w in html.lower() for w in ("upload", "use ", "type", "draw", "give", "send", "put", "shorten",
                                           "choose", "try", "whole number", "between 1 and")), html  # says what to do


def still_answers(store):
    assert len(store.index().search_by_text("a red star", 3).hits) == 3


def bomb_png(w=100_000, h=100_000) -> bytes:
    """A tiny PNG whose header claims w x h pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))


# --- images ----------------------------------------------------------------------------------------------

IMAGES = {
    "text renamed .png": (lambda: str(upload_file("x.png", b"hello, not a picture")), "not an image"),
    "truncated png": (lambda: str(upload_file("cut.png", png(star())[:200])), "corrupt"),
    "empty file": (lambda: str(upload_file("e.png", b"")), "empty"),
    "decompression bomb": (lambda: str(upload_file("bomb.png", bomb_png())), "megapixels"),
    "svg": (lambda: str(upload_file("s.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>")),
            "not an image"),
    "html": (lambda: str(upload_file("p.png", b"<html><script>alert(1)</script></html>")), "not an image"),
    "gif header only": (lambda: str(upload_file("g.gif", b"GIF89a")), "could not be read"),
    "over 25 MB": (lambda: str(_sparse(upload_file("big.png", b""), 26_000_000)), "over the limit"),
    "invalid base64 data URL": (lambda: {"url": "data:image/png;base64,@@@not*base64@@@", "path": None},
                                "not valid base64"),
    "data URL not base64": (lambda: {"url": "data:image/png,rawbytes", "path": None}, "not base64-encoded"),
    "data URL too large": (lambda: {"url": "data:image/png;base64," + "A" * 40_000_000, "path": None},
                           "over the limit"),
    "a path outside the uploads": (lambda: {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}},
                                   "only uploaded files"),
    "the guard's placeholder": (lambda: placeholder_file(), "only uploaded files"),
    "a dict without a path": (lambda: {"meta": {"_type": "gradio.FileData"}}, "no image"),
    "a number": (lambda: 12345, "not an image"),
    "a list": (lambda: [[1, 2], [3]], "could not be read"),
    "nothing": (lambda: None, "no image"),
}


def _sparse(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)
    return path


@pytest.mark.parametrize("name", list(IMAGES))
def test_hostile_images(store, name):
    make, needle = IMAGES[name]
    out = S.search_image(make(), 5, store=store)
    assert_page_message(out, needle)
    with pytest.raises(gr.Error) as e:
        S.api_search_by_image(make(), 5, store=store)
    assert needle.lower() in str(e.value).lower() and "Traceback" not in str(e.value)
    still_answers(store)


def test_refused_and_missing_paths_get_the_same_answer(store, tmp_path):
    real = tmp_path / "real.png"
    star().save(real)
    answers = {S.search_image({"path": p}, 5, store=store)[0]
               for p in (str(real), str(tmp_path / "missing.png"), "/etc/hostname", "../../etc/passwd")}
    assert len(answers) == 1 and REFUSED_MESSAGE.split(";")[0] in answers.pop().replace("&#x27;", "'")


def test_a_one_pixel_image_is_searched(store):
    out = S.search_image(png(Image.new("RGB", (1, 1), "red")), 3, store=store)
    assert "acmr-summary" in out[0] and len(out[5]["results"]) == 3


# --- texts -----------------------------------------------------------------------------------------------

TEXTS = {
    "cut before its only known word": ("zq " * 2500 + "star", ["longer than 500 characters", "put the words"]),
    "10 MB of one word": ("x" * 10_000_000, ["longer than 500 characters"]),
    "NUL bytes": ("\x00\x00\x00", ["none of the words"]),
    "emoji only": ("🌟🌟🌟", ["none of the words"]),
    "a number": (5, ["must be text"]),
    "a dict": ({"path": "/etc/passwd"}, ["must be text"]),
    "a list": (["a", "star"], ["must be text"]),
    "empty": ("", ["empty"]),
    "only whitespace": (" \t\n\u3000 ", ["empty"]),
}


@pytest.mark.parametrize("name", list(TEXTS))
def test_hostile_texts(store, name):
    text, needles = TEXTS[name]
    assert_page_message(S.search_text(text, 5, store=store), *needles)
    with pytest.raises(gr.Error) as e:
        S.api_search_by_text(text, 5, store=store)
    for n in needles:
        assert n.lower() in str(e.value).lower()
    still_answers(store)


def test_markup_in_a_query_is_searched_and_shown_escaped(store):
    out = S.search_text("<script>alert(1)</script> a red star <img src=x onerror=alert(2)>", 5, store=store)
    assert "acmr-summary" in out[0] and "<script>" not in out[0] and "<img src=x" not in out[0]


def test_a_long_query_with_known_words_up_front_is_searched_and_says_it_was_cut(store):
    out = S.search_text("a red star " + "zq " * 2000, 5, store=store)
    assert "acmr-summary" in out[0] and f"longer than {MAX_TEXT_CHARS} characters" in out[0]


# --- k: one parser, the same answer from the UI and both endpoints --------------------------------------

BAD_K = [0, -1, K_MAX + 1, 10**9, 2.5, True, False, "five", "", None, [5], {"k": 5}, float("nan"), float("inf"),
         "5.5", "٥", " -3 "]


@pytest.mark.parametrize("k", BAD_K, ids=[repr(k)[:12] for k in BAD_K])
def test_bad_k_gets_one_answer_everywhere(store, k):
    with pytest.raises(QueryError) as core:
        check_k(k, 10_000)
    msg = str(core.value)
    assert msg.startswith("k must") and "whole number" in msg or "between 1 and" in msg
    answers = set()
    for fn, q in ((S.api_search_by_text, "a star"), (S.api_search_by_image, png(star()))):
        with pytest.raises(gr.Error) as e:
            fn(q, k, store=store)
        answers.add(str(e.value))
    assert len(answers) == 1, answers                                      # both endpoints agree
    assert_page_message(S.search_text("a star", k, store=store), "k must")
    assert_page_message(S.search_image(star(), k, store=store), "k must")


@pytest.mark.parametrize("k,want", [(5, 5), ("5", 5), (" 7 ", 7), (5.0, 5), (np.int64(3), 3), (K_MAX, K_MAX)])
def test_whole_numbers_in_any_form_are_accepted_by_both_endpoints(store, k, want):
    assert len(S.api_search_by_text("a star", k, store=store)["results"]) == want
    assert len(S.api_search_by_image(png(star()), k, store=store)["results"]) == want


def test_the_slider_and_the_api_share_the_bound():
    assert S.K_SLIDER_MAX == K_MAX == 50
    assert "missing" in str(pytest.raises(QueryError, check_k, None, 100).value)


def test_base64_data_urls_that_are_valid_still_work(store):
    url = "data:image/png;base64," + base64.b64encode(png(star())).decode()
    out = S.search_image({"url": url, "path": None}, 4, store=store)
    assert "acmr-summary" in out[0] and len(out[5]["results"]) == 4
