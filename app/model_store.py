"""The current model, shared by the dashboard and the Search tab inside one process.

Use the module-level singleton `STORE`; every method is thread-safe.

    from app.model_store import STORE

    STORE.set_from_training(model, dataset)        # after the dashboard trained a model (a copy is kept)
    STORE.set_from_training(model, dataset, checkpoint="checkpoints/run1", source="trained in the dashboard")
    STORE.load_checkpoint("checkpoints/shapes")    # after the user loaded one; raises CheckpointError
    STORE.set_index(index, source, checkpoint)     # an acmr_core.retrieval.SearchIndex built elsewhere
    STORE.load_latest()                            # newest checkpoint under checkpoints/ (None if there is none)
    STORE.ensure_loaded()                          # load_latest() once, if nothing is set yet (never raises)
    STORE.preload()                                # the same in a daemon thread (build_search_app does this)
    STORE.get()                                    # -> Current(index, source, version, checkpoint, ...) or None
    STORE.index()                                  # -> acmr_core.retrieval.SearchIndex; raises NoModelError
    STORE.version                                  # int, +1 on every change: poll it to notice a new model
    STORE.list_checkpoints()                       # checkpoint folders under checkpoints/, newest first
    STORE.train_default(progress=fn)               # train the default shapes model, save it, make it current

The checkpoints folder is <project>/checkpoints, or $ACMR_CHECKPOINTS_DIR if set.
The store is deliberately thin: loading, encoding and ranking live in `acmr_core` (retrieval.py,
checkpoints.py, training.py); this only decides which `SearchIndex` is the current one.
Two processes (e.g. a standalone search app and the dashboard) share a model only through checkpoint
files: `load_latest()` picks up whatever the other saved most recently.
"""
from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from acmr_core.checkpoints import WEIGHTS, CheckpointError, clean_stale_temporaries, latest_checkpoint
from acmr_core.retrieval import SearchIndex

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS_DIR = Path(os.environ.get("ACMR_CHECKPOINTS_DIR", ROOT / "checkpoints"))
DEFAULT_MODEL_DIR = "shapes-default"


class NoModelError(LookupError):
    """There is no model yet: train one (dashboard, CLI, or the Search tab's button) or load a checkpoint."""


@dataclass
class Current:
    index: SearchIndex
    source: str                       # human-readable: "checkpoint checkpoints/x" / "trained in the dashboard"
    version: int
    checkpoint: str | None = None     # folder of the checkpoint, if the model is saved
    notes: list = field(default_factory=list)

    @property
    def dataset_name(self) -> str:
        return getattr(self.index.ds, "name", "?")


