"""The dashboard's page logic, driven with streamlit.testing.v1.AppTest (no browser).

AppTest does not fire `run_every`: each `at.run()` is one poll of the page. Training runs in its real
background thread; the tests poll until it reaches the state they wait for. A small features file (built
from the synthetic fixture) and a tiny network keep each test to seconds.
"""
from __future__ import annotations

import threading
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from acmr_core.config import ACMRConfig
from app.dashboard_defaults import DEMO_PATIENCE
from tests.conftest import make_synthetic

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app" / "page.py")
TABS_LABELS = None


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("ACMR_CHECKPOINTS_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ACMR_PREFETCH", "0")          # do not build the default shapes dataset in tests
    monkeypatch.setenv("ACMR_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def features_file(tmp_path) -> Path:
    ds = make_synthetic(n=360, classes=4, seed=3)
    tr, te = ds.split == "train", ds.split == "test"
    path = tmp_path / "tiny.npz"
    np.savez(path, image_train=ds.image_features[tr], text_train=ds.text_features[tr], label_train=ds.labels[tr],
             image_test=ds.image_features[te], text_test=ds.text_features[te], label_test=ds.labels[te],
             class_names=np.array(["ant", "bee", "cat", "dog"]))
    return path


SMALL = {"epochs": 3, "image_layers": "32", "text_layers": "16", "common_dim": 8, "disc_layers": "8",
         "batch_size": 32, "snapshot_size": 30}


def page(features: Path | None = None, **cfg) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    if features is not None:
        at.selectbox(key="ds_kind").select("features").run()
        at.text_input(key="ds_dir_features").input(str(features)).run()
    for k, v in {**SMALL, **cfg}.items():
        at.session_state[f"cfg_{k}"] = v
    at.run()
    assert not at.exception, at.exception
    return at


def run_obj(at):
    """The run the page shows (the page keeps only its id; the run itself lives in the process-wide registry)."""
    from acmr_core.live import REGISTRY

    return REGISTRY.get(at.session_state["run_id"]) if "run_id" in at.session_state else None


@pytest.fixture(autouse=True)
def _stop_runs_afterwards():
    """A run a test leaves training would be attached to by the next test's fresh page: stop it."""
    yield
    from acmr_core.live import REGISTRY

    for r in REGISTRY.active():
        r.stop()
        r.join(30)


def wait(at: AppTest, pred, timeout: float = 90, what: str = "") -> AppTest:
    t_end = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if pred(at):
            at.run()          # the state may have changed after that poll: one more poll shows it
            assert not at.exception, at.exception
            return at
        if time.monotonic() > t_end:
            run = run_obj(at)
            raise AssertionError(f"timed out waiting for {what}; run state: {run and run.view().state} "
                                 f"{run and run.view().message}")
        time.sleep(0.2)


def state(at) -> str:
    run = run_obj(at)
    return "none" if run is None else run.state


def texts(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "success", "info"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def live_charts(at) -> dict[str, dict]:
    """The charts drawn by app/live_chart.py (they update in place in the browser): element key -> the figure and
    config its script hands to Plotly.react."""
    import json

    return {e.proto.id.split("-", 2)[-1]: json.loads(json.loads(e.proto.json)) for e in at.get("bidi_component")
            if e.proto.component_name == "acmr_live_chart"}


def open_tab(at, label_part: str) -> None:
    from app.dashboard_defaults import TABS

    at.session_state["main_tab"] = next(t for t in TABS if label_part in t)
    at.run()


# --- tests --------------------------------------------------------------------------------------------------

def test_page_offers_every_hyperparameter_with_its_default_and_a_tooltip():
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.selectbox(key="ds_kind").value == "shapes"
    from app.dashboard_defaults import DEMO
    paper = DEMO                      # the dashboard starts from the demo preset (acmr_core/presets.py)
    for f in fields(ACMRConfig):
        w = None
        for kind in ("number_input", "text_input", "selectbox", "toggle"):
            try:
                w = getattr(at, kind)(key=f"cfg_{f.name}")
                break
            except KeyError:
                continue
        assert w is not None, f"no widget for {f.name}"
        assert w.help and ACMRConfig.help(f.name)[:30] in w.help and "Default:" in w.help, f.name
        if f.name == "patience":
            assert w.value == DEMO_PATIENCE == 0     # a demo runs every epoch it was asked for
        elif f.name != "epochs":
            d = getattr(paper, f.name)
            shown = w.value
            if isinstance(d, list):
                assert shown == ", ".join(map(str, d))
            else:
                assert shown == d, (f.name, shown, d)
    assert not at.button(key="btn_start").disabled
    assert at.button(key="btn_pause").disabled and at.button(key="btn_stop").disabled


@pytest.mark.slow
def test_start_trains_live_then_finishes_and_unlocks(features_file):
    at = page(features_file, epochs=60)
    at.button(key="btn_start").click().run()
    run = run_obj(at)
    assert run is not None and run.state in ("running", "paused", "finished")
    wait(at, lambda a: run.view().global_step > 0, what="the first step")
    # while it runs: settings and Start are locked, Pause and Stop are not
    assert at.button(key="btn_start").disabled and not at.button(key="btn_stop").disabled
    assert at.number_input(key="cfg_lr").disabled and at.selectbox(key="ds_kind").disabled
    steps_seen = run.view().global_step
    wait(at, lambda a: run.view().global_step > steps_seen + 5, what="more steps")
    charts = live_charts(at)                                  # the live charts, by their element keys
    assert set(charts) == {"fig_losses", "fig_disc", "fig_map", "fig_probe", "fig_mixing", "fig_gap", "fig_grl"}
    assert charts["fig_losses"]["layout"]["title"]["text"].startswith("Losses during training")
    assert max(len(arr(t["x"])) for t in charts["fig_losses"]["data"]) > 0   # points drawn while it trains
    assert charts["fig_losses"]["config"]["displaylogo"] is False
    run.stop()
    wait(at, lambda a: state(a) == "stopped", what="stopped")
    assert not at.button(key="btn_start").disabled and not at.number_input(key="cfg_lr").disabled
    label = next(o for o in at.selectbox(key="run_pick").options if run.run_id in o)
    assert f"{run.run_id} · stopped · " in label, label    # the picker too, not the "running" it listed a moment ago


@pytest.mark.slow
def test_finished_run_shows_metrics_and_hands_the_model_to_search(features_file):
    at = page(features_file)
    at.button(key="btn_start").click().run()
    wait(at, lambda a: state(a) == "finished", what="finished")
    at.run()
    v = run_obj(at).view()
    assert [r["epoch"] for r in v.history] == [0, 1, 2, 3]
    cards = {m.label: m.value for m in at.metric}
    assert cards["mAP avg (val)"] == f"{v.history[-1]['val_avg']:.3f}"
    assert cards["Modality probe"] != "–"
    from app.model_store import STORE
    cur = STORE.get()
    assert run_obj(at).finish_note == "ok"
    assert cur is not None and v.name in cur.source and "trained in the dashboard" in cur.source
    assert "the Search tab now uses this model" in texts(at)


@pytest.mark.slow
def test_pause_resume_stop_reset(features_file):
    at = page(features_file, epochs=500)
    at.button(key="btn_start").click().run()
    run = run_obj(at)
    wait(at, lambda a: run.view().global_step > 0, what="the first step")
    at.button(key="btn_pause").click().run()
    wait(at, lambda a: state(a) == "paused", what="paused")
    assert at.button(key="btn_pause").label == "Resume"
    s1 = run.view().global_step
    time.sleep(0.5)
    at.run()
    assert run.view().global_step == s1
    at.button(key="btn_pause").click().run()
    wait(at, lambda a: run.view().global_step > s1, what="resumed steps")
    assert at.button(key="btn_pause").label == "Pause"
    assert at.button(key="btn_reset").disabled                # Reset is locked while training
    with pytest.raises(Exception, match="disabled"):
        at.button(key="btn_reset").click()
    assert run_obj(at) is run
    at.button(key="btn_stop").click().run()
    wait(at, lambda a: state(a) == "stopped", what="stopped")
    assert "stopped" in run.view().message
    at.button(key="btn_reset").click().run()
    assert run_obj(at) is None
    assert not at.button(key="btn_start").disabled and at.button(key="btn_reset").disabled


@pytest.mark.slow
def test_save_and_load_checkpoint(features_file, tmp_path):
    at = page(features_file, epochs=2)
    at.button(key="btn_start").click().run()
    wait(at, lambda a: state(a) == "finished", what="finished")
    open_tab(at, "Checkpoints")
    at.button(key="btn_save").click().run()
    saved = list((tmp_path / "checkpoints").glob("*/acmr.safetensors"))
    assert len(saved) == 1, saved
    assert "Saved checkpoint" in texts(at)
    at.button(key="btn_save").click().run()                   # a second save never overwrites the first
    assert len(list((tmp_path / "checkpoints").glob("*/acmr.safetensors"))) == 2
    # downloads exist
    labels = [d.proto.label for d in at.get("download_button")]
    assert labels == ["Metrics per epoch (CSV)", "Losses per step (CSV)", "All charts (interactive HTML, works offline)",
                      "Current checkpoint (zip)", "Embeddings (.npz)", "Embedding Projector (TSV zip)"], labels
    # load the first one back
    at.selectbox(key="ckpt_pick").select(str(saved[0].parent)).run()
    at.button(key="btn_load").click().run()
    wait(at, lambda a: a.session_state["task"].done, what="the checkpoint to load")
    at.run()
    assert "Loaded" in texts(at) and "Search now uses it" in texts(at), texts(at)
    from app.model_store import STORE
    assert Path(STORE.get().checkpoint).resolve() == saved[0].parent.resolve()


@pytest.mark.slow
def test_bad_data_folder_shows_a_clear_message_and_the_app_stays_usable(tmp_path):
    at = page(None)
    at.selectbox(key="ds_kind").select("wikipedia").run()
    at.text_input(key="ds_dir_wikipedia").input(str(tmp_path / "not-there")).run()
    at.button(key="btn_start").click().run()
    wait(at, lambda a: state(a) == "failed", what="the failure")
    err = " ".join(e.value for e in at.error)
    assert "Training failed" in err and "not-there" in err and "no such folder" in err
    assert not at.button(key="btn_start").disabled             # usable: fix and start again


@pytest.mark.slow
def test_nan_loss_is_reported_and_rolled_back(features_file):
    at = page(features_file, lr=1e6, max_loss=1e-6)
    at.button(key="btn_start").click().run()
    wait(at, lambda a: state(a) == "failed", what="the divergence")
    err = " ".join(e.value for e in at.error)
    assert "loss" in err and "lower learning rate" in err


def test_invalid_setting_blocks_start_with_the_field_named(features_file):
    at = page(features_file, image_layers="2000, lots")
    assert at.button(key="btn_start").disabled
    assert any("image_layers" in e.value for e in at.error)
    at.session_state["cfg_image_layers"] = "64"
    at.session_state["cfg_dropout"] = 0.5
    at.run()
    assert not at.button(key="btn_start").disabled


@pytest.mark.slow
def test_checkpoint_that_does_not_fit_is_refused_with_a_message(features_file, tmp_path):
    at = page(features_file, epochs=1)
    at.button(key="btn_start").click().run()
    wait(at, lambda a: state(a) == "finished", what="finished")
    folder = run_obj(at).save(tmp_path / "checkpoints")
    # corrupt the weights: one tensor of the wrong shape, same metadata
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    wp = folder / "acmr.safetensors"
    with safe_open(str(wp), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(wp))
    key = next(k for k in tensors if k.endswith("weight"))
    tensors[key] = tensors[key][:, :1].contiguous()
    save_file(tensors, str(wp), metadata=meta)
    open_tab(at, "Checkpoints")
    at.selectbox(key="ckpt_pick").select(str(folder)).run()
    at.button(key="btn_load").click().run()
    wait(at, lambda a: a.session_state["task"].done, what="the load attempt")
    at.run()
    err = " ".join(e.value for e in at.error)
    assert "Could not load the checkpoint" in err and "do not fit" in err, err


@pytest.mark.slow
def test_two_sessions_train_independently(features_file, tmp_path):
    a = page(features_file, seed=1, epochs=2)
    b = page(features_file, seed=2, epochs=2)
    a.button(key="btn_start").click().run()
    b.button(key="btn_start").click().run()
    ra, rb = run_obj(a), run_obj(b)
    assert ra is not rb
    wait(a, lambda x: state(x) == "finished", what="session A")
    wait(b, lambda x: state(x) == "finished", what="session B")
    assert ra.config.seed == 1 and rb.config.seed == 2
    ha, hb = ra.view().history, rb.view().history
    assert len(ha) == len(hb) == 3 and ha[-1]["val_avg"] != hb[-1]["val_avg"]
    fa, fb = ra.save(tmp_path / "checkpoints"), rb.save(tmp_path / "checkpoints")
    assert fa != fb and fa.is_dir() and fb.is_dir()


@pytest.mark.slow
def test_comparison_run_from_the_page(features_file):
    at = page(features_file, epochs=2)
    open_tab(at, "Compare")
    at.button(key="btn_compare").click().run()
    cmp = at.session_state["cmp"]
    assert at.button(key="btn_start").disabled                # one heavy job at a time per session
    wait(at, lambda a: cmp.state != "running", timeout=180, what="the comparison")
    assert cmp.state == "finished"
    at.run()
    labels = [m.label for m in at.metric]
    assert labels.count("Modality probe") >= 2
    assert len(at.get("plotly_chart")) >= 3


@pytest.mark.slow
def test_maps_tab_shows_both_colourings_and_scrubs(features_file):
    at = page(features_file, epochs=3)
    at.button(key="btn_start").click().run()
    wait(at, lambda a: state(a) == "finished", what="finished")
    open_tab(at, "Maps")
    at.session_state["map_method"] = "PCA"
    at.run()

    def titles():
        return [c["layout"]["title"]["text"] for c in live_charts(at).values()]

    assert titles() == ["PCA, epoch 3: by modality", "PCA, epoch 3: by class"]   # follows the newest epoch
    assert at.select_slider(key="map_at_PCA_3").disabled                        # following: read-only
    at.toggle(key="map_follow").set_value(False).run()                           # scrub
    slider = at.select_slider(key="map_sel_PCA")
    assert list(slider.options) == ["0", "1", "2", "3"] and slider.value == 3 and not slider.disabled
    slider.set_value(1).run()
    assert titles() == ["PCA, epoch 1: by modality", "PCA, epoch 1: by class"]
    at.select_slider(key="map_sel_PCA").set_value(2).run()
    assert titles()[0] == "PCA, epoch 2: by modality" and at.session_state["map_follow"] is False
    at.session_state["map_layout"] = "Before / after"
    at.session_state["map_colour"] = "modality"
    at.run()
    assert titles() == ["PCA · before: epoch 0 (by modality)", "PCA · after: epoch 2 (by modality)"]
    at.session_state["map_colour"] = "class"
    at.run()
    assert titles() == ["PCA · before: epoch 0 (by class)", "PCA · after: epoch 2 (by class)"]


# --- the figures themselves (built without plotly's validation for speed: validate them here) -----------

def arr(v):
    """A plotly array, whether a list/ndarray or plotly 6's base64 typed-array dict."""
    if isinstance(v, dict) and "bdata" in v:
        import base64
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _valid(fig):
    import plotly.graph_objects as go

    return go.Figure(fig.to_dict())          # raises on any invalid property


def test_every_figure_is_valid_plotly_empty_and_full(synthetic):
    from acmr_core.live import TrainingRun
    from app import charts

    cfg = ACMRConfig(epochs=2, image_layers=[16], text_layers=[16], common_dim=8, batch_size=32, snapshot_size=20)
    run = TrainingRun(synthetic, cfg, umap_epochs=[])
    empty = run.view()
    for fig in charts.training_figures(empty).values():
        _valid(fig)
    run.start()
    assert run.join(60)
    v = run.view()
    figs = charts.training_figures(v)
    for name, fig in figs.items():
        f = _valid(fig)
        assert f.layout.title.text, name
    losses = _valid(figs["losses"])
    assert len(losses.data) == 10 and len(arr(losses.data[0].x)) == v.total_steps
    assert [a.text for a in losses.layout.annotations][:5] == [charts.LOSS_NAMES[k][0] for k in
                                                              ("imd", "imi", "reg", "adv", "total")]
    mp = _valid(figs["map"])
    assert [t.name for t in mp.data] == ["Image → Text", "Text → Image", "average"]
    assert np.allclose(arr(mp.data[2].y), [r["val_avg"] for r in v.history])
    frame = v.pca[2]
    for colour in ("modality", "class"):
        m = _valid(charts.embedding_map(frame, colour, v.class_names, thumb_prefix="/acmr/thumb/x/"))
        assert sum(len(arr(t.x)) for t in m.data) == len(frame.coords)
        assert all((t.meta is not None) == (t.marker.symbol == "circle") for t in m.data)   # thumbs: images only
    views = {"a": v, "b": v}
    _valid(charts.comparison_curves(views, "probe", "p", "acc", [0.4, 1.05], ref=0.5))
    _valid(charts.comparison_curves({"a": empty}, "probe", "p", "acc"))
    html = charts.figures_html(figs)
    import re
    assert html.count("<section>") == 6 and len(html) > 1_000_000          # plotly.js inlined once: works offline
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)


def test_map_hover_captions_are_wrapped_to_fit_a_map():
    """A caption ran off both sides of a side-by-side map in one hover line (seen in a browser screenshot): the
    hover label now breaks it into lines of at most charts.HOVER_COLUMNS columns (a CJK character counts two)."""
    import html as html_lib
    import re
    import unicodedata

    from acmr_core.maps import MapFrame
    from app import charts

    caps = ["The arrow towards the bottom right is yellow on a cream background. Easy to spot, and really big.",
            "一只黄色的箭头在奶油色的背景上指向右下角，非常容易看到，而且很大的一个形状在中间", "A red heart."]
    n = len(caps)
    frame = MapFrame(1, np.zeros((2 * n, 2), np.float32), np.tile(np.arange(n), 2), np.repeat(["image", "text"], n),
                     np.tile(np.arange(n), 2), "umap")
    fig = charts.embedding_map(frame, "modality", ["arrow", "moon", "heart"], caps)
    texts = [t for trace in fig.data for t in trace.text]
    assert len(texts) == 2 * n
    for t in texts:
        lines = [html_lib.unescape(re.sub(r"<[^>]+>", "", ln)) for ln in t.split("<br>")[1:]]    # after the class line
        said = " ".join(lines).replace("its caption: ", "").replace("caption: ", "")
        assert said.replace(" ", "") in "".join(c.replace(" ", "") for c in caps), t           # the caption, whole
        for ln in lines:
            assert sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in ln) <= charts.HOVER_COLUMNS, ln
    assert sum(len(t.split("<br>")) > 2 for t in texts) == 4          # the two long captions, on both modalities


