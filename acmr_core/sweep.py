"""A sweep of the adversary's weight (γ maximum): one short training run per weight, measured on validation.

For each weight (0 = no adversary at all) the same seed, data and settings are trained for a few epochs on
a reduced training split, and the kept model's validation embeddings are measured: retrieval mAP (both
directions, mAP@all), the held-out modality probe (fitted on the training embeddings) and kNN modality
mixing (k = 10). `estimate()` times a few real training steps first, so a page can say what the sweep will
cost before it starts. `Sweep` runs in a daemon thread, can be stopped, and reports progress through
`view()` (a consistent copy) and an optional callback. Every point is trained by the one pipeline
(pipeline.train_run), so each leaves a run folder the dashboard lists. Nothing here imports a UI library.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .config import ACMRConfig
from .data import CrossModalDataset, carve_validation
from .metrics import heldout_modality_probe, knn_mixing, retrieval_scores

WEIGHTS = (0.0, 0.1, 0.3, 1.0, 3.0)
# The quick setting: narrower projectors, fewer epochs and a 3x learning rate (so the short run still
# converges) keep a 5-weight sweep on shapes near a minute on an idle 2-core machine. Measured on shapes,
# seed 0, validation: mAP 0.742 at weight 0 (the full dashboard settings reach ~0.72) and kNN mixing 0.79 /
# 0.45 / 0.11 at weights 0 / 0.3 / 3 with the reversal-layer game, the trend full-size runs show. Without the
# larger learning rate the 5-epoch runs stopped mid-way (mixing 0.54 at weight 0) and told another story.
QUICK = {"epochs": 5, "image_layers": 512, "text_layers": 256, "lr_factor": 3.0}


def quick_config(config: ACMRConfig) -> ACMRConfig:
    """The reduced setting of a quick sweep: at most QUICK's epochs and hidden-layer widths; when that
    shortened the run, the learning rate times QUICK's factor."""
    epochs = min(config.epochs, QUICK["epochs"])
    lr = config.lr * QUICK["lr_factor"] if epochs < config.epochs else config.lr
    return config.replace(epochs=epochs, lr=lr,
                          image_layers=[min(w, QUICK["image_layers"]) for w in config.image_layers],
                          text_layers=[min(w, QUICK["text_layers"]) for w in config.text_layers])


def reduction_text(config: ACMRConfig, reduced: ACMRConfig) -> str:
    """What the reduced setting changed, in words ('' if nothing)."""
    parts = []
    if reduced.epochs != config.epochs:
        parts.append(f"{reduced.epochs} epochs instead of {config.epochs}")
    if reduced.lr != config.lr:
        parts.append(f"learning rate {reduced.lr:.0e} instead of {config.lr:.0e}, so the shorter run still converges")
    if reduced.image_layers != config.image_layers or reduced.text_layers != config.text_layers:
        def show(a):
            return "-".join(map(str, a))
        parts.append(f"projector hidden layers {show(reduced.image_layers)} (image) / {show(reduced.text_layers)} "
                     f"(text) instead of {show(config.image_layers)} / {show(config.text_layers)}")
    return "; ".join(parts)


def reduced_dataset(ds: CrossModalDataset, config: ACMRConfig, train_pairs: int | None) -> CrossModalDataset:
    """A shallow copy whose validation split is the one a full run would carve (same seed and fraction),
    and whose training split keeps at most `train_pairs` pairs (a seeded random subset; the rest is unused)."""
    own = copy.copy(ds)
    split = carve_validation(ds.split, ds.labels, config.val_fraction, config.seed).astype("<U8")
    train = np.flatnonzero(split == "train")
    if train_pairs and len(train) > train_pairs:
        keep = np.random.default_rng([config.seed, 7]).choice(train, size=train_pairs, replace=False)
        split[np.setdiff1d(train, keep)] = "unused"
    own.split = split
    return own


def run_config(config: ACMRConfig, weight: float, epochs: int | None = None, game: str | None = None) -> ACMRConfig:
    """The config of one sweep point: weight 0 switches the adversary off; maps and per-epoch probes off."""
    changes = dict(epochs=int(epochs or config.epochs), patience=0, snapshot_size=0, probe_every=0,
                   use_adversarial=weight > 0, grl_max=float(weight) if weight > 0 else config.grl_max)
    if game is not None and hasattr(config, "game"):
        changes["game"] = game
    return config.replace(**changes)


def measure(model, ds: CrossModalDataset, split: np.ndarray | None = None) -> dict:
    """Validation mAP, held-out probe (fitted on the training embeddings) and kNN mixing of a model.
    `split` is the trainer's own split (with its carved validation part); default: the dataset's."""
    split = ds.split if split is None else split
    tr, va = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    img_v, txt_v = model.embed(ds.image_features[va], "image"), model.embed(ds.text_features[va], "text")
    img_t, txt_t = model.embed(ds.image_features[tr], "image"), model.embed(ds.text_features[tr], "text")
    return {"map": retrieval_scores(img_v, txt_v, ds.labels[va])["avg"],
            "probe": heldout_modality_probe(img_t, txt_t, img_v, txt_v),
            "mixing": knn_mixing(img_v, txt_v, k=10)}


