"""A live training run: the pipeline (fit → report → save, pipeline.py) in a background thread, and a
process-wide registry of the runs this process trains.

`TrainingRun` owns one training thread. It hands every event the pipeline logs to a `Recorder`
(recorder.py: the step series, the epoch history, the state and a message for people) and every epoch's
embedding snapshot to a `MapWorker` (map_worker.py: PCA each epoch, UMAP at chosen epochs). A page polls
`view()` (a consistent copy; compare `version` to skip redraws) and never touches the trainer: the only
things it asks of it are pause, resume and stop. Everything is also on disk, in the run's folder (runs.py),
so a reloaded page, a second viewer or a later process sees the same run. Any error (bad config, data that
does not fit, NaN loss, an exception inside training) ends the run as "failed" with a message; it never
kills the process.

`REGISTRY` holds the runs of this process by id (not a browser session's state): every viewer of a page
attaches to the same object. Comparisons of several variants live in compare.py.
Nothing here imports a UI library.
"""
from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Callable

from .config import ACMRConfig
from .data import CrossModalDataset
from .map_worker import MapWorker, default_umap_epochs
from .recorder import ACTIVE, DONE, Recorder, RunView, wall_elapsed
from .runs import RunDir, new_run_id
from .training import EpochEvent, StatusEvent

__all__ = ["ACTIVE", "DONE", "REGISTRY", "RunView", "TrainingRun", "default_umap_epochs"]
_counter = itertools.count(1)


def _join(thread, timeout: float | None) -> bool:
    """Wait for a worker thread (if any) to end; True if it has."""
    if thread is not None:
        thread.join(timeout)
        return not thread.is_alive()
    return True