def test_ablation_figures_say_what_is_off(synthetic):
    from acmr_core.live import TrainingRun
    from app import charts

    cfg = ACMRConfig(epochs=1, image_layers=[16], text_layers=[16], common_dim=8, batch_size=32, snapshot_size=20,
                     use_adversarial=False, use_triplet=False)
    run = TrainingRun(synthetic, cfg, umap_epochs=[]).start()
    assert run.join(60)
    figs = charts.training_figures(run.view())
    notes = " ".join(a["text"] for a in figs["losses"].to_dict()["layout"]["annotations"])
    assert notes.count("switched off") == 2
    assert "adversarial loss switched off" in figs["modality_classifier"].to_dict()["layout"]["annotations"][0]["text"]


@pytest.mark.slow
def test_umap_snapshot_plan_is_chosen_before_start(features_file):
    at = page(features_file, epochs=4)
    at.select_slider(key="umap_plan").set_value("first and last").run()
    at.button(key="btn_start").click().run()
    run = run_obj(at)
    assert run.umap_epochs == {0, 4}
    run.stop()
    wait(at, lambda a: state(a) in ("stopped", "finished"), what="the end")
    at.select_slider(key="umap_plan").set_value("every epoch").run()
    at.button(key="btn_start").click().run()
    assert run_obj(at).umap_epochs == {0, 1, 2, 3, 4} and run_obj(at) is not run
    run_obj(at).stop()
    wait(at, lambda a: state(a) in ("stopped", "finished"), what="the end")