def plan(weights=WEIGHTS, games: list | None = None) -> list[tuple[str | None, float]]:
    """(game, weight) pairs to train: weight 0 (no adversary) once, then every other weight for each game."""
    games = list(games) if games else [None]
    out: list[tuple[str | None, float]] = []
    if any(w <= 0 for w in weights):
        out.append((None, 0.0))
    out += [(g, float(w)) for g in games for w in weights if w > 0]
    return out


def estimate(ds: CrossModalDataset, config: ACMRConfig, weights=WEIGHTS, games: list | None = None,
             epochs: int | None = None, train_pairs: int | None = None, steps: int = 3) -> dict:
    """Time `steps` real training steps and one evaluation here, and scale them to the whole sweep.

    Returns seconds per step / per evaluation / per epoch / per run and in total, and the numbers of runs,
    epochs and steps per epoch they assume."""
    from .training import Trainer

    epochs = int(epochs or config.epochs)
    small = reduced_dataset(ds, config, train_pairs)
    cfg = run_config(config, max([w for w in weights if w > 0] or [0.0]), epochs, (games or [None])[0])
    t0 = time.perf_counter()
    tr = Trainer(small, cfg)
    setup = time.perf_counter() - t0
    n, bs = len(tr.train_idx), cfg.batch_size
    per_epoch_steps = max(1, n // bs) if n >= bs else 1
    idx = np.arange(min(bs, n))
    v, t, y = tr.v[idx], tr.t[idx], tr.y[idx]
    tr.train_step(v, t, y, 0.1, 0)                      # warm-up (first-call overheads)
    t0 = time.perf_counter()
    for s in range(steps):
        tr.train_step(v, t, y, 0.1, s + 1)
    step = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()                            # what the trainer does after each epoch, roughly
    va = np.flatnonzero(tr.split == "val")
    img, txt = tr.model.embed(small.image_features[va], "image"), tr.model.embed(small.text_features[va], "text")
    retrieval_scores(img, txt, small.labels[va])
    knn_mixing(img, txt)
    evaluation = time.perf_counter() - t0
    t0 = time.perf_counter()
    measure(tr.model, small, tr.split)
    final = time.perf_counter() - t0
    runs = len(plan(weights, games))
    per_epoch = step * per_epoch_steps + evaluation
    per_run = setup + evaluation + epochs * per_epoch + final
    return {"step": step, "evaluation": evaluation, "per_epoch": per_epoch, "per_run": per_run,
            "total": runs * per_run, "runs": runs, "epochs": int(epochs), "steps_per_epoch": per_epoch_steps,
            "train_pairs": n, "val_pairs": len(tr.val_idx)}


@dataclass
class SweepView:
    state: str                  # ready, running, finished, stopped, failed
    message: str
    error: str | None
    points: list                # one dict per finished run: game, weight, map, probe, mixing, disc_acc, seconds
    plan: list                  # (game, weight) of every run
    current: int                # index of the run in progress (or done so far)
    epoch: int                  # epoch of the run in progress
    epochs: int
    elapsed: float
    estimate: dict | None
    train_pairs: int | None
    games: list = field(default_factory=list)

    @property
    def progress(self) -> float:
        total = len(self.plan) * max(1, self.epochs)
        return min(1.0, (len(self.points) * self.epochs + (self.epoch if self.state == "running" else 0)) / max(1, total))


class Sweep:
    """Train one short run per adversary weight (and game), one after the other, in a daemon thread."""

    def __init__(self, dataset: CrossModalDataset | Callable[[], CrossModalDataset], config: ACMRConfig | None = None,
                 weights=WEIGHTS, games: list | None = None, epochs: int | None = None,
                 train_pairs: int | None = None, estimate: dict | None = None,
                 on_progress: Callable[[SweepView], None] | None = None, root=None, dataset_label: str = ""):
        """Every sweep point is a run of the one pipeline (pipeline.train_run): a run folder under `root`
        (default: runs.runs_root()), named "sweep: weight w", that the dashboard lists like any other run."""
        self.config = (config or ACMRConfig()).validate()
        self._source = dataset
        self.weights = tuple(float(w) for w in weights)
        if not self.weights or any(w < 0 for w in self.weights):
            raise ValueError("the sweep needs weights >= 0")
        self.games = list(games) if games else []
        self.root, self.dataset_label = root, dataset_label
        self.epochs, self.train_pairs = int(epochs or self.config.epochs), train_pairs
        self.plan = plan(self.weights, self.games or None)
        self.estimate = estimate
        self._on_progress = on_progress
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trainer = None
        self.state, self.message, self.error = "ready", "ready to sweep", None
        self._points: list[dict] = []
        self._current, self._epoch = 0, 0
        self._t0: float | None = None
        self._t_end: float | None = None

    # --- control ---------------------------------------------------------------------------------------------
    def start(self) -> "Sweep":
        with self._lock:
            if self.state != "ready":
                raise RuntimeError(f"this sweep is {self.state}; make a new one")
            self.state, self.message, self._t0 = "running", "preparing", time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True, name="acmr-sweep")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        tr = self._trainer
        if tr is not None:
            tr.stop()
        with self._lock:
            if self.state == "ready":
                self.state, self.message = "stopped", "stopped before it started"

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def active(self) -> bool:
        return self.state == "running"

    # --- the worker ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        from .live import _preimport
        from .pipeline import train_run

        try:
            _preimport()
            ds = self._source if isinstance(self._source, CrossModalDataset) else self._source()
            small = reduced_dataset(ds, self.config, self.train_pairs)
            for i, (game, weight) in enumerate(self.plan):
                if self._stop.is_set():
                    break
                with self._lock:
                    self._current, self._epoch = i, 0
                    self.message = f"training weight {weight:g}" + (f" ({game})" if game else "")
                self._emit()
                cfg = run_config(self.config, weight, self.epochs, game)
                accs: list[tuple[int, float]] = []
                held: dict = {}
                t_run = time.perf_counter()
                out = train_run(copy.copy(small), cfg, root=self.root, dataset_label=self.dataset_label or ds.name,
                                name=f"sweep: weight {weight:g}" + (f" ({game})" if game else ""),
                                listeners=(lambda e, a=accs: self._on_event(e, a),),
                                on_trainer=lambda tr, h=held: self._attach(tr, h))
                self._trainer = None
                if out.state == "failed":
                    raise RuntimeError(out.message)
                if self._stop.is_set() or out.result is None:
                    break
                m = measure(out.result.model, out.dataset, held["trainer"].split)
                last = [a for e, a in accs if e == max(e for e, _ in accs)] if accs else []
                point = {"game": game, "weight": weight, **m,
                         "disc_acc": float(np.mean(last)) if last else None,
                         "seconds": time.perf_counter() - t_run, "run_id": out.run.run_id}
                with self._lock:
                    self._points.append(point)
                self._emit()
            with self._lock:
                done = len(self._points) == len(self.plan)
                self.state = "finished" if done else "stopped"
                self.message = (f"finished {len(self._points)} runs" if done
                                else f"stopped after {len(self._points)} of {len(self.plan)} runs")
        except Exception as e:  # noqa: BLE001 - the page shows it; the process stays up
            with self._lock:
                self.state, self.error = "failed", f"{type(e).__name__}: {e}"
                self.message = self.error
        finally:
            with self._lock:
                self._t_end = time.perf_counter()
            self._emit()

    def _attach(self, trainer, held: dict) -> None:
        """The pipeline built this run's trainer: keep it, so that stop() reaches it."""
        held["trainer"] = self._trainer = trainer
        if self._stop.is_set():
            trainer.stop()

    def _on_event(self, e, accs: list) -> None:
        kind = getattr(e, "kind", None)
        if kind == "step" and np.isfinite(e.disc_acc):
            accs.append((e.epoch, float(e.disc_acc)))
        elif kind == "epoch":
            with self._lock:
                self._epoch = e.epoch
            self._emit()

    def _emit(self) -> None:
        if self._on_progress is not None:
            try:
                self._on_progress(self.view())
            except Exception:  # noqa: BLE001 - a listener's bug never stops the sweep
                pass

    # --- reading --------------------------------------------------------------------------------------------
    def view(self) -> SweepView:
        with self._lock:
            end = self._t_end or time.perf_counter()
            return SweepView(self.state, self.message, self.error, [dict(p) for p in self._points], list(self.plan),
                             self._current, self._epoch, self.epochs,
                             0.0 if self._t0 is None else end - self._t0, self.estimate, self.train_pairs,
                             list(self.games))