class ModelStore:
    def __init__(self, checkpoints_dir: str | Path | None = None):
        self.checkpoints_dir = Path(checkpoints_dir) if checkpoints_dir else CHECKPOINTS_DIR
        self._lock = threading.RLock()
        self._load_lock = threading.Lock()   # one slow load/train at a time
        self._ensure_lock = threading.Lock()
        self._current: Current | None = None
        self._version = 0
        self._tried_latest = False
        self.last_error: str | None = None

    # --- reading -----------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def get(self) -> Current | None:
        with self._lock:
            return self._current

    @property
    def loading(self) -> bool:
        """A checkpoint is being loaded now (the newest one at start-up, or one a user picked)."""
        return self._load_lock.locked()

    def index(self) -> SearchIndex:
        cur = self.get()
        if cur is None:
            raise NoModelError("No model is loaded yet. Train one (the 'Train the default model' button of the Search "
                               "tab, the dashboard's Train tab, or 'python -m acmr_core train --out checkpoints/NAME') "
                               "or load a checkpoint.")
        return cur.index

    # --- setting -----------------------------------------------------------------------------------
    def set_index(self, index: SearchIndex, source: str, checkpoint: str | Path | None = None) -> int:
        """Make `index` the current model; returns the new version."""
        with self._lock:
            self._version += 1
            self._current = Current(index, source, self._version, str(checkpoint) if checkpoint else None,
                                    notes=list(index.meta.get("notes", [])))
            self._tried_latest = True
            self.last_error = None
            return self._version

    def set_from_training(self, model, dataset, *, source: str | None = None, checkpoint: str | Path | None = None,
                          encoders: dict | None = None, splits=("test",)) -> int:
        """Make a freshly trained model current (a copy of it, so further training does not change it)."""
        model = copy.deepcopy(model).cpu().eval()
        index = SearchIndex(model, dataset, encoders, splits,
                            source=source or f"a model trained on '{getattr(dataset, 'name', '?')}' in this session")
        return self.set_index(index, index.source, checkpoint)

    def load_checkpoint(self, path: str | Path, splits=("test",)) -> int:
        """Load a checkpoint (and reload its dataset) and make it current. Raises CheckpointError."""
        with self._load_lock:
            try:
                index = SearchIndex.from_checkpoint(path, splits)
            except CheckpointError:
                raise
            except (ValueError, RuntimeError, MemoryError, OSError) as e:  # one message, whatever broke
                first = (str(e).strip().splitlines() or [""])[0][:200]
                raise CheckpointError(f"{path}: cannot be loaded ({type(e).__name__}: {first})") from None
        return self.set_index(index, index.source, index.meta.get("checkpoint_path", path))

    def load_latest(self, checkpoints_dir: str | Path | None = None) -> Path | None:
        """Load the most recently saved checkpoint under `checkpoints_dir`; None if there is none.

        A newest checkpoint that cannot be loaded raises CheckpointError."""
        root = Path(checkpoints_dir) if checkpoints_dir else self.checkpoints_dir
        clean_stale_temporaries(root, recursive=True)  # what a save killed mid-way left behind
        path = latest_checkpoint(root) if root.is_dir() else None
        with self._lock:
            self._tried_latest = True
        if path is None:
            return None
        self.load_checkpoint(path)
        return path

    def ensure_loaded(self) -> Current | None:
        """If no model is set and the checkpoints folder was not tried yet, load the latest one.

        Never raises: a failure is kept in `last_error` (and shown by the UI)."""
        with self._ensure_lock:  # concurrent callers wait for the first one's load instead of loading again
            with self._lock:
                if self._current is not None or self._tried_latest:
                    return self._current
            try:
                self.load_latest()
            except Exception as e:  # noqa: BLE001 - shown to the user, never a stack trace
                with self._lock:
                    self.last_error = f"The newest checkpoint could not be loaded: {e}"
            return self.get()

    def preload(self) -> threading.Thread:
        """`ensure_loaded()` in a daemon thread (at start-up, so the first search does not wait)."""
        t = threading.Thread(target=self.ensure_loaded, daemon=True, name="acmr-store-preload")
        t.start()
        return t

    # --- checkpoints -------------------------------------------------------------------------------
    def list_checkpoints(self, checkpoints_dir: str | Path | None = None) -> list[Path]:
        """Checkpoint folders under the checkpoints folder, newest first."""
        root = Path(checkpoints_dir) if checkpoints_dir else self.checkpoints_dir
        if not root.is_dir():
            return []
        found = sorted(root.glob(f"**/{WEIGHTS}"), key=lambda p: p.stat().st_mtime, reverse=True)
        return [p.parent for p in found]

    def train_default(self, progress: Callable[[float, str], None] | None = None, out: str | Path | None = None,
                      dataset_options: dict | None = None, **config) -> Path:
        """Train ACMR with the default config on the built-in `shapes` dataset, save it under
        checkpoints/shapes-default (or `out`) and make it current. `progress(fraction, message)` is called
        as training goes. Returns the checkpoint folder."""
        from acmr_core.config import ACMRConfig
        from acmr_core.data import load_dataset
        from acmr_core.pipeline import save_model, train_run
        from acmr_core.training import EpochEvent, StepEvent

        say = progress or (lambda f, m: None)
        if not self._load_lock.acquire(blocking=False):
            raise CheckpointError("A model is already being trained or loaded; wait for it to finish.")
        try:
            say(0.0, "generating and encoding the shapes dataset (cached after the first time)")
            ds = load_dataset("shapes", progress=False, **(dataset_options or {}))
            cfg = ACMRConfig(**config)

            def listen(e):
                if isinstance(e, StepEvent) and (e.global_step % 10 == 0 or e.global_step == e.total_steps):
                    say(0.05 + 0.9 * e.global_step / e.total_steps, f"training: epoch {e.epoch}/{cfg.epochs}")
                elif isinstance(e, EpochEvent) and e.epoch:
                    say(0.05 + 0.9 * e.epoch / cfg.epochs,
                        f"epoch {e.epoch}/{cfg.epochs}: validation mAP {e.val['avg']:.3f}")

            out_run = train_run(ds, cfg, name="default shapes model (Search tab)", dataset_label=ds.name,
                                listeners=(listen,))
            if out_run.state == "failed" or out_run.metrics is None:
                raise CheckpointError(out_run.message or "training ended before its first epoch")
            say(0.97, "saving the checkpoint")
            folder = Path(out) if out else self.checkpoints_dir / DEFAULT_MODEL_DIR
            save_model(folder, out_run.result.model, cfg, ds, metrics=out_run.metrics, history=out_run.result.history,
                       run_id=out_run.run.run_id)
            index = SearchIndex(out_run.result.model, ds, ds.encoders, source=f"checkpoint {folder} (just trained)")
            index.meta = {"checkpoint_path": str(folder), "metrics": out_run.metrics}
        finally:
            self._load_lock.release()
        self.set_index(index, index.source, folder)
        say(1.0, "done")
        return folder


STORE = ModelStore()

__all__ = ["CHECKPOINTS_DIR", "Current", "ModelStore", "NoModelError", "STORE"]