# --- runs on disk: a reload, a second viewer, a run recorded earlier ------------------------------------

@pytest.mark.slow
def test_reload_and_a_second_viewer_attach_to_the_same_live_run(features_file):
    a = page(features_file, epochs=500)
    a.button(key="btn_start").click().run()
    run = run_obj(a)
    wait(a, lambda x: run.view().global_step > 0, what="the first step")
    assert a.query_params["run"] == run.run_id                        # the URL names the shown run
    reload = AppTest.from_file(PAGE, default_timeout=60)
    reload.query_params["run"] = run.run_id                           # a reload keeps the URL, not the session
    reload.run()
    assert not reload.exception and run_obj(reload) is run
    assert reload.number_input(key="cfg_epochs").value == 500          # the sidebar shows the run's settings
    assert run.run_id in at_progress(reload) and "may pause or stop it" in texts(reload)
    other = AppTest.from_file(PAGE, default_timeout=60)               # a second viewer with the plain address
    other.run()
    assert run_obj(other) is run and not other.button(key="btn_stop").disabled
    other.button(key="btn_stop").click().run()                        # anyone viewing it may stop it
    wait(other, lambda x: state(x) == "stopped", what="stopped by the second viewer")
    a.run()
    assert "stopped" in at_progress(a)


def at_progress(at) -> str:
    return " ".join(str(p.proto.text) for p in at.get("progress"))


