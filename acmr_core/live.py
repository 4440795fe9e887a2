"""A live training run: the Trainer in a background thread, and a thread-safe record of what it emits.

`TrainingRun` owns one `Trainer`. It listens to the trainer's events and keeps, under one lock,
  - the step series (every loss term, the modality classifier's accuracy, the GRL weight γ),
  - the epoch history (validation mAP both ways, modality probe, modality gap, timing),
  - the embedding snapshots of a fixed validation sample, and 2-D maps of them: PCA every epoch (each
    frame Procrustes-aligned onto the last), UMAP at chosen epochs (computed by its own worker thread,
    each frame initialised from the previous one),
  - the state (ready / running / paused / stopped / finished / failed) and a message for people.
A UI polls `view()` (a consistent copy, cheap when nothing changed: compare `version`), and never
touches the trainer's internals. Any error (bad config, data that does not fit, NaN loss, an exception
inside training) ends the run in state "failed" with a message; it never kills the process.

`ComparisonRun` (several variants of one config, side by side) lives in acmr_core/compare.py.
`DATASETS` (a `DatasetCache`) loads each dataset once per process; runs get their own shallow copy, so
one run's validation split never leaks into another's.

Checkpoints are saved with unique folder names, atomically (see checkpoints.save_checkpoint), from a
consistent copy of the weights: the best validation epoch once training ended, else the end of the last
completed epoch. Nothing here imports a UI library.
"""
from __future__ import annotations

import copy
import csv
import io
import itertools
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .config import ACMRConfig, ConfigError
from .data import CrossModalDataset

LOSS_KEYS = ("imd", "imi", "reg", "adv", "emb", "total")
ACTIVE = ("running", "paused")
DONE = ("stopped", "finished", "failed")
_counter = itertools.count(1)


def _join(thread, timeout: float | None) -> bool:
    """Wait for a worker thread (if any) to end; True if it has."""
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


def default_umap_epochs(epochs: int, n: int = 5) -> list[int]:
    """Epoch 0 (before training) and n roughly even epochs up to the last one."""
    if epochs <= 0:
        return [0]
    picks = {0, epochs} | {int(round(epochs * k / n)) for k in range(1, n)}
    return sorted(e for e in picks if 0 <= e <= epochs)


@dataclass
class RunView:
    """A consistent copy of a run's state, for drawing. Arrays are copies; lists are new lists."""

    run_id: str
    name: str
    version: int
    state: str
    message: str
    error: str | None
    config: ACMRConfig
    dataset_name: str
    class_names: list
    steps: dict                 # name -> np.ndarray: global_step, epoch, imd, imi, reg, adv, emb, total, disc_acc, grl
    history: list               # one dict per epoch (epoch 0 = before training)
    epoch: int                  # epochs completed
    epochs: int
    global_step: int
    total_steps: int
    elapsed: float              # seconds since start (frozen when training ended)
    eta: float | None           # estimated seconds left
    best_epoch: int
    pca: dict                   # epoch -> maps.MapFrame
    umap: dict                  # epoch -> maps.MapFrame
    umap_pending: list          # epochs queued for UMAP
    umap_error: str | None
    saved: list                 # checkpoint folders saved from this run

    @property
    def progress(self) -> float:
        return self.global_step / self.total_steps if self.total_steps else 0.0

    @property
    def last(self) -> dict | None:
        return self.history[-1] if self.history else None


