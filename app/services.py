"""Process-wide glue between the dashboard, the search app and acmr_core (no Streamlit imports here).

- what the dashboard's dataset choices mean as `load_dataset` calls,
- background start-up work (UMAP compilation, loading the default dataset),
- handing a trained or loaded model to `app.model_store.STORE`, so the Search tab uses it,
- a small background-task helper for slow actions (loading a checkpoint) that the page polls.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from acmr_core import maps
from acmr_core.dataset_cache import DATASETS
from acmr_core.datasets.shapes import DEFAULT_PAIRS as SHAPES_PAIRS
from app.wording import friendly_error

ROOT = Path(__file__).resolve().parents[1]


def checkpoints_dir() -> Path:
    """Where checkpoints are saved and listed: $ACMR_CHECKPOINTS_DIR, else checkpoints/ in the project."""
    return Path(os.environ.get("ACMR_CHECKPOINTS_DIR") or ROOT / "checkpoints")

SEARCH: dict[str, Any] = {"status": "not mounted", "error": None}
# The start-up work (the search app's build in app/main.py, and start_background's below) waits for the first
# client: a page the dashboard has drawn, or a request to /gradio; at the latest DEFER_STARTUP_S after start. Run
# beside the first page, it held that page back (one GIL): the page took 19.7-20.9 s from launch, 8.2-8.5 s now.
FIRST_CLIENT = threading.Event()
DEFER_STARTUP_S = float(os.environ.get("ACMR_DEFER_STARTUP_S", "20"))


def client_arrived() -> None:
    """A page is drawn, or a client asked for the search app: the deferred start-up work may begin."""
    FIRST_CLIENT.set()


# The search app's build (importing Gradio: 8.5 s of one core here) also waits while a run trains, unless a client
# asks for /gradio (the Search tab does): built beside a presenter's first run, it slowed that run's first epochs.
SEARCH_WANTED = threading.Event()
SEARCH_QUIET_S = float(os.environ.get("ACMR_SEARCH_QUIET_S", "5"))


def _live_runs() -> list:
    """The runs of this process (acmr_core.live.REGISTRY), without importing it: not imported yet (torch, 3 s)
    means no run has started."""
    registry = getattr(sys.modules.get("acmr_core.live"), "REGISTRY", None)
    return registry.runs() if registry is not None else []


def training_now() -> bool:
    """Whether a run of this process is training (not paused, not done)."""
    return any(r.state == "running" for r in _live_runs())


def wait_to_build_search(quiet_s: float | None = None, poll: float = 0.25) -> None:
    """Return once the search app may be built: a client asked for it (SEARCH_WANTED), or no run has trained
    for `quiet_s` seconds (SEARCH_QUIET_S: a presenter who presses Start soon after the page appears)."""
    quiet_s = SEARCH_QUIET_S if quiet_s is None else quiet_s
    calm_since = time.monotonic()
    while not SEARCH_WANTED.is_set():
        if training_now():
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet_s:
            return
        SEARCH_WANTED.wait(poll)

DATASET_KINDS = {
    "shapes": "Shapes (built-in, generated offline)",
    "wikipedia": "Wikipedia benchmark (from a folder)",
    "folder": "Your own images + captions (folder with a CSV)",
    "features": "Your own features (.npz / .mat file)",
    "wikipedia_raw": "Wikipedia benchmark, raw photos + texts (from a folder)",
}
DEFAULT_WIKIPEDIA_DIR = ROOT.parent / "shared" / "data" / "wikipedia"


@dataclass(frozen=True)
class DatasetSpec:
    kind: str
    options: tuple = ()          # sorted (name, value) pairs, hashable

    @property
    def opts(self) -> dict:
        return dict(self.options)

    @property
    def label(self) -> str:
        o = self.opts
        where = o.get("data_dir") or o.get("path")
        return f"{self.kind}" + (f" ({where})" if where else "")

    def load(self):
        """Load (once per process; shared read-only by all sessions). Raises DataError/EncoderError."""
        return DATASETS.get(self.kind, **self.opts)

    def loaded(self):
        return DATASETS.peek(self.kind, **self.opts)


def dataset_spec(kind: str, data_dir: str = "", image_encoder: str | None = None, text_encoder: str | None = None,
                 n_pairs: int | None = None, difficulty: str | None = None, features_map: str = "") -> DatasetSpec:
    """What a choice in the dashboard means as a `load_dataset(kind, **options)` call.

    Encoders not named: shapes uses hog_color + tfidf; folder and wikipedia_raw the loader's own defaults
    (the best offline encoders installed, see acmr_core.encoders.best_offline_encoders)."""
    opts: dict = {}
    if kind == "shapes":
        opts = {"image_encoder": image_encoder or "hog_color", "text_encoder": text_encoder or "tfidf", "progress": False}
        if n_pairs and int(n_pairs) != SHAPES_PAIRS:   # the default stays implicit: the same cache key as DEFAULT_SPEC
            opts["n_pairs"] = int(n_pairs)
        if difficulty and difficulty != "normal":
            opts["difficulty"] = difficulty
    elif kind in ("folder", "wikipedia_raw"):
        opts = {"data_dir": data_dir.strip(), "progress": False,
                **({"image_encoder": image_encoder} if image_encoder else {}),
                **({"text_encoder": text_encoder} if text_encoder else {})}
    elif kind == "wikipedia":
        opts = {"data_dir": data_dir.strip()}
    elif kind == "features":
        opts = {"path": data_dir.strip(), **({"features_map": features_map.strip()} if features_map.strip() else {})}
    else:
        raise ValueError(f"unknown dataset kind {kind!r}")
    return DatasetSpec(kind, tuple(sorted(opts.items())))


DEFAULT_SPEC = dataset_spec("shapes")

_started = threading.Event()


def start_background() -> None:
    """Once per process, in daemon threads, from the first client on (FIRST_CLIENT): compile umap-learn, warm the
    charts and the trainer (so the first Start is as fast as the next), and load the default dataset."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_start_up_work, daemon=True, name="acmr-start-up").start()