def test_a_run_recorded_earlier_shows_from_its_folder_and_an_unknown_id_says_so(tmp_path, monkeypatch):
    from acmr_core import runs

    monkeypatch.setenv("ACMR_RUNS_DIR", str(tmp_path / "runs"))
    r = runs.RunDir.create(ACMRConfig(epochs=5).to_dict(), name="old run", dataset="shapes")
    r.append({"kind": "dataset", "name": "shapes", "class_names": ["a", "b"], "total_steps": 50})
    r.append({"kind": "status", "state": "running", "message": "training started"})
    for e in range(3):
        r.append({"kind": "epoch", "epoch": e, "val_img2txt": 0.2 + e / 10, "val_txt2img": 0.2, "val_avg": 0.3 + e / 10,
                  "probe": 0.9, "gap": 0.5, "best_epoch": e})
    r.close()                                        # no final status, nobody holds its lock: its process died
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["run"] = r.run_id
    at.run()
    assert not at.exception, at.exception
    assert "This run was interrupted" in texts(at) and "2 epochs recorded" in texts(at)
    assert "interrupted" in at_progress(at) and r.run_id in at_progress(at)
    assert {m.label: m.value for m in at.metric}["mAP avg (val)"] == "0.500"
    assert at.button(key="btn_stop").disabled and not at.button(key="btn_start").disabled
    assert at.selectbox(key="run_pick").value == r.run_id
    gone = AppTest.from_file(PAGE, default_timeout=60)
    gone.query_params["run"] = "19990101-000000-nothere"
    gone.run()
    assert "There is no run `19990101-000000-nothere`" in texts(gone) and run_obj(gone) is None