class TrainingRun:
    """One training run of ACMR on `dataset` with `config`, in a background thread."""

    def __init__(self, dataset: CrossModalDataset | Callable[[], CrossModalDataset], config: ACMRConfig | None = None,
                 *, name: str | None = None, umap_epochs: list[int] | str | None = "auto",
                 umap_options: dict | None = None, dataset_label: str | None = None,
                 on_finish: Callable[["TrainingRun"], None] | None = None):
        """`dataset` is a dataset, or a function returning one (called in the training thread, so a slow
        load or a bad data folder never blocks the caller: its error ends the run as 'failed').
        `on_finish(run)` is called in the training thread when training ended with at least one epoch
        (finished or stopped), e.g. to hand the model to a search index even if no page is watching."""
        self.config = (config or ACMRConfig()).validate()
        self._source = dataset
        self.dataset: CrossModalDataset | None = None
        self.dataset_label = dataset_label or getattr(dataset, "name", "dataset")
        if isinstance(dataset, CrossModalDataset):
            self.dataset = _own_copy(dataset)
        self.run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.name = name or f"run {next(_counter)}"
        self._lock = threading.RLock()
        self._version = 0
        self.state = "ready"
        self.message = "ready to train"
        self.error: str | None = None
        self.trainer = None
        self._thread: threading.Thread | None = None
        self._steps: dict[str, list] = {k: [] for k in ("global_step", "epoch", *LOSS_KEYS, "disc_acc", "grl")}
        self._history: list[dict] = []
        self._snapshots: dict[int, dict] = {}
        self._pca: dict = {}
        self._umap: dict = {}
        self._umap_pending: list[int] = []
        self._umap_error: str | None = None
        self._umap_queue: queue.Queue = queue.Queue()
        self._umap_thread: threading.Thread | None = None
        self._umap_options = dict(umap_options or {})
        if umap_epochs == "auto":
            umap_epochs = default_umap_epochs(self.config.epochs)
        self.umap_epochs = set(umap_epochs or [])
        self._epoch = 0
        self._global_step = 0
        self._total_steps = 0
        self._best_epoch = 0
        self._t0: float | None = None
        self._t_end: float | None = None
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._saved: list[str] = []
        self._stop_requested = False
        self._on_finish = on_finish
        self.finish_note: str | None = None      # what on_finish did (or why it failed)
        self.result = None

    # --- control ----------------------------------------------------------------------------------
    def start(self) -> "TrainingRun":
        """Build the trainer and start training in a daemon thread. Errors end the run as 'failed'."""
        _preimport()
        with self._lock:
            if self.state != "ready":
                raise RuntimeError(f"this run is {self.state}; make a new run to train again")
            self.state, self.message = "running", "preparing the model"
            self._t0 = time.perf_counter()
            self._bump()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"acmr-run-{self.run_id}")
        self._thread.start()
        return self

    def pause(self) -> None:
        if self.trainer is not None and self.state == "running":
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()

    def stop(self) -> None:
        """Ask training to stop after the current step (the best epoch so far is kept)."""
        self._stop_requested = True
        if self.trainer is not None:
            self.trainer.stop()
        with self._lock:
            if self.state == "ready":
                self.state, self.message = "stopped", "stopped before it started"
                self._bump()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for training (not the UMAP worker) to end; True if it has."""
        return _join(self._thread, timeout)

    def wait_maps(self, timeout: float | None = None) -> bool:
        """Wait until every queued UMAP frame is computed; True if none is pending."""
        t_end = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._umap_pending:
                    return True
            if t_end is not None and time.monotonic() > t_end:
                return False
            time.sleep(0.05)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def finishing(self) -> bool:
        """Training ended but `on_finish` has not reported yet (a page should keep polling)."""
        return (self._on_finish is not None and self.finish_note is None and self.state in ("finished", "stopped")
                and self._epoch > 0)

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    # --- the training thread -------------------------------------------------------------------------
    def _run(self) -> None:
        from .training import Trainer

        try:
            if self.dataset is None:
                with self._lock:
                    self.message = f"loading {self.dataset_label} (the first time can take a while)"
                    self._bump()
                self.dataset = _own_copy(self._source())
            with self._lock:
                self.message = "building the model"
                self._bump()
            self.trainer = Trainer(self.dataset, self.config, [self._on_event])
            if self._stop_requested:
                self.trainer.stop()
            with self._lock:
                self._total_steps = self._steps_per_epoch() * self.config.epochs
            result = self.trainer.run()
            self.result = result
            self.request_umap(self._epoch)   # the last epoch reached gets its map, even if training ended early
        except Exception as e:  # anything: the app stays usable, and the message says what happened
            msg = friendly_error(e)
            with self._lock:
                self.state, self.message, self.error = "failed", msg, msg
                self._t_end = time.perf_counter()
                self._bump()
        finally:
            with self._lock:
                if self.state in ACTIVE:  # the trainer ended without a final status
                    self.state, self.message = "stopped", "training ended"
                if self._t_end is None:
                    self._t_end = time.perf_counter()
                self._bump()
            if self._on_finish is not None and self.state in ("finished", "stopped") and self._epoch > 0:
                try:
                    self._on_finish(self)
                    note = "ok"
                except Exception as e:  # noqa: BLE001 - reported, never raised into the thread
                    note = f"failed: {friendly_error(e)}"
                with self._lock:
                    self.finish_note = note
                    self._bump()

    def _steps_per_epoch(self) -> int:
        n, bs = len(self.trainer.train_idx), self.config.batch_size
        return max(1, n // bs) if n >= bs else 1

    def _bump(self) -> None:
        self._version += 1

    def _on_event(self, e) -> None:
        kind = getattr(e, "kind", None)
        if kind == "step":
            with self._lock:
                s = self._steps
                s["global_step"].append(e.global_step)
                s["epoch"].append(e.epoch)
                for k in LOSS_KEYS:
                    s[k].append(float(e.losses.get(k, np.nan)))
                s["disc_acc"].append(float(e.disc_acc))
                s["grl"].append(float(e.grl))
                self._global_step, self._total_steps = e.global_step, e.total_steps
                self._bump()
        elif kind == "epoch":
            self._on_epoch(e)
        elif kind == "status":
            with self._lock:
                if e.state == "paused":
                    self._paused_at = time.perf_counter()
                elif self._paused_at is not None:
                    self._paused_total += time.perf_counter() - self._paused_at
                    self._paused_at = None
                self.state, self.message = e.state, e.message
                if e.state == "failed":
                    self.error = e.message
                if e.state in DONE:
                    self._t_end = time.perf_counter()
                self._bump()

    def _on_epoch(self, e) -> None:
        from . import maps

        row = {"epoch": e.epoch, "val_img2txt": e.val["img2txt"], "val_txt2img": e.val["txt2img"],
               "val_avg": e.val["avg"], "probe": e.probe, "mixing": _mixing(e), "gap": e.gap, "seconds": e.seconds,
               "elapsed": e.elapsed, "best_epoch": e.best_epoch}
        hist = getattr(self.trainer, "history", None)
        if hist and hist[-1].get("epoch") == e.epoch:   # per-epoch mean losses, as the trainer recorded them
            row.update({k: v for k, v in hist[-1].items() if k.startswith("loss_")})
        frame = None
        if e.snapshot is not None:
            with self._lock:
                prev = self._pca.get(max(self._pca)) if self._pca else None
            frame = maps.pca_frame(e.snapshot, e.epoch, None if prev is None else prev.coords)
        with self._lock:
            self._history.append(row)
            self._epoch, self._best_epoch = e.epoch, e.best_epoch
            if e.snapshot is not None:
                self._snapshots[e.epoch] = e.snapshot
                self._pca[e.epoch] = frame
            self._bump()
        if e.snapshot is not None and e.epoch in self.umap_epochs:   # the last epoch reached: see _run
            self.request_umap(e.epoch)

    # --- UMAP worker ----------------------------------------------------------------------------------
    def request_umap(self, epoch: int) -> bool:
        """Queue a UMAP frame of `epoch` (if its snapshot exists and it is not done or queued)."""
        with self._lock:
            if epoch not in self._snapshots or epoch in self._umap or epoch in self._umap_pending:
                return False
            self._umap_pending.append(epoch)
            self._bump()
            if self._umap_thread is None or not self._umap_thread.is_alive():
                self._umap_thread = threading.Thread(target=self._umap_worker, daemon=True,
                                                     name=f"acmr-umap-{self.run_id}")
                self._umap_thread.start()
        self._umap_queue.put(epoch)
        return True

    def _umap_worker(self) -> None:
        from . import maps

        while True:
            try:
                epoch = self._umap_queue.get(timeout=2.0)
            except queue.Empty:
                with self._lock:
                    if not self._umap_pending:
                        self._umap_thread = None
                        return
                continue
            with self._lock:
                snap = self._snapshots.get(epoch)
                earlier = [e for e in self._umap if e < epoch]
                later = [e for e in self._umap if e > epoch]
                ref = self._umap[max(earlier)] if earlier else (self._umap[min(later)] if later else None)
            try:
                frame = maps.umap_frame(snap, epoch, None if ref is None else ref.coords, **self._umap_options)
                with self._lock:
                    self._umap[epoch] = frame
            except Exception as e:  # umap missing or failing: PCA maps still work; say why
                with self._lock:
                    self._umap_error = f"UMAP failed for epoch {epoch}: {type(e).__name__}: {e}"
            finally:
                with self._lock:
                    if epoch in self._umap_pending:
                        self._umap_pending.remove(epoch)
                    self._bump()

    # --- reading ------------------------------------------------------------------------------------
    def view(self) -> RunView:
        with self._lock:
            now = time.perf_counter()
            if self._t0 is None:
                elapsed = 0.0
            else:
                end = self._t_end or (self._paused_at if self._paused_at else now)
                elapsed = max(0.0, end - self._t0 - self._paused_total)
            eta = None
            if self.state in ACTIVE and self._global_step and self._total_steps:
                eta = elapsed / self._global_step * (self._total_steps - self._global_step)
            return RunView(
                run_id=self.run_id, name=self.name, version=self._version, state=self.state, message=self.message,
                error=self.error, config=self.config,
                dataset_name=self.dataset.name if self.dataset is not None else self.dataset_label,
                class_names=list(self.dataset.class_names) if self.dataset is not None else [],
                steps={k: np.asarray(v, dtype=np.float64) for k, v in self._steps.items()},
                history=[dict(r) for r in self._history], epoch=self._epoch, epochs=self.config.epochs,
                global_step=self._global_step, total_steps=self._total_steps, elapsed=elapsed, eta=eta,
                best_epoch=self._best_epoch, pca=dict(self._pca), umap=dict(self._umap),
                umap_pending=list(self._umap_pending), umap_error=self._umap_error, saved=list(self._saved))

    def snapshots(self) -> dict[int, dict]:
        with self._lock:
            return dict(self._snapshots)

    def metrics_csv(self) -> str:
        """The epoch history as CSV (one row per epoch; epoch 0 = before training)."""
        return history_csv(self.view().history)

    def steps_csv(self) -> str:
        v = self.view()
        cols = list(v.steps)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        for row in zip(*(v.steps[c] for c in cols)):
            w.writerow([_fmt(x) for x in row])
        return buf.getvalue()

    # --- the model ------------------------------------------------------------------------------------
    def model_state(self) -> tuple[dict, str]:
        """(state_dict copy, description): the best epoch once training ended, else the last completed epoch."""
        tr = self.trainer
        if tr is None:
            raise RuntimeError("nothing trained yet: press Start first")
        if self.state in DONE and self.result is not None:
            return ({k: v.detach().cpu().clone() for k, v in self.result.model.state_dict().items()},
                    f"best validation epoch {self.result.best_epoch}" if not self.result.error
                    else "last good state before the failure")
        good = getattr(tr, "last_good", None)
        if good is None:
            raise RuntimeError("no epoch finished yet; wait for the first epoch")
        return ({k: v.detach().cpu().clone() for k, v in good.items()}, f"end of epoch {self._epoch}")

    def model(self):
        """A fresh ACMR model (CPU, eval mode) holding a consistent copy of the weights."""
        return self._build_model(self.model_state()[0])

    def _build_model(self, state: dict):
        from .model import ACMR

        ds = self.dataset
        m = ACMR(ds.image_features.shape[1], ds.text_features.shape[1], ds.num_classes, self.config)
        m.load_state_dict(state)
        return m.eval()

    def save(self, root: str | Path = "checkpoints", name: str | None = None) -> Path:
        """Save a checkpoint into a new, uniquely named folder under `root`; returns the folder."""
        from .checkpoints import save_checkpoint

        state, what = self.model_state()
        model = self._build_model(state)      # the same weights `what` describes, copied once
        folder = unique_folder(root, name or f"{self.dataset.name}-{self.run_id}")
        v = self.view()
        extra = {"history": v.history, "saved_from": what, "run_id": self.run_id,
                 "metrics": {"best_epoch": v.best_epoch,
                             "validation_best": next((r for r in v.history if r["epoch"] == v.best_epoch), None),
                             "epochs_run": v.epoch, "train_seconds": v.elapsed, "state": v.state}}
        save_checkpoint(folder, model, self.config, self.dataset.class_names, dataset_info=self.dataset.info,
                        encoders=self.dataset.encoders, extra=extra)
        with self._lock:
            self._saved.append(str(folder))
            self._bump()
        return folder


# --- helpers ----------------------------------------------------------------------------------------------

def __getattr__(name):
    """`from acmr_core.live import ComparisonRun` keeps working (it moved to acmr_core/compare.py)."""
    if name == "ComparisonRun":
        from .compare import ComparisonRun

        return ComparisonRun
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _mixing(e) -> float | None:
    """The epoch's kNN modality mixing: the trainer's (whole validation split) when it sends one; a trainer
    that does not know the measure yet is measured here on the epoch's map sample."""
    if hasattr(e, "mixing"):
        return e.mixing
    snap = getattr(e, "snapshot", None)
    if snap is None or len(snap["image"]) < 2:
        return None
    from .metrics import knn_mixing

    return knn_mixing(snap["image"], snap["text"])


