"""2-D maps of the common space (acmr_core.maps) and the live run (acmr_core.live, recorder.py, map_worker.py)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from acmr_core import maps
from acmr_core.config import ACMRConfig
from acmr_core.dataset_cache import DatasetCache
from acmr_core.export import history_csv
from acmr_core.live import TrainingRun, default_umap_epochs
from acmr_core.pipeline import unique_folder


def snapshot(s=60, m=16, gap=3.0, seed=0, classes=3):
    """Image and text embeddings: class structure plus a modality offset of size `gap`."""
    rng = np.random.default_rng(seed)
    y = np.arange(s) % classes
    centres = rng.normal(size=(classes, m)) * 3
    img = centres[y] + rng.normal(size=(s, m)) * 0.5
    txt = centres[y] + rng.normal(size=(s, m)) * 0.5
    txt[:, 0] += gap
    return {"image": img.astype(np.float32), "text": txt.astype(np.float32), "labels": y, "index": np.arange(s) + 100}


def rot(theta):
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


# --- PCA and alignment -------------------------------------------------------------------------------------

def test_stack_puts_images_first_and_repeats_labels():
    snap = snapshot(10)
    x, y, mod, idx = maps.stack(snap)
    assert x.shape == (20, 16)
    assert list(mod[:10]) == ["image"] * 10 and list(mod[10:]) == ["text"] * 10
    assert (y[:10] == y[10:]).all() and (idx[:10] == idx[10:]).all() and idx[0] == 100
    with pytest.raises(ValueError):
        maps.stack({"image": np.zeros((3, 4)), "text": np.zeros((2, 4)), "labels": np.zeros(3)})


def test_pca_finds_the_direction_of_largest_spread():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 5)) * np.array([10, 3, 1, 1, 1])
    mean, comps = maps.pca_fit(x)
    assert abs(abs(comps[0, 0]) - 1) < 0.02 and abs(abs(comps[1, 1]) - 1) < 0.05
    proj = maps.pca_project(x, mean, comps)
    assert proj[:, 0].std() > proj[:, 1].std() * 2


def test_pca_separates_modalities_when_the_gap_is_the_largest_variance():
    frame = maps.pca_frame(snapshot(gap=12.0), epoch=3)
    assert frame.method == "pca" and frame.epoch == 3 and frame.coords.shape == (120, 2)
    img, txt = frame.coords[:60], frame.coords[60:]
    assert np.linalg.norm(img.mean(0) - txt.mean(0)) > 1.0       # normalised frame: RMS radius 1
    small = maps.pca_frame(snapshot(gap=0.0))
    assert np.linalg.norm(small.coords[:60].mean(0) - small.coords[60:].mean(0)) < 0.5


def test_procrustes_undoes_rotation_reflection_and_shift():
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(50, 2))
    moved = (ref @ rot(1.1)) * np.array([1, -1]) + np.array([5.0, -3.0])
    back = maps.procrustes_align(moved, ref)
    assert np.allclose(back, ref, atol=1e-5)
    with pytest.raises(ValueError):
        maps.procrustes_align(ref[:10], ref)


def test_successive_pca_frames_do_not_jump():
    snap = snapshot(seed=3)
    first = maps.pca_frame(snap)
    # the same data with a sign flip of every embedding dimension: PCA axes may flip, alignment undoes it
    flipped = {**snap, "image": -snap["image"], "text": -snap["text"]}
    second = maps.pca_frame(flipped, 1, previous=first.coords)
    assert np.abs(second.coords - first.coords).max() < 1e-4


def test_frames_are_normalised_to_the_same_extent():
    a = maps.pca_frame(snapshot(seed=4))
    big = snapshot(seed=4)
    big = {**big, "image": big["image"] * 50, "text": big["text"] * 50}
    b = maps.pca_frame(big)
    for f in (a, b):
        r = np.sqrt(((f.coords - f.coords.mean(0)) ** 2).sum(1).mean())
        assert abs(r - 1) < 1e-4
    assert np.allclose(a.coords, b.coords, atol=1e-4)


def test_global_pca_keeps_relative_spread_between_frames():
    s0 = snapshot(seed=5)
    s1 = {**s0, "image": s0["image"] * 0.2, "text": s0["text"] * 0.2}
    frames = maps.pca_frames({0: s0, 1: s1})
    spread = {e: np.sqrt(((f.coords - f.coords.mean(0)) ** 2).sum(1).mean()) for e, f in frames.items()}
    assert spread[1] < spread[0] * 0.3


# --- UMAP ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_umap_frame_shows_modality_gap_and_is_aligned_to_previous():
    snap = snapshot(s=80, gap=10.0, seed=6)
    snap["image"][:, 1] += 10.0          # each modality offset along its own direction: clear in cosine terms
    f0 = maps.umap_frame(snap, 0, n_epochs=100, seed=0)
    assert f0.method == "umap" and f0.coords.shape == (160, 2) and np.isfinite(f0.coords).all()
    img, txt = f0.coords[:80], f0.coords[80:]
    # with a big modality gap, the two clouds are apart compared with their own spread
    assert np.linalg.norm(img.mean(0) - txt.mean(0)) > 0.5 * (img.std() + txt.std())
    # the next frame, initialised from the previous one, stays close to it (no jump)
    snap1 = {**snap, "image": snap["image"] + 0.01, "text": snap["text"] + 0.01}
    f1 = maps.umap_frame(snap1, 1, previous=f0.coords, n_epochs=60, seed=0)
    moved = np.linalg.norm(f1.coords - f0.coords, axis=1).mean()
    assert moved < 0.6, moved


def test_umap_compiled_code_is_kept_in_numba_disk_cache():
    """umap-learn's numba functions are cached on disk (maps._umap), so a later process skips the compilation."""
    import os

    umap = maps._umap()
    layout = umap.layouts._nb_optimize_layout_euclidean_single_epoch    # the per-epoch layout step every fit runs
    assert type(layout._cache).__name__ == "FunctionCache"
    maps.umap_frame(snapshot(s=30, seed=3), 0, n_epochs=10, seed=0)
    assert os.path.exists(layout._cache._cache_file._index_path)          # its machine code was written (or found)
    assert maps.enable_numba_cache() == 0                                   # once per process: nothing left to switch on