def test_a_stale_picker_label_from_the_browser_still_names_its_run():
    """The browser sends the picker's label back, and after the shown run's label changed (running -> finished)
    Streamlit passes that old label on as the value. It must still name the run (the whole label named none, and the
    page showed "Press Start" below the finished run's status: seen in the Chromium walk-through, which checks it)."""
    from acmr_core.runs import RunSummary
    from app.dashboard import picked_run_id, run_label

    live = RunSummary("20261201-160620-70460d", "run 16:06:20", "running", 0, 20, "shapes", 0.0)
    assert picked_run_id(run_label(live)) == "20261201-160620-70460d"
    assert picked_run_id("20261201-160620-70460d") == "20261201-160620-70460d"
    assert picked_run_id("") is None and picked_run_id(None) is None


def test_epoch_charts_are_rebuilt_at_most_every_two_seconds_while_a_run_trains(monkeypatch):
    """Each rebuilt chart is drawn again from scratch in the browser: with epochs shorter than a poll, the five
    epoch charts were redrawn at every poll. While a run trains they now change at most every EPOCH_CHARTS_S."""
    from types import SimpleNamespace

    from app import dashboard as D

    monkeypatch.setattr(D, "ss", {})

    def view(epochs, state="running", rid="r1"):
        return SimpleNamespace(run_id=rid, history=[{}] * epochs, best_epoch=0, state=state)

    assert D.EPOCH_CHARTS_S == 2.0
    first = D._epoch_key(view(1), now=100.0)
    assert D._epoch_key(view(2), now=100.5) == first          # a new epoch half a second later: the charts as drawn
    assert D._epoch_key(view(3), now=101.9) == first
    later = D._epoch_key(view(3), now=102.1)
    assert later != first and later[1] == 3                    # two seconds on: every epoch so far
    assert D._epoch_key(view(4), now=102.2) == later
    ended = D._epoch_key(view(4, "finished"), now=102.3)
    assert ended[1] == 4 and ended[3] is False                 # the run ends: its last epochs at once
    assert D._epoch_key(view(1, rid="r2"), now=102.4)[0] == "r2"   # another run: at once


