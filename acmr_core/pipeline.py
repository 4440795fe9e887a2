"""One way to train: fit → report → save, into a run folder (runs.py). The CLI's `train`, the dashboard's live
run (live.py), the Search tab's "train a default model" (app/model_store.py) and the benchmarks all call
`train_run`, so every run leaves the same folder and every checkpoint carries the same metrics layout:

    {"dataset", "protocol", "state", "error", "best_epoch", "epochs", "epochs_run", "early_stopped", "stopped",
     "train_seconds", "validation_best": {img2txt, txt2img, avg}, "saved_from", "config",
     "test": {"map_all": {img2txt, txt2img, avg}, "map_at_50": {...},
              "modality_probe": held-out linear probe (fitted on training-split embeddings, scored on test),
              "knn_mixing": kNN modality mixing of the test embeddings, "pairs": test pairs}}

Test numbers are computed once, after training, on the model that is kept (the best validation epoch);
the test split never chooses anything.
"""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .config import ACMRConfig
from .data import CrossModalDataset
from .recorder import record
from .runs import RunDir

PROTOCOL = "cosine similarity; test items of one modality query all test items of the other; relevant = same label"
TERMINAL = ("finished", "stopped", "failed")
PROBE_FIT_MAX = 2000            # training pairs the held-out modality probe is fitted on (a seeded sample)


# --- report ---------------------------------------------------------------------------------------------

def test_metrics(model, dataset: CrossModalDataset, train_idx: np.ndarray, seed: int = 0) -> dict | None:
    """Retrieval and modality invariance of `model` on the test split (None if the data has no test split)."""
    from .metrics import heldout_modality_probe, knn_mixing, retrieval_scores

    idx = dataset.indices("test")
    if not len(idx):
        return None
    img = model.embed(dataset.image_features[idx], "image")
    txt = model.embed(dataset.text_features[idx], "text")
    y = dataset.labels[idx]
    fit = np.asarray(train_idx)
    if len(fit) > PROBE_FIT_MAX:
        fit = np.sort(np.random.default_rng(seed).choice(fit, PROBE_FIT_MAX, replace=False))
    probe = None
    if len(fit) >= 2:
        probe = heldout_modality_probe(model.embed(dataset.image_features[fit], "image"),
                                       model.embed(dataset.text_features[fit], "text"), img, txt, seed=seed)
    return {"map_all": retrieval_scores(img, txt, y), "map_at_50": retrieval_scores(img, txt, y, k=50),
            "modality_probe": probe, "knn_mixing": knn_mixing(img, txt), "pairs": int(len(idx))}


def report(model, dataset: CrossModalDataset, train_idx, config: ACMRConfig, **facts) -> dict:
    """The metrics layout: what training did (`facts`) and the kept model's test numbers."""
    return {"dataset": dataset.info.get("dataset", dataset.name), "protocol": PROTOCOL, **facts,
            "config": config.to_dict(), "test": test_metrics(model, dataset, train_idx, config.seed)}


def facts_of(result, state: str, epochs: int) -> dict:
    """What a training.TrainResult says about the run, in the metrics layout."""
    return {"state": state, "error": result.error, "best_epoch": result.best_epoch, "epochs": epochs,
            "epochs_run": result.epochs_run, "early_stopped": result.early_stopped, "stopped": result.stopped,
            "train_seconds": result.train_seconds, "validation_best": result.best_val or None,
            "saved_from": (f"best validation epoch {result.best_epoch}" if not result.error
                           else "last good state before the failure")}


# --- save -----------------------------------------------------------------------------------------------

def save_model(folder: str | Path, model, config: ACMRConfig, dataset: CrossModalDataset, *, metrics: dict,
               history: list, run_id: str | None = None) -> Path:
    """A checkpoint (checkpoints.save_checkpoint) with the metrics layout, and metrics.json beside it."""
    from .checkpoints import save_checkpoint

    folder = Path(folder)
    save_checkpoint(folder, model, config, dataset.class_names, dataset_info=dataset.info, encoders=dataset.encoders,
                    extra={"metrics": metrics, "history": history, "run_id": run_id,
                           "saved_from": metrics.get("saved_from")})
    from .runs import dumps

    (folder / "metrics.json").write_text(json.dumps(json.loads(dumps(metrics)), indent=2))
    return folder


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


# --- fit → report → save ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    run: RunDir
    state: str                      # finished, stopped, failed
    message: str
    result: object = None           # training.TrainResult (None if training never started)
    dataset: CrossModalDataset | None = None
    metrics: dict | None = None
    checkpoint: Path | None = None  # the run's checkpoint folder (None if no epoch finished)
    train_idx: np.ndarray | None = None
    error_type: str | None = None