def _start_up_work() -> None:
    FIRST_CLIENT.wait(DEFER_STARTUP_S)
    maps.warm_up()
    threading.Thread(target=_warm_charts, daemon=True, name="acmr-charts-warm-up").start()
    threading.Thread(target=_warm_trainer, daemon=True, name="acmr-trainer-warm-up").start()
    if os.environ.get("ACMR_PREFETCH", "1").lower() not in ("0", "false", "no", "off"):
        DATASETS.prefetch(DEFAULT_SPEC.kind, **DEFAULT_SPEC.opts)


def track(run):
    """Kept for callers: a run registers itself in acmr_core.live.REGISTRY when it starts (health() lists those)."""
    return run


_TRAINER_WARM = {"state": "warming"}


def _warm_trainer() -> None:
    try:
        from acmr_core.pipeline import warm_up

        warm_up()
        _TRAINER_WARM["state"] = "ready"
    except Exception:  # noqa: BLE001 - an optimisation only
        _TRAINER_WARM["state"] = "failed"


def _warm_charts() -> None:
    try:
        from app import charts

        charts.warm_up()
    except Exception:  # noqa: BLE001 - an optimisation only
        pass


def health() -> dict:
    runs = []
    for r in _live_runs():
        v = r.view()
        runs.append({"id": v.run_id, "state": v.state, "epoch": v.epoch, "epochs": v.epochs, "step": v.global_step,
                     "steps": v.total_steps, "elapsed_s": round(v.elapsed, 1), "umap_pending": len(v.umap_pending)})
    return {"umap": maps.warm_status()["state"], "trainer": _TRAINER_WARM["state"], "search": SEARCH["status"],
            "default_dataset": "loaded" if DEFAULT_SPEC.loaded() is not None else "loading",
            "runs": sorted(runs, key=lambda r: r["elapsed_s"])}


# --- the model Search uses -----------------------------------------------------------------------------

def publish_run(run, checkpoint: str | Path | None = None) -> int | None:
    """Make a run's model the one Search uses (best epoch once finished). Returns the store version."""
    from app.model_store import STORE

    if run.dataset is None or run.trainer is None:
        return None
    _, what = run.model_state()
    return STORE.set_from_training(run.model(), run.dataset, checkpoint=checkpoint,
                                   source=f"{run.name} trained in the dashboard on {run.dataset.name} ({what})")


