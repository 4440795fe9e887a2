"""The Search tab: query the trained common space with a text, an uploaded image, a drawing or an example.

A Gradio Blocks app. The dashboard mounts it at /gradio/ and shows it in its Search tab:

    from app.search import mount_search
    mount_search(fastapi_app, path="/gradio")           # theme and CSS included

It also runs on its own (http://127.0.0.1:7861):

    .venv/bin/python -m app.search [--port 7861] [--checkpoint checkpoints/NAME]

It always searches with the current model of `app.model_store.STORE` (what the dashboard trained or
loaded, the checkpoint the user picks here, or at start the newest checkpoint under checkpoints/).

Named API endpoints, for scripts (`gradio_client`):

    client.predict("a small blue triangle", 5, api_name="/search_by_text")
    client.predict(handle_file("star.png"), 5, api_name="/search_by_image")

Both return {"results": [{"rank", "id", "score", "class", "caption", ...}], "predicted_class", ...}; a bad
query raises an error whose message says what was wrong. With raw HTTP, upload the image first
(POST .../gradio_api/upload) and pass the path it returns as {"path": ..., "meta": {"_type": "gradio.FileData"}}:
the server opens only files it received that way (app/upload_guard.py), never a path a client names. k is
parsed by one rule for both endpoints and the UI (acmr_core.retrieval.check_k). The UI handlers below are plain functions that
never raise: bad input is reported in the page. Retrieval itself (encode, project, rank, query checks)
lives in acmr_core.retrieval.
"""
from __future__ import annotations

import atexit
import base64
import html
import io
import os
import threading
import time
from functools import partial
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from acmr_core.checkpoints import CheckpointError  # noqa: E402
from acmr_core.config import ACMRConfig  # noqa: E402
from acmr_core.retrieval import K_MAX, MAX_FILE_BYTES, QueryError, SearchResult  # noqa: E402

from .model_store import DEFAULT_MODEL_DIR, ROOT, STORE, ModelStore, NoModelError  # noqa: E402
from .upload_guard import REFUSED_MESSAGE, guard_app_kwargs, is_refused  # noqa: E402

EXAMPLES_DIR = ROOT / "assets" / "examples"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}
TEXT_EXAMPLES = [
    "a star",
    "a small blue triangle in the corner",
    "a red heart on a black background",
    "a crescent moon",
    "a shape with six corners",
    "a large green arrow pointing left",
]
GALLERY_CHOICES = {"test split": ("test",), "test + train": ("test", "train")}
DEFAULT_K = 8
K_SLIDER_MAX = K_MAX  # the UI slider and the API accept the same k (acmr_core.retrieval.check_k)
API_ENDPOINTS = {"search_by_text": ("text", "k"), "search_by_image": ("image", "k")}  # checked by the UploadGuard
THUMB = 128           # result images are shown at this size (pixelated upscaling keeps small shapes crisp)

SCORE_NOTE = """
**How to read the results.** The *score* is the **cosine similarity** between the query and the item in the
common space the model learnt (1 = pointing the same way, 0 = unrelated, −1 = opposite). Scores rank the items
for *this* query; they are not probabilities and are not comparable between models.
The model's label classifier also predicts a class for the query:
**✓** = the item belongs to that predicted class, **✗** = it belongs to another class.
A text query retrieves **images**; an image query retrieves **captions** (cross-modal). Tick *same-modality
neighbours* to compare with what the query's own modality would return.
"""

# select the Sketchpad's brush when the Draw tab opens (Gradio's Sketchpad starts with no tool selected); its
# toolbar can take a while to appear on a busy machine, so look for it every 100 ms for up to 10 s
PICK_BRUSH_JS = """() => { let tries = 0; const pick = () => {
  const b = document.querySelector('#acmr-sketch button[aria-label="Brush"]');
  if (b) { b.click(); } else if (++tries < 100) { setTimeout(pick, 100); } };
  setTimeout(pick, 150); }"""