def train_run(dataset: CrossModalDataset | Callable[[], CrossModalDataset], config: ACMRConfig | None = None, *,
              run: RunDir | None = None, root: str | Path | None = None, name: str = "", dataset_label: str = "",
              listeners: tuple = (), on_trainer: Callable | None = None, on_record: Callable[[dict], None] | None = None,
              maps=None) -> Outcome:
    """Train `config` on `dataset` (or on what a loader function returns) into a run folder, and return how it
    ended. Never raises for a bad config, bad data or a failure inside training: the outcome says `failed`.

    listeners: called with every trainer event (training.StepEvent / EpochEvent / StatusEvent).
    on_trainer(trainer): called once the trainer exists (to pause or stop it from another thread).
    on_record(event_dict): called with every event as it is logged (the live view is built from these).
    maps: a map_worker.MapWorker (a live run's, with its UMAP plan); default: PCA frames only. Either way every
    epoch's frame is saved into the run folder."""
    config = (config or ACMRConfig()).validate()
    label = dataset_label or getattr(dataset, "name", "dataset")
    run = run or RunDir.create(config.to_dict(), name=name, dataset=label, root=root)
    held: list[dict] = []
    if maps is None:
        from .map_worker import MapWorker
        from .recorder import Recorder

        maps = MapWorker(Recorder(run.run_id, name, config), [], name=run.run_id)
    maps.save = lambda f: run.append({"kind": "frame", "method": f.method, "epoch": f.epoch, "file": run.save_frame(f)})

    def log(ev: dict) -> None:
        run.append(ev)
        if on_record is not None:
            on_record(ev)

    out = Outcome(run, "failed", "")
    try:
        from .training import Trainer

        if not isinstance(dataset, CrossModalDataset):
            log({"kind": "message", "message": f"loading {label} (the first time can take a while)"})
            dataset = dataset()
        out.dataset = dataset
        log({"kind": "message", "message": "building the model"})
        trainer = Trainer(dataset, config)
        out.train_idx = trainer.train_idx
        log({"kind": "dataset", "name": dataset.name, "class_names": list(dataset.class_names), "info": dataset.info,
             "total_steps": trainer.total_steps, "steps_per_epoch": trainer.steps_per_epoch,
             "pairs": {"train": len(trainer.train_idx), "val": len(trainer.val_idx),
                       "test": int((dataset.split == "test").sum())}})

        def listen(e) -> None:
            ev = record(e)
            if ev["kind"] == "status" and ev["state"] in TERMINAL:
                held.append(ev)             # logged once the metrics and the checkpoint are saved
            else:
                log(ev)
            if ev["kind"] == "epoch":
                maps.on_epoch(e.epoch, e.snapshot)

        trainer.add_listener(listen)
        for fn in listeners:
            trainer.add_listener(fn)
        if on_trainer is not None:
            on_trainer(trainer)
        result = trainer.run()
        out.result = result
        final = held[-1] if held else {"kind": "status", "state": "stopped", "message": "training ended"}
        if result.epochs_run >= 1:
            log({"kind": "message", "message": "measuring the kept model on the test split"})
            with trainer.pinned_threads():                  # the threads the training ran on
                metrics = report(result.model, dataset, trainer.train_idx, config,
                                 **facts_of(result, final["state"], config.epochs))
            out.checkpoint = save_model(run.checkpoint_dir, result.model, config, dataset, metrics=metrics,
                                        history=result.history, run_id=run.run_id)
            run.write_metrics(metrics)
            out.metrics = metrics
            if on_record is not None:
                on_record({"kind": "metrics", "metrics": metrics})
        if final["state"] == "failed":
            final = {**final, "error_type": "TrainingDiverged"}
        log(final)
        out.state, out.message, out.error_type = final["state"], final.get("message", ""), final.get("error_type")
    except Exception as e:  # noqa: BLE001 - a bad setting, bad data, out of memory: the run says so, and ends
        out.state, out.message, out.error_type = "failed", str(e), type(e).__name__
        try:
            log({"kind": "status", "state": "failed", "message": str(e), "error_type": type(e).__name__})
        except Exception:  # noqa: BLE001 - the disk itself failed: the outcome still says why
            pass
    finally:
        run.close()
    return out


# --- warm-up ----------------------------------------------------------------------------------------------

def warm_up(seed: int = 0) -> float:
    """Pay, once per process, what its first run pays on top of the training itself: lazy imports (scikit-learn
    for the held-out probe, the map snapshots), torch's first operations and the optimisers' first steps. One
    epoch of a tiny model on random data, in memory: no run folder, nothing saved. Returns the seconds it took.

    A page calls it at start-up in a background thread, so its first Start is as fast as its second: the
    dashboard's demo run took 12.4 s cold and 7.9 s after this (2-core machine; bench/bench_app.py)."""
    import time

    from .training import Trainer

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n, classes = 120, 4
    y = np.arange(n) % classes
    ds = CrossModalDataset("warm-up", rng.normal(size=(n, 16)).astype(np.float32) + y[:, None],
                           rng.normal(size=(n, 8)).astype(np.float32) - y[:, None], y.astype(np.int64),
                           [f"c{i}" for i in range(classes)], np.where(np.arange(n) % 5 == 0, "test", "train"))
    cfg = ACMRConfig(epochs=1, batch_size=32, image_layers=[16], text_layers=[16], common_dim=8, disc_layers=[8],
                     probe_every=1, snapshot_size=20, seed=seed)
    trainer = Trainer(ds, cfg)
    result = trainer.run()
    if result.model is not None:
        test_metrics(result.model, ds, trainer.train_idx, seed)
    return time.perf_counter() - t0
