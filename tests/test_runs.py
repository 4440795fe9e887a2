"""Runs on disk (acmr_core.runs), the recorder fed events (acmr_core.recorder) and the one pipeline
(acmr_core.pipeline): what a run folder holds, how it is read back, and a killed process's run shown as
interrupted with every epoch it recorded."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_synthetic

from acmr_core import runs
from acmr_core.config import ACMRConfig
from acmr_core.recorder import Recorder, StoredRun, load_view, record
from acmr_core.training import LOSS_NAMES, EpochEvent, StatusEvent, StepEvent

SMALL = dict(epochs=3, image_layers=[16], text_layers=[16], common_dim=8, disc_layers=[8], batch_size=32,
             snapshot_size=20)


def test_run_folder_writes_and_reads_back_its_events(tmp_path):
    r = runs.RunDir.create({"epochs": 2}, name="a", dataset="synthetic", root=tmp_path)
    r.append({"kind": "status", "state": "running", "message": "go"})
    r.append({"kind": "epoch", "epoch": 0, "val_avg": float("nan")})
    ev = runs.RunDir(r.path).events()
    assert [e["kind"] for e in ev] == ["owner", "status", "epoch"]
    assert ev[0]["pid"] == os.getpid() and ev[2]["val_avg"] is None          # NaN is written as null: valid JSON
    assert runs.RunDir(r.path).owner_alive()        # another reader, same process: the lock is held
    assert runs.RunDir(r.path).summary().status == "running"
    r.close()
    assert not runs.RunDir(r.path).owner_alive()
    assert runs.RunDir(r.path).summary().status == "interrupted"             # open, and nobody holds its lock
    r.append({"kind": "status", "state": "finished"})                         # a late note after close still lands
    assert runs.RunDir(r.path).summary().status == "finished"
    with open(r.path / runs.EVENTS, "ab") as f:       # a torn last line (a process killed mid-write) is skipped
        f.write(b'{"kind": "epoch", "ep')
    assert len(runs.RunDir(r.path).events()) == 4


def test_find_run_accepts_only_run_ids(tmp_path):
    r = runs.RunDir.create({}, root=tmp_path)
    assert runs.find_run(r.run_id, tmp_path).path == r.path
    for bad in ("", "..", "../x", f"{r.run_id}/..", "nope"):
        assert runs.find_run(bad, tmp_path) is None
    r.close()


KILLED = textwrap.dedent("""
    import os, signal, sys
    from acmr_core import runs
    r = runs.RunDir.create({"epochs": 50}, name="doomed", dataset="synthetic", root=sys.argv[1], run_id=sys.argv[2])
    r.append({"kind": "status", "state": "running", "message": "training started"})
    for e in range(4):
        r.append({"kind": "epoch", "epoch": e, "val_avg": 0.1 * e})
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.slow          # two fresh Python processes (the quick loop checks the same rule in-process above)
def test_a_killed_process_leaves_an_interrupted_run_with_its_epochs(tmp_path):
    older = runs.RunDir.create({"epochs": 1}, dataset="synthetic", root=tmp_path, run_id="20000101-000000-aaaaaa")
    older.append({"kind": "status", "state": "finished"})
    older.close()
    p = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path), "29990101-000000-bbbbbb"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr
    out = subprocess.run([sys.executable, "-m", "acmr_core", "runs", "--dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["29990101-000000-bbbbbb interrupted 3/50 synthetic",   # newest first
                                       "20000101-000000-aaaaaa finished 0/1 synthetic"]
    v = load_view(runs.find_run("29990101-000000-bbbbbb", tmp_path))
    assert v.state == "interrupted" and [r["epoch"] for r in v.history] == [0, 1, 2, 3]
    assert "ended without finishing" in v.message


@pytest.mark.slow          # fresh Python processes
def test_runs_command_loads_no_torch_and_stops_quietly_at_a_closed_pipe(tmp_path):
    for i in range(3):
        r = runs.RunDir.create({"epochs": 1}, dataset="synthetic", root=tmp_path, run_id=f"2000010{i + 1}-000000-aaaaaa")
        r.append({"kind": "status", "state": "finished"})
        r.close()
    # listing runs reads JSON only: importing torch (through the checkpoint module) took 2.6 s of its 3 s
    probe = ("import sys; from acmr_core.__main__ import main; rc = main(['runs', '--dir', sys.argv[1]]); "
             "print('torch loaded' if 'torch' in sys.modules else 'no torch'); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "no torch" and len(out.stdout.splitlines()) == 4
    # `runs | head -1`: the reader goes away before the listing is written (here: before it starts)
    p = subprocess.Popen([sys.executable, "-m", "acmr_core", "runs", "--dir", str(tmp_path)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(60) == 0 and err == "", err


def test_recorder_fed_events_builds_the_view():
    cfg = ACMRConfig(epochs=2)
    rec = Recorder("r1", "run", cfg)
    v0 = rec.version
    rec.feed({"kind": "dataset", "name": "toy", "class_names": ["a", "b"], "total_steps": 4})
    rec.feed(record(StatusEvent("running", "training started")))
    rec.feed(record(EpochEvent(0, 2, {"img2txt": 0.1, "txt2img": 0.2, "avg": 0.15}, 0.9, 1.0, 0.1, 0.1, 0)))
    for g in (1, 2):
        rec.feed(record(StepEvent(1, g, g, 4, {"imd": 1.0, "imi": 2.0, "reg": 0.1, "adv": 0.7, "emb": 3.0,
                                               "total": 3.7}, 0.5 + g / 10, 0.1 * g)))
    rec.feed(record(EpochEvent(1, 2, {"img2txt": 0.3, "txt2img": 0.4, "avg": 0.35}, 0.7, 0.5, 0.1, 0.2, 1,
                               losses={"total": 3.7}, disc_acc=0.65)))
    rec.feed(record(StatusEvent("paused", "training paused")))
    v = rec.view()
    assert v.version > v0 and v.state == "paused" and v.dataset_name == "toy" and v.class_names == ["a", "b"]
    assert v.steps["global_step"].tolist() == [1, 2] and v.steps["disc_acc"].tolist() == [0.6, 0.7]
    assert v.global_step == 2 and v.total_steps == 4 and v.progress == 0.5
    assert [r["epoch"] for r in v.history] == [0, 1] and v.best_epoch == 1 and v.epoch == 1
    assert v.history[1]["loss_total"] == 3.7 and v.history[1]["disc_acc"] == 0.65
    rec.feed(record(StatusEvent("failed", "the loss exploded")))
    assert rec.view().error == "the loss exploded"
    rec.feed({"kind": "nonsense"})          # unknown kinds (a newer writer) change nothing
    assert rec.view().version == rec.version


def test_grl_chart_shows_the_planned_schedule_and_changes_once_an_epoch():
    """The γ chart draws the whole planned schedule from the start and the used γ up to the last finished epoch, so
    polls inside one epoch send the same figure (the browser redraws a chart only when its figure changes)."""
    from acmr_core.model import grl_weight
    from app import charts

    cfg = ACMRConfig(epochs=2)
    rec = Recorder("r1", "run", cfg)
    rec.feed({"kind": "dataset", "name": "toy", "class_names": ["a", "b"], "total_steps": 8, "steps_per_epoch": 4})
    rec.feed(record(StatusEvent("running", "training started")))
    rec.feed(record(EpochEvent(0, 2, {"img2txt": 0.1, "txt2img": 0.2, "avg": 0.15}, 0.9, 1.0, 0.1, 0.1, 0)))

    def step(g):
        gamma = grl_weight((g - 1) / 7, cfg.grl_schedule, cfg.grl_max)
        rec.feed(record(StepEvent(1 + (g - 1) // 4, (g - 1) % 4 + 1, g, 8, dict.fromkeys(LOSS_NAMES, 1.0), 0.6, gamma)))

    for g in range(1, 6):                       # epoch 1 (steps 1-4) and one step of epoch 2 ...
        step(g)
        if g == 4:
            rec.feed(record(EpochEvent(1, 2, {"img2txt": 0.3, "txt2img": 0.4, "avg": 0.35}, 0.7, 0.5, 0.1, 0.2, 1)))
    fig = charts.grl_figure(rec.view())
    planned, used = fig.data
    assert len(planned.x) == 8 and planned.y[-1] == pytest.approx(grl_weight(1.0, cfg.grl_schedule, cfg.grl_max))
    assert list(used.x) == [0.25, 0.5, 0.75, 1.0]           # the step of the unfinished epoch is not drawn yet
    step(6)
    assert charts.grl_figure(rec.view()).to_json() == fig.to_json()
    rec.feed(record(StatusEvent("stopped", "stopped")))          # a run that ended shows every step it made
    assert len(charts.grl_figure(rec.view()).data[1].x) == 6
    charts.warm_up()              # the app's start-up pass over every chart builder (it swallows errors: call it here)


def test_pipeline_writes_one_folder_with_the_metrics_layout(tmp_path):
    ds = make_synthetic()
    split = ds.split.copy()
    from acmr_core.pipeline import train_run

    seen = []
    out = train_run(ds, ACMRConfig(**SMALL), root=tmp_path, name="p", dataset_label="synthetic",
                    listeners=(seen.append,))
    assert out.state == "finished" and (ds.split == split).all()             # the caller's dataset is untouched
    folder = out.run.path
    assert {p.name for p in folder.iterdir()} >= {"config.json", "events.jsonl", "metrics.json", "checkpoint", "frames"}
    m = json.loads((folder / "metrics.json").read_text())
    t = m["test"]
    assert set(t) == {"map_all", "map_at_50", "modality_probe", "knn_mixing", "pairs"}
    for proto in ("map_all", "map_at_50"):
        assert set(t[proto]) == {"img2txt", "txt2img", "avg"} and 0 <= t[proto]["avg"] <= 1
    assert 0 <= t["modality_probe"] <= 1 and 0 <= t["knn_mixing"] <= 2 and t["pairs"] == int((split == "test").sum())
    assert m["epochs_run"] == 3 and m["best_epoch"] == out.result.best_epoch and m["state"] == "finished"
    from acmr_core.checkpoints import load_checkpoint

    ck = load_checkpoint(folder / "checkpoint")
    assert ck.meta["metrics"]["test"]["map_all"] == t["map_all"] and ck.meta["run_id"] == out.run.run_id
    # the held-out probe is fitted on training embeddings and scored on test ones, on the model that was kept
    from acmr_core.metrics import heldout_modality_probe

    tr, te = out.train_idx, ds.indices("test")
    mdl = ck.model
    want = heldout_modality_probe(mdl.embed(ds.image_features[tr], "image"), mdl.embed(ds.text_features[tr], "text"),
                                  mdl.embed(ds.image_features[te], "image"), mdl.embed(ds.text_features[te], "text"))
    assert t["modality_probe"] == pytest.approx(want)
    ev = out.run.events()
    assert ev[-1]["kind"] == "status" and ev[-1]["state"] == "finished"       # last: after metrics and checkpoint
    assert sum(e["kind"] == "step" for e in ev) == out.result.epochs_run * ev[[e["kind"] for e in ev].index("dataset")][
        "steps_per_epoch"]
    assert any(isinstance(e, StepEvent) for e in seen)
    # the frames are plain arrays
    f = sorted((folder / "frames").glob("*.npz"))
    assert [p.name for p in f] == ["pca-0000.npz", "pca-0001.npz", "pca-0002.npz", "pca-0003.npz"]
    with np.load(f[-1], allow_pickle=False) as z:
        assert z["coords"].shape[1] == 2


def test_a_bad_loader_ends_the_run_failed_with_the_reason(tmp_path):
    from acmr_core.data import DataError
    from acmr_core.pipeline import train_run

    def loader():
        raise DataError("/nowhere: no such folder")

    out = train_run(loader, ACMRConfig(**SMALL), root=tmp_path, dataset_label="folder")
    assert out.state == "failed" and out.error_type == "DataError" and "no such folder" in out.message
    s = out.run.summary()
    assert s.status == "failed" and s.epochs_done == 0 and s.dataset == "folder"


def test_a_stored_run_reads_the_same_as_the_live_one(tmp_path, synthetic):
    from acmr_core.live import TrainingRun

    run = TrainingRun(synthetic, ACMRConfig(**SMALL), umap_epochs=[], runs_root=tmp_path).start()
    assert run.join(120)
    live = run.view()
    disk = StoredRun(runs.find_run(run.run_id, tmp_path)).view()
    assert disk.state == live.state == "finished" and disk.run_id == live.run_id and not disk.live
    assert disk.history == live.history and disk.class_names == live.class_names
    for k in live.steps:
        np.testing.assert_array_equal(disk.steps[k], live.steps[k])
    assert sorted(disk.pca) == sorted(live.pca)
    np.testing.assert_allclose(disk.pca[3].coords, live.pca[3].coords)
    assert disk.metrics["test"] == live.metrics["test"]


def test_warm_up_trains_in_memory_and_leaves_no_run(tmp_path, monkeypatch):
    import sys

    from acmr_core.pipeline import warm_up

    monkeypatch.setenv("ACMR_RUNS_DIR", str(tmp_path / "runs"))
    seconds = warm_up()
    assert seconds > 0
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    assert "sklearn.linear_model" in sys.modules          # the held-out probe's import is paid here, not by a Start


@pytest.fixture(scope="module")
def run_of_a_module_fixture():
    """A run trained by a module-scoped fixture, with no folder named: such fixtures start before any per-test
    setting (the autouse `_runs_dir` of conftest.py), so they see only what the session set."""
    from acmr_core.pipeline import train_run

    return train_run(make_synthetic(60), ACMRConfig(**{**SMALL, "epochs": 1}), dataset_label="synthetic")


def test_runs_that_tests_train_never_land_in_the_projects_runs_folder(run_of_a_module_fixture):
    folder = run_of_a_module_fixture.run.path.resolve()
    assert run_of_a_module_fixture.state == "finished"
    assert not folder.is_relative_to((ROOT / "runs").resolve()), folder      # the dashboard would list it
    assert folder.is_relative_to(Path(os.environ["ACMR_TEST_SESSION_RUNS"]).resolve())     # the session's folder