CSS = """
#acmr-search .acmr-results img { image-rendering: pixelated; }
#acmr-search .acmr-status { font-size: 0.95em; }
#acmr-search footer { display: none !important; }
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="teal", neutral_hue="slate")


# --- uploads: read, then forget -------------------------------------------------------------------


def _upload_dirs() -> list[Path]:
    from gradio.utils import get_upload_folder

    return [Path(get_upload_folder()).resolve()]


UPLOAD_GRACE_SECONDS = 30.0


class UploadReaper:
    """Deletes uploaded files shortly after the last request that read them.

    Gradio stores an upload under a folder named by the hash of its content, so the same file uploaded by
    several clients at once is ONE path: deleting it the moment the first request has read it would fail
    the others. Each read therefore (re)schedules the deletion `UPLOAD_GRACE_SECONDS` later; a daemon
    thread deletes what is due. Nothing uploaded outlives its last use by more than that grace."""

    def __init__(self):
        self._due: dict[Path, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def schedule(self, path: Path, grace: float | None = None) -> None:
        with self._lock:
            self._due[path] = time.monotonic() + (UPLOAD_GRACE_SECONDS if grace is None else grace)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="acmr-upload-reaper")
                self._thread.start()

    def pending(self) -> list[Path]:
        with self._lock:
            return list(self._due)

    def run_due(self, now: float | None = None) -> int:
        """Delete every file whose time has come; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = [p for p, t in self._due.items() if t <= now]
            for p in due:
                del self._due[p]
        for p in due:
            discard_upload(p)
        return len(due)

    def _loop(self) -> None:
        while True:
            time.sleep(1.0)
            self.run_due()
            with self._lock:
                if not self._due:
                    self._thread = None
                    return


REAPER = UploadReaper()
atexit.register(lambda: REAPER.run_due(now=float("inf")))  # nothing uploaded outlives the process either


def from_payload(payload):
    """The image an event delivers unprocessed (events with preprocess=False): Gradio's FileData dict of an
    upload, or a data: URL.

    Over HTTP, `app.upload_guard.UploadGuard` has already replaced every file object whose path this process's
    upload route did not produce (such a path is never opened); that placeholder, and any path outside
    Gradio's upload folder, get the same answer, REFUSED_MESSAGE."""
    if not isinstance(payload, dict):
        return payload
    if is_refused(payload):
        raise QueryError(REFUSED_MESSAGE)
    url = str(payload.get("url") or "")
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        if len(data) * 3 // 4 > MAX_FILE_BYTES:
            raise QueryError(f"The image data is over the limit of {MAX_FILE_BYTES // 1_000_000} MB. Use a smaller "
                             "image.")
        if ";base64" not in head:
            raise QueryError("The image data (a data: URL) is not base64-encoded; upload the image file instead.")
        try:
            return base64.b64decode("".join(data.split()), validate=True)
        except ValueError:
            raise QueryError("The image data (a data: URL) is not valid base64; upload the image file "
                             "instead.") from None
    path = payload.get("path")
    if not path:
        raise QueryError("No image was given. Upload an image, draw one, or pick an example.")
    try:
        inside = any(Path(path).resolve().is_relative_to(d) for d in _upload_dirs())
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise QueryError(REFUSED_MESSAGE)
    return str(path)


def read_upload(source):
    """Bytes of an uploaded file, which is then deleted (uploads are not kept beyond the request; see
    UploadReaper for the few seconds of grace).

    Only files inside Gradio's upload folder are deleted; anything else (e.g. our own example files) is
    only read. Non-path sources (PIL images, arrays, bytes) pass through unchanged."""
    if not isinstance(source, (str, Path)):
        return source
    p = Path(source)
    try:
        rp = p.resolve()
    except OSError:
        return source
    if not any(rp.is_relative_to(d) for d in _upload_dirs()):
        return source
    if not rp.is_file():
        raise QueryError("The uploaded file is no longer available; upload it again.")
    try:
        if rp.stat().st_size > MAX_FILE_BYTES:
            raise QueryError(f"The file is {rp.stat().st_size / 1e6:.0f} MB, over the limit of "
                             f"{MAX_FILE_BYTES // 1_000_000} MB. Use a smaller image.")
        return rp.read_bytes()
    finally:
        REAPER.schedule(rp)


def discard_upload(path: Path) -> None:
    """Delete an uploaded file and its (then empty) per-upload folder."""
    try:
        path.unlink(missing_ok=True)
        parent = path.parent
        if parent not in _upload_dirs() and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    except OSError:
        pass


# --- rendering ------------------------------------------------------------------------------------