def store_status(store=None) -> str:
    """What Search uses now, in words. While the newest checkpoint loads at start-up it says so: "no model yet"
    above a search app that a moment later showed that checkpoint read as a contradiction."""
    if store is None:
        from app.model_store import STORE as store

    cur = store.get()
    if cur is None:
        return "a checkpoint, still loading …" if store.loading else "no model yet"
    return cur.source + (" (another checkpoint is loading …)" if store.loading else "")


def store_loading() -> bool:
    from app.model_store import STORE

    return STORE.loading


# --- thumbnails for the maps' hover ----------------------------------------------------------------------

_THUMB_SOURCES: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()
_thumb_lock = threading.Lock()
THUMB_SIZE = 112


def thumb_prefix(dataset) -> str | None:
    """URL prefix ("/acmr/thumb/<token>/") under which the dataset's raw images are served as small PNGs,
    or None if it has no raw images. The token is random: only datasets shown in a page are reachable."""
    if dataset is None or getattr(dataset, "images", None) is None:
        return None
    with _thumb_lock:
        token = getattr(dataset, "_acmr_thumb_token", None)
        if token is None or _THUMB_SOURCES.get(token) is not dataset:
            token = uuid.uuid4().hex[:16]
            try:
                dataset._acmr_thumb_token = token
            except AttributeError:
                return None
            _THUMB_SOURCES[token] = dataset
    return f"/acmr/thumb/{token}/"


def thumbnail_png(token: str, row: int, size: int = THUMB_SIZE) -> bytes | None:
    """A PNG thumbnail of image `row` of the dataset registered under `token` (None if unknown)."""
    import io

    from PIL import Image

    ds = _THUMB_SOURCES.get(token)
    if ds is None or ds.images is None or not 0 <= row < len(ds.images):
        return None
    im = ds.images[row].convert("RGB")
    im.thumbnail((size, size), Image.NEAREST if max(im.size) <= size else Image.LANCZOS)
    if max(im.size) < size:           # small pictures (e.g. 64 px shapes): scale up crisply
        k = size // max(im.size)
        im = im.resize((im.width * k, im.height * k), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


# --- background tasks ----------------------------------------------------------------------------------

@dataclass
class Task:
    """A function running in a daemon thread; the page polls `done`, `result`, `error`."""

    name: str
    fn: Callable[[], Any]
    result: Any = None
    error: str | None = None
    _thread: threading.Thread | None = None

    def start(self) -> "Task":
        def go():
            try:
                self.result = self.fn()
            except Exception as e:  # noqa: BLE001 - shown in the page
                self.error = friendly_error(e)

        self._thread = threading.Thread(target=go, daemon=True, name=f"acmr-task-{self.name}")
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done


def load_checkpoint_task(path: str | Path) -> Task:
    """Load a checkpoint for Search (it reloads the data it was trained on) and read its history."""
    def go():
        import copy

        from acmr_core.checkpoints import read_meta
        from acmr_core.retrieval import SearchIndex
        from app.model_store import STORE

        meta = read_meta(path)
        info = meta.get("dataset") or {}
        dataset = None
        if info.get("dataset") and isinstance(info.get("options"), dict):
            # the loader's own options, as recorded: reuse the process-wide dataset cache (a copy: the index
            # may re-encode features into it)
            opts = dict(info["options"])
            if info["dataset"] in ("shapes", "folder", "wikipedia_raw"):
                opts.setdefault("progress", False)
            dataset = copy.copy(DATASETS.get(info["dataset"], **opts))
        index = SearchIndex.from_checkpoint(path, dataset=dataset)
        STORE.set_index(index, index.source, path)
        return {"path": str(path), "meta": meta}

    return Task(f"load-{Path(path).name}", go).start()


def list_checkpoints() -> list[Path]:
    from acmr_core.checkpoints import WEIGHTS

    root = checkpoints_dir()
    if not root.is_dir():
        return []
    found = sorted(root.glob(f"**/{WEIGHTS}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.parent for p in found]