def _preimport() -> None:
    """Import in the caller's thread what the training thread imports lazily (the modality probe's
    scikit-learn, and pandas under it). Libraries that look a module up in sys.modules (pandas via
    narwhals, for one) can otherwise see it half-initialised while another thread is still importing it."""
    import pandas  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401


def _own_copy(ds: CrossModalDataset) -> CrossModalDataset:
    """A shallow copy with its own split array (the trainer carves a validation split into it in place),
    so runs sharing one loaded dataset never see each other's splits."""
    own = copy.copy(ds)
    own.split = np.array(ds.split, copy=True)
    return own


class DatasetCache:
    """Loaded datasets, shared read-only by all runs of the process, keyed by loader name and options.

    `get` loads once (other callers for the same key wait for that load) and re-raises a failed load's
    error to every caller; a failed load is not cached, so fixing the folder and retrying works."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}

    @staticmethod
    def key(name: str, options: dict) -> str:
        import json

        return json.dumps([name, options], sort_keys=True, default=str)

    def get(self, name: str, **options) -> CrossModalDataset:
        from .data import load_dataset

        k = self.key(name, options)
        with self._lock:
            entry = self._entries.setdefault(k, {"lock": threading.Lock(), "ds": None})
        with entry["lock"]:
            if entry["ds"] is None:
                entry["ds"] = load_dataset(name, **options)
            return entry["ds"]

    def peek(self, name: str, **options) -> CrossModalDataset | None:
        with self._lock:
            entry = self._entries.get(self.key(name, options))
        return entry["ds"] if entry else None

    def prefetch(self, name: str, **options) -> threading.Thread:
        """Load in a daemon thread (errors are swallowed here; `get` will raise them to whoever asks)."""
        def go():
            try:
                self.get(name, **options)
            except Exception:  # noqa: BLE001 - reported when someone actually asks for it
                pass

        th = threading.Thread(target=go, daemon=True, name=f"acmr-prefetch-{name}")
        th.start()
        return th


DATASETS = DatasetCache()


def history_csv(history: list[dict]) -> str:
    cols: list[str] = []
    for r in history:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in history:
        w.writerow([_fmt(r.get(c)) for c in cols])
    return buf.getvalue()


def _fmt(x):
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if x != x else f"{x:.6g}"
    if isinstance(x, np.floating):
        return "" if not np.isfinite(x) else f"{float(x):.6g}"
    return x


def unique_folder(root: str | Path, name: str) -> Path:
    """root/name, or root/name-2, -3, ... : a folder no one else has claimed (claimed by creating it)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    for i in itertools.count(1):
        folder = root / (base if i == 1 else f"{base}-{i}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def friendly_error(e: Exception) -> str:
    """A message for people: what failed, in words, without a stack trace."""
    from .checkpoints import CheckpointError
    from .data import DataError

    kind = {ConfigError: "invalid setting", DataError: "data problem", CheckpointError: "checkpoint problem",
            MemoryError: "out of memory"}
    for cls, what in kind.items():
        if isinstance(e, cls):
            return f"{what}: {e}"
    return f"training failed ({type(e).__name__}): {e}"