def _thumb(img: Image.Image | None, size: int = THUMB) -> Image.Image | None:
    if img is None:
        return None
    img = img.convert("RGB")
    if max(img.size) < size:
        f = max(1, size // max(img.size))
        img = img.resize((img.width * f, img.height * f), Image.NEAREST)
    return img


def _data_uri(img: Image.Image | None, size: int = 72) -> str:
    if img is None:
        return ""
    img = img.convert("RGB")
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def gallery_items(result_hits, index) -> list[tuple[Image.Image, str]]:
    """(image, caption) pairs for gr.Gallery: '0.83 · star ✓ — <the image's caption>'."""
    items = []
    for h in result_hits:
        cap = f"{h.score:.2f} · {h.class_name} {_mark(h.matches_prediction)}"
        text = index.caption_of(h.index)
        if text:
            cap += f" — {text}"
        img = _thumb(index.image_of(h.index))
        if img is None:
            img = Image.new("RGB", (THUMB, THUMB), (230, 230, 230))
        items.append((img, cap))
    return items


def caption_list_html(result_hits, index, title: str) -> str:
    """A ranked list of captions, each with its score, class, ✓/✗ and the image it belongs to."""
    if not result_hits:
        return ""
    rows = []
    top = max(h.score for h in result_hits)
    for h in result_hits:
        ok = h.matches_prediction
        colour = "#15803d" if ok else "#b91c1c"
        bg = "#f0fdf4" if ok else "#fef2f2"
        width = max(4, int(100 * max(h.score, 0) / max(top, 1e-6)))
        img = _data_uri(index.image_of(h.index))
        img_tag = (f'<img src="{img}" alt="image {h.index}" width="56" height="56" '
                   f'style="border-radius:6px;image-rendering:pixelated;flex:none"/>' if img else "")
        split = "" if h.split == "test" else f' <span style="color:#64748b;font-size:0.8em">({h.split})</span>'
        rows.append(
            f'<li class="acmr-hit" style="display:flex;gap:12px;align-items:center;padding:6px 8px;'
            f'border-bottom:1px solid #e2e8f0;list-style:none">'
            f'<span style="width:2em;color:#64748b;text-align:right;flex:none">#{h.rank}</span>{img_tag}'
            f'<span style="flex:1;min-width:0"><span style="display:block">{html.escape(h.caption or "(no caption)")}</span>'
            f'<span style="display:flex;gap:8px;align-items:center;margin-top:3px;font-size:0.85em">'
            f'<span class="acmr-score" style="font-variant-numeric:tabular-nums;font-weight:600">{h.score:.2f}</span>'
            f'<span style="display:inline-block;height:6px;width:{width}px;max-width:100px;background:#6366f1;'
            f'border-radius:3px"></span>'
            f'<span style="background:{bg};color:{colour};border:1px solid {colour};border-radius:10px;'
            f'padding:0 8px">{html.escape(h.class_name)} {_mark(ok)}</span>{split}</span></span></li>')
    return (f'<div class="acmr-results"><div style="font-weight:600;margin:4px 0 6px">{html.escape(title)}</div>'
            f'<ol style="margin:0;padding:0">{"".join(rows)}</ol></div>')


def summary_html(res: SearchResult, index, query_image: Image.Image | None = None) -> str:
    if res.query_modality == "text":
        q = f'text “{html.escape(res.query or "")}”'
        what = "images"
    else:
        uri = _data_uri(query_image, 48) if query_image is not None else ""
        q = (f'an image <img src="{uri}" alt="your query" width="32" height="32" style="vertical-align:middle;'
             f'border-radius:4px;border:1px solid #c7d2fe;display:inline-block;margin:0 2px"/>' if uri else "an image")
        what = "captions"
    n_ok = sum(h.matches_prediction for h in res.hits)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in res.notes)
    notes = f'<ul style="margin:6px 0 0 18px;color:#92400e">{notes}</ul>' if notes else ""
    return (
        f'<div class="acmr-summary" style="padding:10px 12px;border-radius:10px;background:#eef2ff;'
        f'border:1px solid #c7d2fe">'
        f'<div>Query: {q} → the model predicts class <b class="acmr-pred">{html.escape(res.predicted_class)}</b> '
        f'({res.predicted_prob:.0%}).</div>'
        f'<div style="font-size:0.9em;color:#475569;margin-top:3px">Top {len(res.hits)} {what} of '
        f'{res.gallery_size} in the gallery ({" + ".join(res.splits)}); {n_ok} of them in the predicted class. '
        f'Answered in {res.seconds * 1000:.0f} ms.</div>{notes}</div>')


def message_html(msg: str, kind: str = "warning") -> str:
    style = {"warning": ("#fffbeb", "#f59e0b", "#92400e", "⚠️"), "info": ("#f0f9ff", "#38bdf8", "#075985", "ℹ️"),
             "error": ("#fef2f2", "#f87171", "#991b1b", "⛔")}[kind]
    return (f'<div class="acmr-message acmr-{kind}" style="padding:10px 12px;border-radius:10px;background:{style[0]};'
            f'border:1px solid {style[1]};color:{style[2]}">{style[3]} {html.escape(msg)}</div>')


