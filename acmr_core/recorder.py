"""What a run recorded, as something to draw: events in, a `RunView` out.

The same `Recorder` serves a live run (fed the trainer's events as they come, see live.py) and a run read
back from its folder (fed the lines of its events.jsonl, see `load_view`), so a page draws both alike.
Events are the plain dicts of runs.py (`record(e)` turns a trainer event into one). Thread-safe.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .config import ACMRConfig, ConfigError
from .training import EpochEvent, StatusEvent, StepEvent

LOSS_KEYS = ("imd", "imi", "reg", "adv", "emb", "total")
STEP_KEYS = ("global_step", "epoch", *LOSS_KEYS, "disc_acc", "grl")
ACTIVE = ("running", "paused")
DONE = ("stopped", "finished", "failed", "interrupted")


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
    elapsed: float              # seconds of training (frozen when training ended)
    eta: float | None           # estimated seconds left
    best_epoch: int
    pca: dict                   # epoch -> maps.MapFrame
    umap: dict                  # epoch -> maps.MapFrame
    umap_pending: list = field(default_factory=list)    # epochs queued for UMAP (live runs only)
    umap_error: str | None = None
    saved: list = field(default_factory=list)           # checkpoint folders saved from this run
    error_type: str | None = None                       # the exception's class name, when it failed on one
    metrics: dict | None = None                         # metrics.json, once written
    live: bool = False                                  # trained by this process right now
    steps_per_epoch: int = 0                            # training.steps_per_epoch of this run (0 = not known yet)

    @property
    def progress(self) -> float:
        return self.global_step / self.total_steps if self.total_steps else 0.0

    @property
    def last(self) -> dict | None:
        return self.history[-1] if self.history else None


def record(e) -> dict:
    """A trainer event (training.StepEvent / EpochEvent / StatusEvent) as the plain dict that is logged."""
    if isinstance(e, StepEvent):
        return {"kind": "step", "global_step": e.global_step, "epoch": e.epoch, "losses": dict(e.losses),
                "disc_acc": float(e.disc_acc), "grl": float(e.grl)}
    if isinstance(e, EpochEvent):
        return {"kind": "epoch", "epoch": e.epoch, "val_img2txt": e.val["img2txt"], "val_txt2img": e.val["txt2img"],
                "val_avg": e.val["avg"], "probe": e.probe, "mixing": getattr(e, "mixing", None), "gap": e.gap,
                "seconds": e.seconds, "elapsed": e.elapsed,
                "best_epoch": e.best_epoch, **{f"loss_{k}": v for k, v in e.losses.items()}, "disc_acc": e.disc_acc}
    if isinstance(e, StatusEvent):
        return {"kind": "status", "state": e.state, "message": e.message}
    raise TypeError(f"not a trainer event: {e!r}")


def _num(x) -> float:
    return float("nan") if x is None else float(x)


class Recorder:
    """The state of one run, built from its events."""

    def __init__(self, run_id: str, name: str, config: ACMRConfig, dataset_name: str = ""):
        self.run_id, self.name, self.config = run_id, name, config
        self._lock = threading.RLock()
        self.version = 0
        self.state, self.message, self.error, self.error_type = "ready", "ready to train", None, None
        self.dataset_name, self.class_names = dataset_name, []
        self.steps: dict[str, list] = {k: [] for k in STEP_KEYS}
        self.history: list[dict] = []
        self.epoch = self.best_epoch = self.global_step = self.total_steps = self.steps_per_epoch = 0
        self.pca: dict = {}
        self.umap: dict = {}
        self.saved: list[str] = []
        self.metrics: dict | None = None
        self.train_elapsed = 0.0           # from the last epoch event (a run read from disk)

    def bump(self) -> None:
        with self._lock:
            self.version += 1

    def feed(self, ev: dict) -> None:
        kind = ev.get("kind")
        with self._lock:
            if kind == "step":
                s = self.steps
                s["global_step"].append(ev["global_step"])
                s["epoch"].append(ev["epoch"])
                losses = ev.get("losses") or {}
                for k in LOSS_KEYS:
                    s[k].append(_num(losses.get(k)))
                s["disc_acc"].append(_num(ev.get("disc_acc")))
                s["grl"].append(_num(ev.get("grl")))
                self.global_step = ev["global_step"]
            elif kind == "epoch":
                row = {k: v for k, v in ev.items() if k not in ("kind", "t")}
                self.history.append(row)
                self.epoch, self.best_epoch = ev["epoch"], ev.get("best_epoch", self.best_epoch)
                self.train_elapsed = float(ev.get("elapsed") or 0.0)
            elif kind == "status":
                self.state, self.message = ev["state"], ev.get("message", "")
                if ev["state"] == "failed":
                    self.error, self.error_type = ev.get("message", ""), ev.get("error_type")
            elif kind == "dataset":
                self.dataset_name = ev.get("name") or self.dataset_name
                self.class_names = list(ev.get("class_names") or [])
                self.total_steps = int(ev.get("total_steps") or 0)
                self.steps_per_epoch = int(ev.get("steps_per_epoch") or 0)
            elif kind == "message":
                self.message = ev.get("message", "")
            elif kind == "saved":
                self.saved.append(ev["path"])
            elif kind == "metrics":
                self.metrics = ev.get("metrics")
            else:
                return
            self.version += 1

    def add_frame(self, frame) -> None:
        with self._lock:
            (self.umap if frame.method == "umap" else self.pca)[frame.epoch] = frame
            self.version += 1

    def view_frames(self, method: str) -> dict:
        with self._lock:
            return dict(self.umap if method == "umap" else self.pca)

    def last_frame(self, method: str):
        with self._lock:
            frames = self.umap if method == "umap" else self.pca
            return frames[max(frames)] if frames else None

    def view(self, *, elapsed: float | None = None, eta: float | None = None, live: bool = False,
             umap_pending: list | None = None, umap_error: str | None = None, version_offset: int = 0) -> RunView:
        with self._lock:
            return RunView(
                run_id=self.run_id, name=self.name, version=self.version + version_offset, state=self.state,
                message=self.message, error=self.error, config=self.config, dataset_name=self.dataset_name,
                class_names=list(self.class_names),
                steps={k: np.asarray(v, dtype=np.float64) for k, v in self.steps.items()},
                history=[dict(r) for r in self.history], epoch=self.epoch, epochs=self.config.epochs,
                global_step=self.global_step, total_steps=self.total_steps,
                elapsed=self.train_elapsed if elapsed is None else elapsed, eta=eta, best_epoch=self.best_epoch,
                pca=dict(self.pca), umap=dict(self.umap), umap_pending=list(umap_pending or []), umap_error=umap_error,
                saved=list(self.saved), error_type=self.error_type, metrics=self.metrics, live=live,
                steps_per_epoch=self.steps_per_epoch)


# --- a run read back from its folder ---------------------------------------------------------------------

def _config_of(cfg: dict) -> ACMRConfig:
    try:
        return ACMRConfig.from_dict(cfg.get("config") or {})
    except (ConfigError, TypeError):     # written by a newer or older version: keep what fits
        known = {k: v for k, v in (cfg.get("config") or {}).items() if k in ACMRConfig.__dataclass_fields__}
        try:
            return ACMRConfig(**known)
        except (ConfigError, TypeError):
            return ACMRConfig()


def load_view(run) -> RunView:
    """The RunView of a run folder (a runs.RunDir), as it is on disk now."""
    from .runs import recorded_state

    cfg = run.config()
    rec = Recorder(run.run_id, cfg.get("name", run.run_id), _config_of(cfg), cfg.get("dataset", ""))
    events = run.events()
    for ev in events:
        rec.feed(ev)
        if ev.get("kind") == "frame":
            try:
                rec.add_frame(run.load_frame(ev["file"]))
            except (OSError, KeyError, ValueError):
                pass              # a frame file that did not make it to disk: the other frames still show
    state, message = recorded_state(run, events)
    if state != rec.state:
        rec.state, rec.message = state, message
    rec.metrics = run.metrics()
    return rec.view()


class StoredRun:
    """A run known only from its folder (finished earlier, trained by another process, or interrupted):
    the reading side of a live.TrainingRun, so a page shows either alike. Re-reads the folder only when its
    event log has grown."""

    dataset = None
    trainer = None
    finish_note = None
    umap_epochs: set = set()

    def __init__(self, run):
        self.dir = run
        self.run_id = run.run_id
        self._key = None
        self._view: RunView | None = None
        self._lock = threading.Lock()

    def view(self) -> RunView:
        try:
            st = (self.dir.path / "events.jsonl").stat()
            key = (st.st_size, st.st_mtime_ns, (self.dir.path / "metrics.json").exists())
        except OSError:
            key = None
        with self._lock:
            stale = self._view is None or key != self._key
            if not stale and self._view.state in ACTIVE:      # unchanged, but its owner may have died since
                stale = not self.dir.owner_alive()
            if stale:
                self._view, self._key = load_view(self.dir), key
            return self._view

    @property
    def name(self) -> str:
        return self.view().name

    @property
    def state(self) -> str:
        return self.view().state

    @property
    def config(self) -> ACMRConfig:
        return self.view().config

    @property
    def active(self) -> bool:
        return False         # nobody here can pause or stop it

    @property
    def finishing(self) -> bool:
        return False

    @property
    def folder(self):
        return self.dir.path

    def snapshots(self) -> dict:
        return {}

    def metrics_csv(self) -> str:
        from .export import history_csv

        return history_csv(self.view().history)

    def steps_csv(self) -> str:
        from .export import steps_csv

        return steps_csv(self.view().steps)


def wall_elapsed(t0: float | None, t_end: float | None, paused_at: float | None, paused_total: float) -> float:
    """Seconds of training between t0 and now (or t_end), without the time spent paused."""
    if t0 is None:
        return 0.0
    end = t_end or paused_at or time.perf_counter()
    return max(0.0, end - t0 - paused_total)