@pytest.mark.slow
def test_warm_up_command_leaves_the_maps_umap_code_in_numba_disk_cache(capsys, tmp_path, monkeypatch):
    """`python -m acmr_core warm-up` (scripts/setup.sh runs it once after an install): the functions every map fit
    runs are compiled and their machine code is on disk, so no later process compiles them (61 s in a fresh
    environment on the 2-core machine); and the dataset the app starts with is built into the dataset cache, so
    the app's first start reads it (22 s to build here for the real one; a small one in this test)."""
    import os
    import re

    from acmr_core import __main__ as cli
    from acmr_core.data import load_dataset
    from acmr_core.datasets import shapes

    small = {"n_pairs": 40, "image_size": 32}
    monkeypatch.setattr(cli, "WARM_UP_DATASET", ("shapes", small))
    monkeypatch.setenv("ACMR_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["warm-up", "--quiet"]) == 0
    said = capsys.readouterr().out
    assert int(re.search(r"(\d+) functions in numba's disk cache", said).group(1)) >= 10, said
    assert "the built-in shapes dataset: 40 pairs ready" in said, said

    def no_generation(*a, **k):
        raise AssertionError("the dataset was generated again instead of read from the cache")

    monkeypatch.setattr(shapes, "generate", no_generation)
    assert load_dataset("shapes", progress=False, **small).n == 40         # read back from the cache
    umap = maps._umap()
    for fn in (umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths, umap.layouts.rdist,
               umap.layouts._nb_optimize_layout_euclidean_single_epoch_parallel):
        assert fn.signatures and os.path.exists(fn._cache._cache_file._index_path), fn


@pytest.mark.slow
@pytest.mark.slow
def test_warm_up_reports_ready():
    maps.warm_up()
    assert maps.wait_warm(180)
    st = maps.warm_status()
    assert st["state"] == "ready", st
    assert maps.warm_up() is None  # once per process


# --- the live recorder -----------------------------------------------------------------------------------

def small_config(**kw):
    base = dict(epochs=3, image_layers=[32], text_layers=[16], common_dim=8, disc_layers=[8], batch_size=32,
                snapshot_size=40, probe_every=1)
    base.update(kw)
    return ACMRConfig(**base)


def test_default_umap_epochs():
    assert default_umap_epochs(20) == [0, 4, 8, 12, 16, 20]
    assert default_umap_epochs(3)[0] == 0 and default_umap_epochs(3)[-1] == 3
    assert default_umap_epochs(0) == [0]


@pytest.mark.slow
def test_training_run_records_steps_epochs_and_maps(synthetic, tmp_path):
    run = TrainingRun(synthetic, small_config(), umap_epochs=[3])
    assert run.view().state == "ready"
    run.start()
    assert run.join(120)
    v = run.view()
    assert v.state == "finished", v.message
    assert [r["epoch"] for r in v.history] == [0, 1, 2, 3]
    assert len(v.steps["global_step"]) == v.total_steps > 0
    assert set(v.steps) >= {"imd", "imi", "reg", "adv", "total", "disc_acc", "grl"}
    assert sorted(v.pca) == [0, 1, 2, 3]
    assert v.pca[3].coords.shape == (2 * min(40, len(run.trainer.val_idx)), 2)
    assert run.wait_maps(120)
    v = run.view()
    assert sorted(v.umap) == [3] and v.umap_error is None     # the last epoch always gets a UMAP frame
    assert v.eta is None and v.elapsed > 0
    csv_text = run.metrics_csv()
    assert csv_text.splitlines()[0].startswith("epoch,val_img2txt") and len(csv_text.splitlines()) == 5
    assert run.steps_csv().count("\n") == v.total_steps + 1
    # the run's dataset split is its own: the caller's dataset is untouched
    assert not (synthetic.split == "val").any()
    folder = run.save(tmp_path)
    assert (folder / "acmr.safetensors").is_file() and folder.parent == tmp_path
    again = run.save(tmp_path)
    assert again != folder                                     # never overwrites
    from acmr_core.checkpoints import load_checkpoint
    ck = load_checkpoint(folder)
    assert ck.meta["history"][-1]["epoch"] == 3 and ck.meta["run_id"] == run.run_id


def _until(pred, timeout=60.0):
    t_end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < t_end, "timed out"
        time.sleep(0.02)


def test_training_run_pause_resume_stop(synthetic):
    """Pause, resume and stop, checked on what the run recorded: no step between 'paused' and 'running'."""
    run = TrainingRun(synthetic, small_config(epochs=200), umap_epochs=[]).start()
    _until(lambda: run.view().epoch >= 1)
    run.pause()
    _until(lambda: run.state == "paused")
    run.resume()
    _until(lambda: run.state == "running" and run.view().global_step > 0)
    s1 = run.view().global_step
    _until(lambda: run.view().global_step > s1)
    run.stop()
    assert run.join(60)
    v = run.view()
    assert v.state == "stopped" and v.global_step < v.total_steps
    kinds = [(e["kind"], e.get("state")) for e in run.dir.events() if e["kind"] in ("step", "status")]
    i = kinds.index(("status", "paused"))
    assert kinds[i + 1] == ("status", "running")              # nothing moved while paused
    assert kinds[-1] == ("status", "stopped") and ("step", None) in kinds[i + 2:]
    state, what = run.model_state()
    assert state and what == f"best validation epoch {run.result.best_epoch}"


def test_training_run_failure_is_a_message_not_a_crash(synthetic):
    def bad_loader():
        from acmr_core.data import DataError
        raise DataError("/nowhere: no such folder (dataset 'folder')")

    run = TrainingRun(bad_loader, small_config(), dataset_label="folder").start()
    assert run.join(30)
    v = run.view()
    assert v.state == "failed" and "no such folder" in v.error and v.error_type == "DataError"
    from app.wording import failure
    assert failure(v.error_type, v.error).startswith("data problem: /nowhere")
    assert run.dir.summary().status == "failed"
    with pytest.raises(RuntimeError):
        run.model_state()


def test_training_run_nan_loss_fails_cleanly(synthetic):
    run = TrainingRun(synthetic, small_config(lr=1e6, max_loss=1e-6, epochs=2), umap_epochs=[]).start()
    assert run.join(60)
    v = run.view()
    assert v.state == "failed" and v.error and "loss" in v.error


def test_dataset_cache_loads_once_and_does_not_cache_failures(tmp_path):
    calls = []
    cache = DatasetCache()
    from acmr_core import data

    def fake(**kw):
        calls.append(kw)
        if kw.get("fail"):
            raise data.DataError("broken")
        return "DS"

    data.DATASETS["_fake_for_test"] = fake
    try:
        assert cache.get("_fake_for_test", a=1) == "DS" and cache.get("_fake_for_test", a=1) == "DS"
        assert len(calls) == 1 and cache.peek("_fake_for_test", a=1) == "DS" and cache.peek("_fake_for_test", a=2) is None
        for _ in range(2):
            with pytest.raises(data.DataError):
                cache.get("_fake_for_test", fail=True)
        assert len(calls) == 3
    finally:
        data.DATASETS.pop("_fake_for_test", None)


def test_unique_folder_and_history_csv(tmp_path):
    a = unique_folder(tmp_path, "run one/../x")
    b = unique_folder(tmp_path, "run one/../x")
    assert a != b and a.parent == tmp_path and b.parent == tmp_path
    text = history_csv([{"epoch": 0, "probe": None, "gap": 0.5}, {"epoch": 1, "probe": 0.7, "gap": float("nan"), "x": 2}])
    assert text.splitlines() == ["epoch,probe,gap,x", "0,,0.5,", "1,0.7,,2"]


@pytest.mark.slow
def test_a_run_that_stops_early_still_gets_a_final_map(synthetic):
    # validation never improves (learning rate below float32 resolution), so patience ends the run at epoch 2
    cfg = small_config(epochs=10, patience=2, lr=1e-12, lr_disc=1e-12)
    run = TrainingRun(synthetic, cfg, umap_epochs=[10]).start()      # planned at 10, never reached
    assert run.join(120)
    assert run.wait_maps(120)
    v = run.view()
    assert v.state == "finished" and "stopped early" in v.message
    assert [r["epoch"] for r in v.history] == [0, 1, 2]
    assert sorted(v.umap) == [2] and v.umap_error is None     # the last epoch reached has its UMAP frame