def status_markdown(store: ModelStore) -> str:
    cur = store.get()
    if cur is None:
        err = f"\n\n⚠️ {store.last_error}" if store.last_error else ""
        return ("**No model yet.** Train one in the dashboard's Train tab, with "
                "`python -m acmr_core train --dataset shapes --out checkpoints/NAME`, or with the button below "
                "(the default model on the built-in *shapes* dataset)." + err)
    idx = cur.index
    can = [m for m in ("text", "image") if idx.can_search(m)]
    metrics = (idx.meta.get("metrics") or {}).get("test", {}).get("map_all")
    m = f" · test mAP@all {metrics['avg']:.3f}" if isinstance(metrics, dict) and "avg" in metrics else ""
    src = cur.source
    if cur.checkpoint:
        try:
            rel = str(Path(cur.checkpoint).resolve().relative_to(ROOT))
        except ValueError:
            rel = str(cur.checkpoint)
        src = f"checkpoint `{rel}`" if src.startswith("checkpoint") else f"{src} (saved as `{rel}`)"
    notes = "".join(f"\n\n_{n}_" for n in cur.notes)
    warn = "" if can else "\n\n⚠️ This model's dataset ships features only, so it cannot encode new queries."
    return (f"**Model:** {src} · dataset *{cur.dataset_name}* ({len(idx.class_names)} classes){m} · "
            f"searches by {' and '.join(can) or 'nothing'} · model #{cur.version}{notes}{warn}")


# --- handlers (plain functions: they never raise) -------------------------------------------------

N_OUT = 7  # summary, gallery, caption list, same gallery, same list, raw JSON, last query


def _no_results(msg: str, kind: str = "warning", last=None, notify: bool = True) -> tuple:
    if notify and kind != "info":
        try:
            gr.Warning(msg)
        except Exception:  # noqa: BLE001 - a toast is a nicety; the page message is what counts
            pass
    return (message_html(msg, kind), gr.update(value=[], visible=False), gr.update(value="", visible=False),
            gr.update(value=[], visible=False), gr.update(value="", visible=False), None, last)


def _splits(gallery) -> tuple:
    if isinstance(gallery, (list, tuple)):
        return tuple(gallery)
    if gallery in (None, ""):
        return ("test",)
    if gallery not in GALLERY_CHOICES:
        raise QueryError(f"unknown gallery '{gallery}'; choose one of: {', '.join(GALLERY_CHOICES)}")
    return GALLERY_CHOICES[gallery]


def _index(store: ModelStore):
    store.ensure_loaded()
    return store.index()


def render(res: SearchResult, index, last) -> tuple:
    """The seven outputs of a successful search."""
    summary = summary_html(res, index, (last or {}).get("image"))
    if res.query_modality == "text":
        main_g = gr.update(value=gallery_items(res.hits, index), visible=True, height=_gallery_height(len(res.hits), 4),
                           label="Images for your text · score · class ✓/✗ — caption")
        main_l = gr.update(value="", visible=False)
        same_g = gr.update(value=[], visible=False)
        same_l = gr.update(value=caption_list_html(res.same_modality, index, "Nearest captions (same modality: text)"),
                           visible=bool(res.same_modality))
    else:
        main_g = gr.update(value=[], visible=False)
        main_l = gr.update(value=caption_list_html(res.hits, index, "Captions for your image (with the image "
                                                   "each caption belongs to)"), visible=True)
        same_g = gr.update(value=gallery_items(res.same_modality, index), visible=bool(res.same_modality),
                           height=_gallery_height(len(res.same_modality), 4),
                           label="Nearest images (same modality: image)")
        same_l = gr.update(value="", visible=False)
    return summary, main_g, main_l, same_g, same_l, res.to_dict(), last


