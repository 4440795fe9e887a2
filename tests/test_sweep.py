"""The adversary-weight sweep: its core on synthetic data (real training, real measures), and the one-click
sweep in the dashboard's Compare tab, driven with AppTest (each at.run() is one poll)."""
from __future__ import annotations

import json
import time

import numpy as np
import plotly.graph_objects as go
import pytest

from acmr_core import sweep
from acmr_core.config import ACMRConfig
from acmr_core.data import DataError, carve_validation
from tests.conftest import make_synthetic


def tiny(**kw) -> ACMRConfig:
    base = dict(epochs=2, image_layers=[16], text_layers=[16], common_dim=8, disc_layers=[8], batch_size=32,
                patience=0, threads=1)
    return ACMRConfig(**{**base, **kw})


def test_plan_trains_no_adversary_once_then_each_weight_per_game():
    assert sweep.plan((0, 0.1, 1)) == [(None, 0.0), (None, 0.1), (None, 1.0)]
    assert sweep.plan((0, 0.1, 1), ["critic", "paper"]) == [(None, 0.0), ("critic", 0.1), ("critic", 1.0),
                                                            ("paper", 0.1), ("paper", 1.0)]
    assert sweep.plan((0.3,)) == [(None, 0.3)]


def test_run_config_weight_zero_is_the_no_adversary_ablation():
    cfg = tiny(grl_max=0.3, epochs=9)
    zero, three = sweep.run_config(cfg, 0.0, 4), sweep.run_config(cfg, 3.0)
    assert not zero.use_adversarial and zero.epochs == 4 and zero.probe_every == 0 and zero.snapshot_size == 0
    assert three.use_adversarial and three.grl_max == 3.0 and three.epochs == 9 and three.patience == 0


def test_reduced_dataset_keeps_the_validation_split_and_caps_training():
    ds = make_synthetic(n=400)
    cfg = tiny()
    small = sweep.reduced_dataset(ds, cfg, train_pairs=100)
    full_val = carve_validation(ds.split, ds.labels, cfg.val_fraction, cfg.seed) == "val"
    assert np.array_equal(small.split == "val", full_val)                     # the dashboard's validation pairs
    assert (small.split == "train").sum() == 100 and (small.split == "test").sum() == (ds.split == "test").sum()
    assert not (ds.split == "val").any()                                       # the shared dataset is untouched
    assert (sweep.reduced_dataset(ds, cfg, None).split == "train").sum() == (~full_val & (ds.split == "train")).sum()


def test_quick_config_says_what_it_reduced():
    cfg = ACMRConfig(epochs=10)
    q = sweep.quick_config(cfg)
    assert q.epochs == 5 and q.image_layers == [512] and q.text_layers == [256] and q.lr == pytest.approx(3 * cfg.lr)
    text = sweep.reduction_text(cfg, q)
    assert "5 epochs instead of 10" in text and "512 (image) / 256 (text) instead of 2000 / 500" in text
    assert "learning rate 3e-04 instead of 1e-04" in text
    small = tiny(epochs=3)
    assert sweep.quick_config(small) == small and sweep.reduction_text(small, small) == ""


def test_sweep_measures_every_weight_on_synthetic_data():
    seen = []
    s = sweep.Sweep(make_synthetic(n=300), tiny(epochs=3, lr=3e-3), weights=(0, 0.3, 3), on_progress=seen.append).start()
    assert s.join(180)
    v = s.view()
    assert v.state == "finished", v.message
    assert [p["weight"] for p in v.points] == [0.0, 0.3, 3.0]
    for p in v.points:
        assert 0 < p["map"] <= 1 and 0 <= p["probe"] <= 1 and 0 <= p["mixing"] <= 2 and p["seconds"] > 0
    assert v.points[0]["disc_acc"] is None                                # weight 0: no D at all
    assert all(0 <= p["disc_acc"] <= 1 for p in v.points[1:])
    # the weight reaches the projectors: a strong adversary trains a different space than none
    assert (v.points[2]["mixing"], v.points[2]["probe"]) != (v.points[0]["mixing"], v.points[0]["probe"])
    counts = [len(x.points) for x in seen]
    assert counts == sorted(counts) and counts[-1] == 3 and seen[-1].state == "finished"
    assert any(x.state == "running" and x.epoch > 0 for x in seen)        # progress within a run, too
    assert v.progress == 1.0
    # each point was trained by the one pipeline: a finished run folder, listed like any other run
    from acmr_core.runs import find_run, list_runs

    listed = {r.run_id: r for r in list_runs()}
    for p in v.points:
        run = find_run(p["run_id"])
        assert run is not None and listed[p["run_id"]].status == "finished"
        assert json.loads((run.path / "metrics.json").read_text())["config"]["use_adversarial"] == (p["weight"] > 0)