# --- words for the numbers ------------------------------------------------------------------------------

def curve(points: list[dict], game: str | None = None) -> list[dict]:
    """One game's points, weight 0 (no adversary, shared by every game) first, sorted by weight."""
    return sorted((p for p in points if p["weight"] == 0 or p["game"] == game), key=lambda p: p["weight"])


def summary(points: list[dict], game: str | None = None, label: str = "the adversary") -> str:
    """One sentence: how mixing, probe and mAP moved from weight 0 to the largest weight, and where
    mixing was highest. '' until at least two weights are measured."""
    c = curve(points, game)
    if len(c) < 2:
        return ""
    a, b = c[0], c[-1]
    best = max(c, key=lambda p: p["mixing"])

    def move(key, fmt=".2f"):
        return f"{a[key]:{fmt}} → {b[key]:{fmt}}"

    text = (f"Raising the weight of {label} from {a['weight']:g} to {b['weight']:g}: mixing {move('mixing')}, "
            f"probe {move('probe')}, mAP {move('map', '.3f')}.")
    if best is a:
        text += " Mixing was highest with no adversary at all: on these numbers the adversary never mixed the modalities more."
    elif best is not b:
        text += f" Mixing was highest at weight {best['weight']:g} ({best['mixing']:.2f})."
    return text