def _gallery_height(n: int, columns: int, tile: int = 170) -> int:
    rows = max(1, -(-n // columns))
    return min(720, rows * tile + 50)


def search_text(text, k=DEFAULT_K, gallery="test split", same=False, store: ModelStore = STORE) -> tuple:
    """UI handler for a text query."""
    def search():
        index = _index(store)
        return index, index.search_by_text(text, k, bool(same), _splits(gallery))

    return _guarded(search, lambda index, res: render(res, index, {"kind": "text", "text": res.query}))


def _guarded(search, finish) -> tuple:
    """Run `search() -> (index, result)` and hand it to `finish`; every failure becomes the page's message
    (never a stack trace): no model as information, a bad query or checkpoint as a warning, else an error."""
    try:
        index, res = search()
    except NoModelError as e:
        return _no_results(str(e), "info")
    except (QueryError, CheckpointError) as e:
        return _no_results(str(e))
    except Exception as e:  # noqa: BLE001 - never a stack trace in the page
        return _no_results(f"The search failed unexpectedly ({type(e).__name__}: {e}).", "error")
    return finish(index, res)


def search_image(image, k=DEFAULT_K, gallery="test split", same=False, store: ModelStore = STORE) -> tuple:
    """UI handler for an image query: an upload's FileData dict (unprocessed event), a path, bytes, a PIL image,
    an array, or a Sketchpad value."""
    query = {}

    def search():
        img = image
        if isinstance(img, dict) and "composite" in img:  # Sketchpad / ImageEditor value
            img = img.get("composite") if img.get("composite") is not None else img.get("background")
            if img is None:
                raise QueryError("The drawing is empty. Draw a shape first.")
            if isinstance(img, Image.Image) and _blank(img):
                raise QueryError("The drawing is empty. Draw a shape first, e.g. a star.")
        query["image"] = read_upload(from_payload(img))
        index = _index(store)
        return index, index.search_by_image(query["image"], k, bool(same), _splits(gallery))

    def finish(index, res):
        from acmr_core.retrieval import load_image

        try:  # keep the decoded query in memory (not on disk) so changing k or the gallery can re-run it
            kept, _ = load_image(query["image"])
        except QueryError:
            kept = None
        return render(res, index, {"kind": "image", "image": kept} if kept is not None else None)

    return _guarded(search, finish)


def _blank(img: Image.Image) -> bool:
    lo, hi = img.convert("L").getextrema()
    return hi - lo < 8


def sketch_image(payload, blob_storage: dict | None = None):
    """The drawing of an unprocessed Sketchpad event, as bytes (or a PIL image from a direct call).

    The browser sends the canvas either as in-memory blobs (popped from the component's `blob_storage`) or
    as uploaded files (composite, background, layers): those files are read, then deleted like any upload."""
    if payload is None:
        return None
    if not isinstance(payload, dict):
        return payload
    if "composite" in payload and not isinstance(payload.get("composite"), (dict, type(None))):
        return payload["composite"] if payload["composite"] is not None else payload.get("background")  # PIL
    if payload.get("id") and blob_storage is not None:
        blobs = blob_storage.pop(payload["id"], None)
        if blobs is not None:
            return blobs.composite if blobs.composite is not None else blobs.background
    files = [payload.get("composite"), payload.get("background"), *(payload.get("layers") or [])]
    found = None
    for f in files:
        if not isinstance(f, dict):
            continue
        try:
            data = read_upload(from_payload(f))
        except QueryError:
            continue
        if found is None:
            found = data
    return found


def search_sketch(sketch, k=DEFAULT_K, gallery="test split", same=False, store: ModelStore = STORE,
                  blob_storage: dict | None = None) -> tuple:
    """UI handler for the Sketchpad (raw payload, or a value with a PIL 'composite')."""
    try:
        image = sketch_image(sketch, blob_storage)
    except Exception:  # noqa: BLE001 - a malformed payload is just "no drawing"
        image = None
    if image is None:
        return _no_results("The drawing is empty. Draw a shape first, e.g. a star.")
    if isinstance(image, (bytes, bytearray)):
        try:
            from acmr_core.retrieval import load_image

            image, _ = load_image(bytes(image))
        except QueryError as e:
            return _no_results(str(e))
    if isinstance(image, Image.Image) and _blank(image):
        return _no_results("The drawing is empty. Draw a shape first, e.g. a star.")
    return search_image(image, k, gallery, same, store)


def search_example(evt: gr.SelectData, k=DEFAULT_K, gallery="test split", same=False,
                   store: ModelStore = STORE, examples_dir: Path | None = None) -> tuple:
    files = example_images(examples_dir)
    i = evt.index if isinstance(evt.index, int) else (evt.index[0] if evt.index else 0)
    if not 0 <= i < len(files):
        return _no_results("That example is no longer available.")
    return search_image(str(files[i]), k, gallery, same, store)


def search_text_example(example, k=DEFAULT_K, gallery="test split", same=False, store: ModelStore = STORE) -> tuple:
    text = example[0] if isinstance(example, (list, tuple)) else example
    return (text, *search_text(text, k, gallery, same, store))


def rerun(last, k=DEFAULT_K, gallery="test split", same=False, store: ModelStore = STORE) -> tuple:
    """Re-run the last query (after k, the gallery or the same-modality box changed)."""
    if not last:
        return tuple(gr.skip() for _ in range(N_OUT))
    if last.get("kind") == "text":
        return search_text(last["text"], k, gallery, same, store)
    return search_image(last.get("image"), k, gallery, same, store)


# --- API endpoints (return JSON-able dicts; a bad query raises gr.Error with a clear message) --------


def api_search_by_text(text, k=10, store: ModelStore = STORE) -> dict:
    """Search the test split's images with a text. Returns the ranked results with ids, captions, classes, scores."""
    try:
        return _index(store).search_by_text(text, k).to_dict()
    except (NoModelError, QueryError, CheckpointError) as e:
        raise gr.Error(str(e), print_exception=False) from None


def api_search_by_image(image, k=10, store: ModelStore = STORE) -> dict:
    """Search the test split's captions with an image. Returns the ranked results with ids, captions, classes, scores."""
    try:
        query = read_upload(from_payload(image))  # a refused file is answered first, model or not
        return _index(store).search_by_image(query, k).to_dict()
    except (NoModelError, QueryError, CheckpointError) as e:
        raise gr.Error(str(e), print_exception=False) from None


# --- model handlers ----------------------------------------------------------------------------------


def checkpoint_choices(store: ModelStore) -> list[tuple[str, str]]:
    out = []
    for p in store.list_checkpoints():
        try:
            label = str(p.resolve().relative_to(ROOT))
        except ValueError:
            label = str(p)
        out.append((f"{label}  ({time.strftime('%Y-%m-%d %H:%M', time.localtime((p / 'acmr.safetensors').stat().st_mtime))})",
                    str(p)))
    return out


def model_panel(store: ModelStore) -> tuple:
    """status markdown, checkpoint dropdown, train button, model accordion (open when there is no model), version."""
    store.ensure_loaded()
    cur = store.get()
    has = cur is not None
    choices = checkpoint_choices(store)
    value = cur.checkpoint if cur and cur.checkpoint and any(c[1] == cur.checkpoint for c in choices) else None
    return (status_markdown(store), gr.update(choices=choices, value=value),
            gr.update(variant="secondary" if has else "primary",
                      value="Retrain the default model" if has else "Train the default model"),
            gr.update(open=not has), store.version)


def load_selected(path, store: ModelStore = STORE) -> tuple:
    if not path:
        gr.Warning("Pick a checkpoint first.")
        return model_panel(store)
    try:
        store.load_checkpoint(path)
        gr.Info(f"Loaded {path}")
    except Exception as e:  # noqa: BLE001 - CheckpointError above all; whatever it is, a message, never a trace
        msg = str(e) if isinstance(e, (CheckpointError, OSError)) else f"{type(e).__name__}: {e}"
        gr.Warning(msg)
        status, *rest = model_panel(store)
        return (status + f"\n\n⚠️ {msg}", *rest)
    return model_panel(store)


def train_default(epochs, progress=gr.Progress(), store: ModelStore = STORE) -> tuple:
    try:
        progress(0.0, desc="starting")
        store.train_default(progress=lambda f, m: progress(f, desc=m), epochs=int(epochs))
    except Exception as e:  # noqa: BLE001 - CheckpointError, DataError, ConfigError, ...: shown, never a trace
        msg = str(e) if isinstance(e, (CheckpointError, ValueError, OSError)) else f"{type(e).__name__}: {e}"
        gr.Warning(f"Training failed: {msg}")
        status, *rest = model_panel(store)
        return (status + f"\n\n⚠️ Training failed: {msg}", *rest)
    return model_panel(store)


def poll_model(shown_version, store: ModelStore = STORE):
    """Timer tick: refresh the model panel only when the current model changed."""
    if shown_version == store.version:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return model_panel(store)


# --- examples ----------------------------------------------------------------------------------------


def example_images(examples_dir: Path | None = None) -> list[Path]:
    d = Path(examples_dir) if examples_dir else EXAMPLES_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())[:24]


def _example_label(p: Path) -> str:
    return p.stem.replace("_", " ").replace("-", " ")


# --- the app -----------------------------------------------------------------------------------------


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose launch() installs the UploadGuard (mount_search installs it when mounting)."""

    def launch(self, *args, **kwargs):
        kwargs["app_kwargs"] = guard_app_kwargs(kwargs.get("app_kwargs"), API_ENDPOINTS, ("image",))
        return super().launch(*args, **kwargs)


def build_search_app(store: ModelStore = STORE, examples_dir: str | Path | None = None) -> gr.Blocks:
    """The Search tab as a gr.Blocks app (mount it, or .launch() it)."""
    ex_files = example_images(examples_dir)
    P = lambda fn: partial(fn, store=store)  # noqa: E731
    store.preload()  # load the newest checkpoint now, in the background, if no model is set yet

    with GuardedBlocks(title="ACMR Lab · Search", elem_id="acmr-search", delete_cache=(600, 900)) as demo:
        last_query = gr.State(None)
        shown_version = gr.State(-1)
        gr.Markdown("## Search the common space\nType a description or show a picture: the trained model "
                    "projects the query into its common space and returns the nearest items **of the other "
                    "modality** from the gallery.")
        status = gr.Markdown("Loading the model …", elem_classes=["acmr-status"])
        with gr.Accordion("Model: pick a checkpoint, or train the default one", open=False) as model_acc:
            with gr.Row():
                ckpt_dd = gr.Dropdown(label="Checkpoint", choices=[], value=None, scale=4, allow_custom_value=False,
                                      info="Checkpoints under checkpoints/, newest first")
                refresh_btn = gr.Button("↻ Refresh", scale=1, size="sm")
                load_btn = gr.Button("Load", scale=1, size="sm", variant="secondary")
            with gr.Row():
                epochs = gr.Slider(5, 100, value=ACMRConfig().epochs, step=5, label="Epochs for the default model",
                                   info="ACMR with the paper's settings on the built-in shapes dataset, saved under "
                                        f"checkpoints/{DEFAULT_MODEL_DIR}/; fewer epochs finish sooner", scale=3)
                train_btn = gr.Button("Train the default model", variant="primary", scale=1)

        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                with gr.Tabs():
                    with gr.Tab("Text", id="text"):
                        text_in = gr.Textbox(label="Describe what you are looking for", lines=2, max_lines=6,
                                             placeholder="e.g. a small blue triangle in the corner",
                                             elem_id="acmr-text-query")
                        text_btn = gr.Button("Search images", variant="primary", elem_id="acmr-text-search")
                        text_ex = gr.Dataset(components=[text_in], samples=[[q] for q in TEXT_EXAMPLES],
                                             label="Try", type="values")
                    with gr.Tab("Upload", id="upload"):
                        img_in = gr.Image(type="filepath", label="Upload an image (PNG, JPEG, GIF, BMP, WebP)",
                                             sources=["upload", "clipboard"], height=280, elem_id="acmr-image-query")
                        img_btn = gr.Button("Search captions", variant="primary", elem_id="acmr-image-search")
                    with gr.Tab("Draw", id="draw") as draw_tab:
                        sketch = gr.Sketchpad(label="Draw a shape", type="pil",
                                              image_mode="RGB", canvas_size=(400, 400), height=420, layers=False,
                                              brush=gr.Brush(default_size=18, colors=["#d32323", "#234bcd",
                                                                                       "#28a037", "#ebcd19",
                                                                                       "#000000"],
                                                             default_color="#d32323"),
                                              elem_id="acmr-sketch")
                        sketch_btn = gr.Button("Search with my drawing", variant="primary")
                    with gr.Tab("Examples", id="examples"):
                        if ex_files:
                            ex_gallery = gr.Gallery(value=[(str(p), _example_label(p)) for p in ex_files],
                                                    label="Click an example to search with it", columns=4,
                                                    elem_id="acmr-examples", height=300, allow_preview=False,
                                                    object_fit="contain", interactive=False)
                        else:
                            ex_gallery = None
                            gr.Markdown("_No example images found in `assets/examples/`._")
                with gr.Group():
                    k = gr.Slider(1, K_SLIDER_MAX, value=DEFAULT_K, step=1, label="How many results (k)")
                    gallery_choice = gr.Radio(list(GALLERY_CHOICES), value="test split", label="Gallery",
                                              info="Search the held-out test items only, or add the training items")
                    same = gr.Checkbox(False, label="Also show same-modality neighbours")
            with gr.Column(scale=3, min_width=360, elem_classes=["acmr-results"]):
                summary = gr.HTML(message_html("Type a query or pick an image to search.", "info"),
                                  elem_id="acmr-summary")
                res_gallery = gr.Gallery(label="Results", columns=4, height="auto", visible=False, format="png",
                                         object_fit="contain", allow_preview=True, elem_id="acmr-result-gallery")
                res_list = gr.HTML("", visible=False, elem_id="acmr-result-list")
                same_gallery = gr.Gallery(label="Same modality", columns=4, height="auto", visible=False,
                                          format="png", object_fit="contain", elem_id="acmr-same-gallery")
                same_list = gr.HTML("", visible=False, elem_id="acmr-same-list")
                with gr.Accordion("Raw results (JSON, as the API returns them)", open=False):
                    raw = gr.JSON(label="results")
        gr.Markdown(SCORE_NOTE)

        # hidden components behind the named API endpoints
        with gr.Column(visible=False):
            api_text = gr.Textbox(label="text")
            api_k_text = gr.Number(value=10, precision=0, label="k")
            api_img = gr.Image(type="filepath", label="image")
            api_k_img = gr.Number(value=10, precision=0, label="k")
            api_out_text = gr.JSON(label="results")
            api_out_img = gr.JSON(label="results")
            api_btn_text = gr.Button("search_by_text")
            api_btn_img = gr.Button("search_by_image")

        outs = [summary, res_gallery, res_list, same_gallery, same_list, raw, last_query]
        opts = [k, gallery_choice, same]
        common = dict(api_visibility="private", concurrency_limit=2, concurrency_id="search")
        text_btn.click(P(search_text), [text_in, *opts], outs, **common)
        text_in.submit(P(search_text), [text_in, *opts], outs, **common)
        text_ex.click(P(search_text_example), [text_ex, *opts], [text_in, *outs], **common)
        # preprocess=False: the handler gets the upload's path and checks the file itself, so a file that is not
        # an image (or a corrupt one) gets a clear message instead of failing inside Gradio's preprocessing
        img_in.upload(P(search_image), [img_in, *opts], outs, preprocess=False, **common)
        img_btn.click(P(search_image), [img_in, *opts], outs, preprocess=False, **common)
        def on_sketch(payload, k_, gallery_, same_):  # raw payload: the drawing's files are deleted after use
            return search_sketch(payload, k_, gallery_, same_, store=store, blob_storage=sketch.blob_storage)

        sketch_btn.click(on_sketch, [sketch, *opts], outs, preprocess=False, **common)
        if ex_gallery is not None:
            def on_example(evt: gr.SelectData, k_, gallery_, same_):  # explicit signature: Gradio injects evt
                return search_example(evt, k_, gallery_, same_, store=store, examples_dir=examples_dir)

            ex_gallery.select(on_example, opts, outs, **common)
        draw_tab.select(None, None, None, js=PICK_BRUSH_JS, api_visibility="private", queue=False)
        k.release(P(rerun), [last_query, *opts], outs, **common)
        gallery_choice.change(P(rerun), [last_query, *opts], outs, **common)
        same.change(P(rerun), [last_query, *opts], outs, **common)

        panel = [status, ckpt_dd, train_btn, model_acc, shown_version]
        demo.load(P(model_panel), None, panel, api_visibility="private")
        refresh_btn.click(P(model_panel), None, panel, api_visibility="private")
        load_btn.click(P(load_selected), [ckpt_dd], panel, api_visibility="private", concurrency_id="model",
                       concurrency_limit=1)
        def on_train(epochs_, progress=gr.Progress()):  # explicit signature: Gradio injects the progress tracker
            return train_default(epochs_, progress, store=store)

        train_btn.click(on_train, [epochs], panel, api_visibility="private", concurrency_id="model",
                        concurrency_limit=1)
        gr.Timer(3.0).tick(P(poll_model), [shown_version], panel, api_visibility="private", show_progress="hidden",
                           queue=False)

        # preprocess=False on both: k reaches the one parser (check_k) as sent, not rounded by gr.Number
        api_btn_text.click(P(api_search_by_text), [api_text, api_k_text], api_out_text, api_name="search_by_text",
                           concurrency_limit=2, concurrency_id="search", preprocess=False)
        api_btn_img.click(P(api_search_by_image), [api_img, api_k_img], api_out_img, api_name="search_by_image",
                          concurrency_limit=2, concurrency_id="search", preprocess=False)
    demo.queue(default_concurrency_limit=2)
    return demo


def mount_search(app, path: str = "/gradio", store: ModelStore = STORE, **kwargs):
    """Mount the Search app on a FastAPI/Starlette app at `path`, with its theme and CSS, behind the
    UploadGuard (app/upload_guard.py: the server opens only files uploaded to it)."""
    blocks = build_search_app(store)
    kwargs["app_kwargs"] = guard_app_kwargs(kwargs.get("app_kwargs"), API_ENDPOINTS, ("image",))
    kwargs.setdefault("theme", theme())
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("footer_links", ["api"])
    return gr.mount_gradio_app(app, blocks, path=path, **kwargs)


def launch_kwargs() -> dict:
    """What .launch() needs for this app's look (Gradio 6 takes theme and CSS at launch, not in Blocks)."""
    return {"theme": theme(), "css": CSS, "footer_links": ["api"]}


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="ACMR Lab: the cross-modal search app on its own")
    ap.add_argument("--port", type=int, default=7861)
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder to search with (default: the newest)")
    args = ap.parse_args(argv)
    if args.checkpoint:
        STORE.load_checkpoint(args.checkpoint)
    else:
        STORE.ensure_loaded()
    print(status_markdown(STORE).split("\n")[0])
    demo = build_search_app(STORE)
    demo.launch(server_name="127.0.0.1", server_port=args.port, share=False, inbrowser=False,
                **launch_kwargs())


if __name__ == "__main__":
    main()