def test_sweep_stops_between_and_within_runs():
    s = sweep.Sweep(make_synthetic(n=300), tiny(epochs=400), weights=(0, 1)).start()
    t_end = time.monotonic() + 60
    while s.view().epoch < 1 and time.monotonic() < t_end:
        time.sleep(0.05)
    s.stop()
    assert s.join(60)
    v = s.view()
    assert v.state == "stopped" and len(v.points) < 2 and "stopped" in v.message


def test_sweep_failure_is_a_message_not_a_crash():
    def broken():
        raise DataError("no such folder: /nowhere")

    s = sweep.Sweep(broken, tiny()).start()
    assert s.join(30)
    v = s.view()
    assert v.state == "failed" and "no such folder" in v.error and v.points == []


def test_estimate_times_real_steps_and_scales_them():
    est = sweep.estimate(make_synthetic(n=300), tiny(epochs=4), weights=(0, 0.3, 1))
    assert est["runs"] == 3 and est["epochs"] == 4 and est["step"] > 0 and est["evaluation"] > 0
    assert est["steps_per_epoch"] == est["train_pairs"] // 32
    assert est["per_epoch"] == pytest.approx(est["step"] * est["steps_per_epoch"] + est["evaluation"])
    assert est["total"] == pytest.approx(3 * est["per_run"]) and est["per_run"] > 4 * est["per_epoch"]


def test_summary_words_follow_the_numbers():
    def pt(w, mix, probe, m=0.7, game=None):
        return {"weight": w, "game": game, "mixing": mix, "probe": probe, "map": m, "disc_acc": None}

    falling = [pt(0, 0.80, 0.66), pt(0.3, 0.55, 0.62), pt(3, 0.30, 0.64, 0.6)]
    text = sweep.summary(falling)
    assert "mixing 0.80 → 0.30" in text and "probe 0.66 → 0.64" in text and "mAP 0.700 → 0.600" in text
    assert "highest with no adversary" in text
    rising = [pt(0, 0.80, 0.66), pt(1, 0.90, 0.58, game="critic"), pt(3, 0.85, 0.57, game="critic"),
              pt(3, 0.1, 0.9, game="paper")]
    text = sweep.summary(rising, "critic")
    assert "mixing 0.80 → 0.85" in text and "highest at weight 1 (0.90)" in text and "never" not in text
    assert "0.10" not in text                                                   # another game's point stays out
    assert sweep.summary([pt(0, 0.8, 0.6)]) == ""


# --- the sweep in the dashboard ------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("ACMR_CHECKPOINTS_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ACMR_PREFETCH", "0")
    monkeypatch.setenv("ACMR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.slow
def test_sweep_from_the_compare_tab(tmp_path):
    from tests.test_dashboard import open_tab, page, texts

    ds = make_synthetic(n=300, classes=4, seed=3)
    tr, te = ds.split == "train", ds.split == "test"
    path = tmp_path / "tiny.npz"
    np.savez(path, image_train=ds.image_features[tr], text_train=ds.text_features[tr], label_train=ds.labels[tr],
             image_test=ds.image_features[te], text_test=ds.text_features[te], label_test=ds.labels[te],
             class_names=np.array(["ant", "bee", "cat", "dog"]))
    at = page(path, epochs=2)
    open_tab(at, "Compare")

    def poll(pred, what, timeout=180):
        t_end = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < t_end, f"timed out waiting for {what}: {texts(at)[-800:]}"
            time.sleep(0.2)
            at.run()
            assert not at.exception, at.exception

    poll(lambda: "Estimated cost: about" in texts(at), "the cost estimate")     # said before it starts
    assert not at.button(key="btn_sweep").disabled and at.button(key="btn_sweep_stop").disabled
    at.button(key="btn_sweep").click().run()
    sw = at.session_state["sweep"]
    assert sw.estimate is not None and sw.estimate["runs"] == len(sweep.WEIGHTS)
    poll(lambda: sw.state != "running" and sw.view().state != "running", "the sweep")
    at.run()
    assert sw.state == "finished", sw.view().message
    v = sw.view()
    assert len(v.points) == len(sweep.WEIGHTS)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    by_title = {s["layout"]["title"]["text"]: s for s in specs}
    for title, key in (("kNN mixing (1 = mixed)", "mixing"), ("Validation mAP (avg)", "map")):
        fig = by_title[title]
        go.Figure(fig)                                                          # valid plotly
        line = [t for t in fig["data"] if t.get("mode") == "lines+markers"][0]
        assert line["x"][0] == "0 (none)" and len(line["x"]) == len(sweep.WEIGHTS)
        assert np.allclose(line["y"], [p[key] for p in sweep.curve(v.points, v.points[-1]["game"])])
    words = texts(at)
    a, b = v.points[0], v.points[-1]
    assert f"mixing {a['mixing']:.2f} → {b['mixing']:.2f}" in words                # the words follow the numbers
    bars = [getattr(p.proto, "text", "") for p in at.get("progress")]
    assert any("took" in b and "estimated" in b for b in bars), bars                # the cost, measured against the estimate
    assert not at.button(key="btn_sweep").disabled and not at.button(key="btn_start").disabled