def test_the_search_status_says_a_checkpoint_is_loading_rather_than_no_model(tmp_path):
    """At start-up the newest checkpoint loads in the background: the Search tab's line above the search app said
    "no model yet" while the app below it showed that checkpoint (seen in the Chromium walk-through)."""
    from app import services
    from app.model_store import ModelStore

    store = ModelStore(tmp_path)
    assert services.store_status(store) == "no model yet" and not store.loading
    with store._load_lock:                                       # what load_checkpoint holds while it loads
        assert store.loading and services.store_status(store) == "a checkpoint, still loading …"


def test_an_unwritable_runs_folder_is_a_message_not_a_stack_trace(features_file, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the runs folder should be")
    monkeypatch.setenv("ACMR_RUNS_DIR", str(blocker / "runs"))
    at = page(features_file)
    at.button(key="btn_start").click().run()
    assert not at.exception and run_obj(at) is None
    assert any("Could not create the run's folder" in e.value for e in at.error), texts(at)
    assert not at.button(key="btn_start").disabled


def test_the_best_epoch_label_stays_inside_the_validation_chart():
    from types import SimpleNamespace

    from app import charts

    history = [{"epoch": e, "val_img2txt": 0.1 + e / 2000, "val_txt2img": 0.1, "val_avg": 0.1} for e in range(140)]
    for best, side in ((26, "left"), (900, "right")):
        fig = charts.map_figure_epochs(SimpleNamespace(history=history, best_epoch=best, epochs=1000))
        (note,) = fig.layout.annotations
        assert note.xanchor == side and f"best epoch {best}" in note.text


def test_the_run_picker_never_shows_a_stale_epoch_count():
    """The picker is redrawn only by a whole-page rerun: a training run's label names no epochs-done figure
    (a browser screenshot showed "running · 0/20 epochs" while the progress bar said epoch 17), a done one does."""
    from acmr_core.runs import RunSummary
    from app.dashboard import run_label

    live = RunSummary("20261201-160620-70460d", "run 16:06:20", "running", 0, 20, "shapes", 0.0)
    assert run_label(live) == "20261201-160620-70460d · running · 20 epochs · shapes · run 16:06:20"
    for status in ("finished", "stopped", "failed", "interrupted", "paused"):
        done = RunSummary("r1", "", status, 7, 20, "shapes", 0.0)
        assert run_label(done) == f"r1 · {status} · 7/20 epochs · shapes"


def test_the_default_shapes_choice_is_the_dataset_loaded_at_start_up():
    """The sidebar's default (3,000 pairs, normal) names the same cache entry as the dataset prefetched at start-up,
    so Start trains on it at once instead of reading a second copy from disk (0.5 s of a demo run)."""
    from app import services

    assert services.dataset_spec("shapes", n_pairs=services.SHAPES_PAIRS, difficulty="normal") == services.DEFAULT_SPEC
    assert services.dataset_spec("shapes", n_pairs=400).opts["n_pairs"] == 400


def test_the_warm_up_builds_the_dataset_the_app_starts_with():
    """`python -m acmr_core warm-up` (scripts/setup.sh, once after an install) builds WARM_UP_DATASET into the
    cache: it must be the app's DEFAULT_SPEC, or the app's first start would build its own (22 s here)."""
    import inspect

    from acmr_core.__main__ import WARM_UP_DATASET
    from acmr_core.data import DATASETS
    from app import services

    kind, opts = WARM_UP_DATASET
    spec = services.DEFAULT_SPEC
    defaults = {k: p.default for k, p in inspect.signature(DATASETS[kind]).parameters.items()}
    assert spec.kind == kind
    assert {k: v for k, v in spec.opts.items() if k != "progress"} == \
        {k: opts.get(k, defaults[k]) for k in spec.opts if k != "progress"}
    assert set(opts) <= set(spec.opts)              # nothing the app does not ask for


def test_the_search_tab_says_the_search_app_is_still_starting_and_a_drawn_page_lets_start_up_work_begin(monkeypatch):
    """The start-up work (app/main.py's search app build, Gradio: 8.5 s here; services.start_background's warm-ups)
    waits until the dashboard has drawn a page or a client asks for /gradio, so the first page is not held back:
    meanwhile the Search tab says the app is starting."""
    from app import services

    monkeypatch.setitem(services.SEARCH, "status", "loading")
    first = threading.Event()
    monkeypatch.setattr(services, "FIRST_CLIENT", first)
    at = page()
    assert first.is_set()                                     # the page was drawn: the deferred work may begin
    open_tab(at, "Search")
    assert any("still starting" in i.value for i in at.info), texts(at)
    monkeypatch.setitem(services.SEARCH, "status", "ready")
    at.run()
    assert not any("still starting" in i.value for i in at.info)