class TrainingRun:
    """One training run of ACMR on `dataset` with `config`, in a background thread, recorded in a run folder."""

    def __init__(self, dataset: CrossModalDataset | Callable[[], CrossModalDataset], config: ACMRConfig | None = None,
                 *, name: str | None = None, umap_epochs: list[int] | str | None = "auto",
                 umap_options: dict | None = None, dataset_label: str | None = None,
                 on_finish: Callable[["TrainingRun"], None] | None = None, runs_root: str | Path | None = None):
        """`dataset` is a dataset, or a function returning one (called in the training thread, so a slow
        load or a bad data folder never blocks the caller: its error ends the run as 'failed').
        `on_finish(run)` is called in the training thread when training ended with at least one epoch
        (finished or stopped), e.g. to hand the model to a search index even if no page is watching.
        The run's folder is created under `runs_root` (default: runs.runs_root()) when it starts."""
        self.config = (config or ACMRConfig()).validate()
        self._source = dataset
        self.dataset: CrossModalDataset | None = dataset if isinstance(dataset, CrossModalDataset) else None
        self.dataset_label = dataset_label or getattr(dataset, "name", "dataset")
        self.run_id = new_run_id()
        self.name = name or f"run {next(_counter)}"
        self._root = runs_root
        self.dir: RunDir | None = None
        self.recorder = Recorder(self.run_id, self.name, self.config,
                                 self.dataset.name if self.dataset is not None else self.dataset_label)
        if self.dataset is not None:
            self.recorder.class_names = list(self.dataset.class_names)
        if umap_epochs == "auto":
            umap_epochs = default_umap_epochs(self.config.epochs)
        self.maps = MapWorker(self.recorder, umap_epochs, umap_options, name=self.run_id)
        self._lock = threading.RLock()
        self.trainer = None
        self._thread: threading.Thread | None = None
        self._t0: float | None = None
        self._t_end: float | None = None
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._weights: dict | None = None       # the end of the last finished epoch (from its EpochEvent)
        self._train_idx = None
        self._stop_requested = False
        self._on_finish = on_finish
        self.finish_note: str | None = None      # what on_finish did (or why it failed)
        self.result = None
        self.outcome = None

    # --- what the recorder knows ----------------------------------------------------------------------
    state = property(lambda self: self.recorder.state)
    message = property(lambda self: self.recorder.message)
    error = property(lambda self: self.recorder.error)
    umap_epochs = property(lambda self: self.maps.umap_epochs)
    folder = property(lambda self: None if self.dir is None else self.dir.path)

    # --- control ----------------------------------------------------------------------------------
    def start(self) -> "TrainingRun":
        """Create the run folder and train in a daemon thread. Errors end the run as 'failed'."""
        _preimport()
        with self._lock:
            if self.state != "ready":
                raise RuntimeError(f"this run is {self.state}; make a new run to train again")
            self.dir = RunDir.create(self.config.to_dict(), name=self.name, dataset=self.dataset_label,
                                     root=self._root, run_id=self.run_id)
            self.run_id = self.recorder.run_id = self.dir.run_id
            self._t0 = time.perf_counter()
            self._log({"kind": "status", "state": "running", "message": "preparing the model"})
        REGISTRY.add(self)
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
                self.recorder.feed({"kind": "status", "state": "stopped", "message": "stopped before it started"})

    def join(self, timeout: float | None = None) -> bool:
        """Wait for training (not the UMAP worker) to end; True if it has."""
        return _join(self._thread, timeout)

    def wait_maps(self, timeout: float | None = None) -> bool:
        """Wait until every queued UMAP frame is computed; True if none is pending."""
        return self.maps.wait(timeout)

    def request_umap(self, epoch: int) -> bool:
        """Queue a UMAP frame of `epoch` (if its snapshot exists and it is not done or queued)."""
        return self.maps.request(epoch)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def finishing(self) -> bool:
        """Training ended but `on_finish` has not reported yet (a page should keep polling)."""
        return (self._on_finish is not None and self.finish_note is None and self.state in ("finished", "stopped")
                and self.recorder.epoch > 0)

    @property
    def version(self) -> int:
        return self.recorder.version

    # --- the training thread -------------------------------------------------------------------------
    def _log(self, ev: dict) -> None:
        self.dir.append(ev)
        self.recorder.feed(ev)

    def _load(self) -> CrossModalDataset:
        ds = self._source()
        self.dataset = ds
        return ds

    def _on_trainer(self, trainer) -> None:
        self.trainer = trainer
        self._train_idx = trainer.train_idx
        if self._stop_requested:
            trainer.stop()

    def _listen(self, e) -> None:
        """The trainer's own events: the weights of the last epoch, the clock."""
        if isinstance(e, EpochEvent):
            self._weights = e.weights
        elif isinstance(e, StatusEvent):
            now = time.perf_counter()
            with self._lock:
                if e.state == "paused":
                    self._paused_at = now
                elif self._paused_at is not None:
                    self._paused_total += now - self._paused_at
                    self._paused_at = None
                if e.state in DONE:
                    self._t_end = now

    def _run(self) -> None:
        from .pipeline import train_run

        source = self.dataset if self.dataset is not None else self._load
        out = train_run(source, self.config, run=self.dir, dataset_label=self.dataset_label, listeners=(self._listen,),
                        on_trainer=self._on_trainer, on_record=self.recorder.feed, maps=self.maps)
        self.outcome, self.result = out, out.result
        with self._lock:
            if self._t_end is None:
                self._t_end = time.perf_counter()
        if self.maps.umap_epochs:                # with a UMAP plan, the last epoch reached gets its map (even early)
            self.maps.request(self.recorder.epoch)
        if self._on_finish is not None and self.state in ("finished", "stopped") and self.recorder.epoch > 0:
            try:
                self._on_finish(self)
                note = "ok"
            except Exception as e:  # noqa: BLE001 - reported, never raised into the thread
                note = f"failed: {type(e).__name__}: {e}"
            self.finish_note = note
            self.recorder.bump()

    # --- reading ------------------------------------------------------------------------------------
    def view(self) -> RunView:
        with self._lock:
            elapsed = wall_elapsed(self._t0, self._t_end, self._paused_at, self._paused_total)
        v = self.recorder.view(elapsed=elapsed, live=self.state in ACTIVE, umap_pending=list(self.maps.pending),
                               umap_error=self.maps.error)
        if v.state in ACTIVE and v.global_step and v.total_steps:
            v.eta = elapsed / v.global_step * (v.total_steps - v.global_step)
        return v

    def snapshots(self) -> dict[int, dict]:
        return self.maps.snapshots()

    def metrics_csv(self) -> str:
        """The epoch history as CSV (one row per epoch; epoch 0 = before training)."""
        from .export import history_csv

        return history_csv(self.view().history)

    def steps_csv(self) -> str:
        from .export import steps_csv

        return steps_csv(self.view().steps)

    # --- the model ------------------------------------------------------------------------------------
    def model_state(self) -> tuple[dict, str]:
        """(state_dict copy, description): the best epoch once training ended, else the last completed epoch."""
        if self.state in DONE and self.result is not None:
            return ({k: v.detach().cpu().clone() for k, v in self.result.model.state_dict().items()},
                    f"best validation epoch {self.result.best_epoch}" if not self.result.error
                    else "last good state before the failure")
        if self.trainer is None:
            raise RuntimeError("nothing trained yet: press Start first")
        good = self._weights
        if good is None:
            raise RuntimeError("no epoch finished yet; wait for the first epoch")
        return ({k: v.detach().cpu().clone() for k, v in good.items()}, f"end of epoch {self.recorder.epoch}")

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
        """Save a checkpoint into a new, uniquely named folder under `root` (metrics layout of pipeline.py)."""
        from .pipeline import report, save_model, unique_folder

        state, what = self.model_state()
        model = self._build_model(state)      # the same weights `what` describes, copied once
        v = self.view()
        metrics = v.metrics if v.metrics and v.state in DONE else None
        if metrics is None:                   # mid-run: the last finished epoch, measured now
            best = next((r for r in v.history if r["epoch"] == v.best_epoch), None)
            metrics = report(model, self.dataset, self._train_idx, self.config, state=v.state, error=v.error,
                             best_epoch=v.best_epoch, epochs=v.epochs, epochs_run=v.epoch, early_stopped=False,
                             stopped=False, train_seconds=v.elapsed, saved_from=what,
                             validation_best=None if best is None else
                             {"img2txt": best["val_img2txt"], "txt2img": best["val_txt2img"], "avg": best["val_avg"]})
        folder = unique_folder(root, name or f"{self.dataset.name}-{self.run_id}")
        save_model(folder, model, self.config, self.dataset, metrics=metrics, history=v.history, run_id=self.run_id)
        self._log({"kind": "saved", "path": str(folder)})
        return folder


