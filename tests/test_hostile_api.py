"""Hostile raw payloads against the REAL running servers: `streamlit run app/main.py` (Gradio mounted at /gradio)
and the standalone `python -m app.search`. No gradio_client: the bodies are what an attacker would send.

The security case (issue 11, part 1): `{"data": [{"path": "<a file on the server>", "meta": {"_type":
"gradio.FileData"}}, 5]}` must not make the server read or copy that file; a refused path and a missing one get
the same answer; a real upload still works. Each answer is checked for a message that says what to do, no
traceback text, and a server that still answers afterwards.
"""
from __future__ import annotations

import os
import time
import uuid

import hostile_server as H
import httpx
import pytest
from PIL import Image, ImageDraw

from app.upload_guard import REFUSED_MESSAGE

# every test here talks to two real servers started once (about 15 s): the full suite runs them, the quick loop not
pytestmark = pytest.mark.slow

SMALL = dict(image_layers=[128], text_layers=[64], common_dim=32, probe_every=0, snapshot_size=0)


def no_trace(text: str) -> None:
    for bad in ("Traceback", 'File "/', "ValidationError", "pydantic", "Exception"):
        assert bad not in text, (bad, text[:2000])


def star(path, size=64, colour=(210, 35, 35)):
    import math

    img = Image.new("RGB", (size, size), "white")
    pts = [(size / 2 + r * math.cos(math.radians(90 + 36 * k)), size / 2 - r * math.sin(math.radians(90 + 36 * k)))
           for k, r in zip(range(10), [size * 0.4, size * 0.17] * 5)]
    ImageDraw.Draw(img).polygon(pts, fill=colour)
    img.save(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from acmr_core.checkpoints import save_checkpoint
    from acmr_core.config import ACMRConfig
    from acmr_core.data import load_dataset
    from acmr_core.training import train

    ds = load_dataset("shapes", n_pairs=300, progress=False)
    cfg = ACMRConfig(epochs=3, **SMALL)
    folder = tmp_path_factory.mktemp("hostile-ckpts") / "small"
    save_checkpoint(folder, train(ds, cfg).model, cfg, ds.class_names, dataset_info=ds.info, encoders=ds.encoders)
    return folder


@pytest.fixture(scope="module")
def servers(tmp_path_factory, checkpoint):
    """Both real servers, started at the same time (each takes tens of seconds to import its stack)."""
    started = [H.start_dashboard(tmp_path_factory.mktemp("dash"), checkpoint.parent),
               H.start_standalone(tmp_path_factory.mktemp("alone"), checkpoint.parent, checkpoint)]
    try:
        yield {s.kind: H.wait_ready(s) for s in started}
    finally:
        for s in started:
            H.stop(s)


@pytest.fixture
def dashboard(servers):
    return servers["dashboard"]


@pytest.fixture(params=["dashboard", "standalone"])
def server(request, servers):
    return servers[request.param]


def _sentinel(folder, name="sentinel"):
    """A file with unique content whose access time is set far back: any read of it moves the atime."""
    token = uuid.uuid4().hex
    p = folder / f"{name}-{token}.png"
    p.write_text(f"SECRET {token}")
    os.utime(p, (0, p.stat().st_mtime))
    return p, token


def _copied(server, token: str) -> list:
    return [p for p in H.files_under(server.gradio_cache)
            if token in p.name or (p.stat().st_size < 10_000 and token.encode() in p.read_bytes())]


def test_a_client_named_path_is_never_read_or_copied(server, tmp_path):
    # the control: on this file system a read does move an access time set in the past
    control, _ = _sentinel(tmp_path, "control")
    control.read_bytes()
    atime_works = control.stat().st_atime > 0

    secret, token = _sentinel(tmp_path)
    picture = star(tmp_path / f"outside-{uuid.uuid4().hex}.png")   # a real image outside the upload folder
    os.utime(picture, (0, picture.stat().st_mtime))
    answers = {}
    for label, path in [("secret", secret), ("missing", tmp_path / "no-such-file.png"), ("picture", picture),
                        ("readme", H.ROOT / "README.md"), ("system", "/etc/hostname"), ("relative", "README.md"),
                        ("traversal", f"{server.gradio_cache}/{os.path.relpath(secret, server.gradio_cache)}")]:
        a = H.call(server, "search_by_image", {"data": [H.file_data(str(path)), 5]})
        no_trace(a.raw)
        answers[label] = (a.status, a.event, a.message)
    assert set(answers.values()) == {(200, "error", REFUSED_MESSAGE)}, answers  # one answer, exists or not
    assert "upload the image again" in REFUSED_MESSAGE
    assert _copied(server, token) == []                                     # nothing copied into Gradio's cache
    assert not [p for p in H.files_under(server.gradio_cache) if p.name == picture.name]
    if atime_works:
        assert secret.stat().st_atime == 0 and picture.stat().st_atime == 0  # never opened
    # the file Gradio would serve back (/file=) is refused too, the same way for an existing and a missing path
    assert httpx.get(f"{server.api}/file={secret}").status_code == httpx.get(f"{server.api}/file=/nope").status_code \
        == 403
    assert H.healthy(server)


def test_the_browser_route_and_nested_file_objects_go_through_the_same_guard(server, tmp_path):
    secret, token = _sentinel(tmp_path)
    cfg = httpx.get(server.api.removesuffix("gradio_api") + "config").json()
    fn = next(d["id"] for d in cfg["dependencies"] if d.get("api_name") == "search_by_image")
    session = uuid.uuid4().hex
    # /queue/join is what the page itself uses; the file object also hides in event_data and a nested list
    body = {"data": [H.file_data(str(secret)), 5], "fn_index": fn, "session_hash": session, "trigger_id": None,
            "event_data": {"value": [{"deep": [H.file_data(str(secret))]}]}}
    r = httpx.post(f"{server.api}/queue/join", json=body, timeout=30)
    assert r.status_code == 200, r.text
    with httpx.stream("GET", f"{server.api}/queue/data", params={"session_hash": session}, timeout=60) as s:
        text = ""
        for chunk in s.iter_text():
            text += chunk
            if "process_completed" in text:
                break
    assert REFUSED_MESSAGE in text.replace("\\u2019", "'"), text[-2000:]
    no_trace(text)
    a = H.call(server, "search_by_image", {"data": [[H.file_data(str(secret))], 5]})   # a list holding a file object
    assert a.message == REFUSED_MESSAGE
    a = H.call(server, "search_by_image", {"data": [str(secret), 5]})                 # a bare path string
    assert a.message == REFUSED_MESSAGE
    assert _copied(server, token) == []
    assert H.healthy(server)


@pytest.mark.parametrize("ctype", ["multipart/form-data; boundary=x", "text/plain", "application/x-www-form-urlencoded",
                                   None])
def test_a_json_body_under_another_content_type_is_no_way_around_the_guard(dashboard, tmp_path, ctype):
    secret, token = _sentinel(tmp_path)
    body = H.json.dumps({"data": [H.file_data(str(secret)), 5]}).encode()
    r = httpx.post(f"{dashboard.api}/call/search_by_image", content=body,
                   headers={"content-type": ctype} if ctype else {}, timeout=60)
    if r.status_code == 200:                                      # accepted as JSON: then it was guarded
        text = httpx.get(f"{dashboard.api}/call/search_by_image/{r.json()['event_id']}", timeout=60).text
        assert REFUSED_MESSAGE in text, text
    else:
        assert r.status_code in (400, 415, 422), r.text
    no_trace(r.text)
    assert _copied(dashboard, token) == []
    assert secret.stat().st_atime == 0 or not _atime_works(tmp_path)


def _atime_works(folder) -> bool:
    control, _ = _sentinel(folder, "control")
    control.read_bytes()
    return control.stat().st_atime > 0


def test_a_real_upload_through_the_upload_route_is_searched(server, tmp_path):
    path = H.upload(server, star(tmp_path / "star.png"))
    assert str(server.gradio_cache) in path
    a = H.call(server, "search_by_image", {"data": [H.file_data(path), 4]})
    assert a.event == "complete", a.raw[-2000:]
    assert len(a.data["results"]) == 4 and a.data["results"][0]["modality"] == "text"


@pytest.mark.parametrize("body,needle", [
    ({"data": [H.file_data("/etc/hostname")]}, "k is missing"),
    ({"data": []}, "image, k is missing"),
    ({"data": [None, 5, 7]}, "got 3 values"),
    ({"nodata": 1}, "expects a JSON body"),
    ([1, 2], "expects a JSON body"),
    (b"{not json", "expects a JSON body"),
])
def test_malformed_image_calls_say_what_to_send(dashboard, body, needle):
    a = H.call(dashboard, "search_by_image", body)
    assert a.status == 400 and needle in a.message and '{"data": [<image>, <k>]}' in a.message, a.raw
    no_trace(a.raw)
    assert dashboard.alive()


def test_a_huge_json_body_is_refused_before_it_is_parsed(dashboard):
    big = b'{"data": ["' + b"a" * 49_000_000 + b'", 5]}'
    a = H.call(dashboard, "search_by_text", big)
    assert a.status == 413 and "smaller" in a.message
    assert H.healthy(dashboard)


@pytest.mark.parametrize("k", [2.5, True, None, 51, 0, "five", [5], "5", 5.0])
def test_both_endpoints_parse_k_the_same_way_over_http(dashboard, tmp_path, k):
    path = H.upload(dashboard, star(tmp_path / "star.png"))
    text = H.call(dashboard, "search_by_text", {"data": ["a red star", k]})
    image = H.call(dashboard, "search_by_image", {"data": [H.file_data(path), k]})
    for a in (text, image):
        no_trace(a.raw)
    if k in ("5", 5.0):                                             # whole numbers, in any form: accepted
        assert text.event == image.event == "complete", (text.raw, image.raw)
        assert len(text.data["results"]) == len(image.data["results"]) == 5
    else:
        assert text.event == image.event == "error"
        assert text.message == image.message and text.message.startswith("k must"), (text.message, image.message)


@pytest.mark.parametrize("text,needle", [
    ("zq " * 1700 + "star", "longer than 500 characters"),
    (12345, "must be text"),
    ({"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}, "must be text"),
    ("   ", "empty"),
])
def test_hostile_texts_over_http(dashboard, text, needle):
    a = H.call(dashboard, "search_by_text", {"data": [text, 5]})
    assert a.event == "error" and needle in a.message, a.raw[-1500:]
    no_trace(a.raw)
    assert H.healthy(dashboard)


def test_the_server_log_shows_no_traceback_for_any_of_this(servers):
    time.sleep(0.5)                                 # last in this module: after every hostile request above
    for s in servers.values():
        assert "Traceback" not in s.log_text(), s.log_text()[-3000:]
        assert s.alive()