class Registry:
    """The runs this process trains, by id, shared by every page and viewer. Keeps every active run and the
    `keep` most recent others (older ones are read back from their folders)."""

    def __init__(self, keep: int = 8):
        self._lock = threading.Lock()
        self._runs: dict[str, TrainingRun] = {}
        self.keep = keep

    def add(self, run: TrainingRun) -> None:
        with self._lock:
            self._runs[run.run_id] = run
            idle = [r for r in self._runs.values() if r.state not in ACTIVE]
            for r in idle[:-self.keep] if len(idle) > self.keep else []:
                self._runs.pop(r.run_id, None)

    def get(self, run_id: str | None) -> TrainingRun | None:
        with self._lock:
            return self._runs.get(run_id) if run_id else None

    def runs(self) -> list[TrainingRun]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._runs.values()))

    def active(self) -> list[TrainingRun]:
        return [r for r in self.runs() if r.state in ACTIVE]


REGISTRY = Registry()


# --- helpers ----------------------------------------------------------------------------------------------

def _preimport() -> None:
    """Import in the caller's thread what the training thread imports lazily (the modality probe's
    scikit-learn, and pandas under it). Libraries that look a module up in sys.modules (pandas via
    narwhals, for one) can otherwise see it half-initialised while another thread is still importing it."""
    import pandas  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    from . import pipeline  # noqa: F401
