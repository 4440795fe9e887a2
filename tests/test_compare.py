"""Comparisons of N variants (real training on synthetic data), the sentences written from their numbers,
and the embedding export (the files and the dashboard's download bytes)."""
from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

from acmr_core import compare, export
from acmr_core.config import ACMRConfig
from acmr_core.live import TrainingRun
from tests.conftest import make_synthetic


def tiny(**kw) -> ACMRConfig:
    base = dict(epochs=2, image_layers=[16], text_layers=[16], common_dim=8, disc_layers=[8], batch_size=32,
                patience=0, threads=1, snapshot_size=60)
    return ACMRConfig(**{**base, **kw})


# --- variants ------------------------------------------------------------------------------------------------

def test_variants_before_there_is_a_choice_of_game(monkeypatch):
    monkeypatch.setattr(compare, "games", lambda: {})
    v = compare.default_variants(SimpleNamespace(use_adversarial=True))      # a config without a `game` field
    assert v == {"with adversary": {"use_adversarial": True}, "no adversary": {"use_adversarial": False}}


def test_variants_add_the_papers_game_when_the_chosen_one_differs(monkeypatch):
    monkeypatch.setattr(compare, "games", lambda: {"critic": "a Lipschitz critic", "paper": "the paper's"})
    monkeypatch.setattr(compare, "default_game", lambda: "critic")
    v = compare.default_variants(SimpleNamespace(game="critic"))
    assert list(v) == ["adversary · critic", "no adversary", "adversary · paper's game"]
    assert v["adversary · paper's game"] == {"use_adversarial": True, "game": "paper"}
    v = compare.default_variants(SimpleNamespace(game="paper"))              # the paper's chosen: add the default
    assert list(v) == ["adversary · paper's game", "no adversary", "adversary · critic"]
    monkeypatch.setattr(compare, "default_game", lambda: "paper")
    assert list(compare.default_variants(SimpleNamespace(game="paper"))) == ["adversary · paper's game", "no adversary"]


def test_variants_of_the_real_config():
    v = compare.default_variants(ACMRConfig())
    assert "no adversary" in v and list(v.values())[0] == {"use_adversarial": True}
    game = getattr(ACMRConfig(), "game", None)
    assert (("adversary · paper's game" in v) == (game is not None and game != "paper" and "paper" in compare.games()))


# --- a comparison of three variants ---------------------------------------------------------------------------

def test_comparison_of_three_variants_trains_each_and_tells_what_it_measured():
    variants = {"adversary γ 0.3": {"use_adversarial": True, "grl_max": 0.3}, "no adversary": {"use_adversarial": False},
                "adversary γ 3": {"use_adversarial": True, "grl_max": 3.0}}
    cmp = compare.ComparisonRun(make_synthetic(n=300), tiny(), variants, umap_epochs=[])
    assert cmp.state == "ready" and list(cmp.runs) == list(variants)
    cmp.start()
    assert cmp.join(240)
    assert cmp.state == "finished"
    runs = list(cmp.runs.values())
    assert [r.config.grl_max for r in runs] == [0.3, tiny().grl_max, 3.0]
    assert [r.config.use_adversarial for r in runs] == [True, False, True]
    assert len({r.config.seed for r in runs}) == 1
    views = cmp.views()
    for v in views.values():
        assert [h["epoch"] for h in v.history] == [0, 1, 2]
        assert all(0 <= h["mixing"] <= 2 for h in v.history)                 # mixing recorded every epoch
    res = cmp.results()
    assert res["no adversary"]["disc_acc"] is None and 0 <= res["adversary γ 3"]["disc_acc"] <= 1
    assert res["adversary γ 3"]["mixing"] == views["adversary γ 3"].history[-1]["mixing"]
    lines = compare.story(res)
    assert len(lines) == 2 and lines[0].startswith("**adversary γ 0.3**") and lines[1].startswith("**adversary γ 3**")
    r, b = res["adversary γ 3"], res["no adversary"]
    assert f"{b['map']:.3f} → {r['map']:.3f}" in lines[1]
    if abs(r["mixing"] - b["mixing"]) >= compare.SAME:
        assert f"from {b['mixing']:.2f} to {r['mixing']:.2f}" in lines[1]


def test_stopping_a_comparison_stops_the_later_variants():
    cmp = compare.ComparisonRun(make_synthetic(n=300), tiny(epochs=300),
                                {"a": {}, "b": {"use_adversarial": False}, "c": {"grl_max": 1.0}}, umap_epochs=[])
    cmp.start()
    first = cmp.runs["a"]
    import time
    t_end = time.monotonic() + 60
    while first.view().epoch < 1 and time.monotonic() < t_end:
        time.sleep(0.05)
    cmp.stop()
    assert cmp.join(60)
    assert cmp.state == "stopped" and [r.state for r in cmp.runs.values()][1:] == ["stopped", "stopped"]
    assert cmp.runs["c"].view().epoch == 0


# --- the words follow the numbers ---------------------------------------------------------------------------

def _r(mix, probe, acc, m=0.72, adversary=True):
    return {"map": m, "mixing": mix, "probe": probe, "disc_acc": acc, "adversary": adversary}


def test_story_names_the_failure_a_fooled_d_that_segregates():
    lines = compare.story({"no adversary": _r(0.85, 0.65, None, adversary=False),
                           "adversary · paper's game": _r(0.54, 0.62, 0.52, 0.72)})
    assert len(lines) == 1
    line = lines[0]
    assert "local mixing fell from 0.85 to 0.54" in line and "probe fell from 0.65 to 0.62" in line
    assert "fooled D (accuracy 52%) but local mixing fell from 0.85 to 0.54" in line
    assert "does not mean mixed modalities" in line


def test_story_says_when_the_adversary_did_its_job_or_made_no_difference():
    base = _r(0.85, 0.65, None, adversary=False)
    good = compare.story({"no adversary": base, "adversary · critic": _r(0.90, 0.56, 0.55)})[0]
    assert "rose from 0.85 to 0.90" in good and "fell from 0.65 to 0.56" in good and "did its job" in good
    assert "fooled" not in good
    same = compare.story({"no adversary": base, "adversary": _r(0.86, 0.64, 0.9)})[0]
    assert "stayed about the same (0.85 → 0.86)" in same and "little difference" in same
    notfooled = compare.story({"no adversary": base, "adversary": _r(0.60, 0.64, 0.9)})[0]
    assert "more* segregated" in notfooled and "D's accuracy 90%" in notfooled and "fooled D" not in notfooled
    assert compare.story({"adversary": _r(0.6, 0.6, 0.5)}) == []              # no baseline, no claim


def test_disc_acc_by_epoch_ignores_steps_without_d():
    v = SimpleNamespace(steps={"epoch": np.array([1, 1, 2, 2]), "disc_acc": np.array([0.9, 0.7, np.nan, 0.5])})
    assert compare.disc_acc_by_epoch(v) == {1: pytest.approx(0.8), 2: 0.5}


# --- export ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    ds = make_synthetic(n=200, classes=4)
    ds.captions = [f"a thing\twith tab {i}\nand a new line" for i in range(len(ds.labels))]
    run = TrainingRun(ds, tiny(epochs=1), umap_epochs=[]).start()
    assert run.join(120) and run.state == "finished"
    return run


def test_split_embeddings_and_both_file_formats(trained, tmp_path):
    run = trained
    ds = run.dataset
    emb = export.split_embeddings(run.model(), ds, "test")
    n = int((ds.split == "test").sum())
    assert emb["image"].shape == (n, 8) == emb["text"].shape and len(emb["labels"]) == n == len(emb["captions"])
    idx = ds.indices("test")
    assert np.allclose(emb["image"][0], run.model().embed(ds.image_features[idx[:1]], "image")[0], atol=1e-6)
    with np.load(export.write_npz(emb, tmp_path / "e.npz")) as z:
        assert sorted(z.files) == ["image", "labels", "text"] and np.array_equal(z["labels"], ds.labels[idx])
    vec, meta = export.write_projector_tsv(emb, tmp_path / "tsv", ds.class_names)
    rows = vec.read_text().splitlines()
    assert len(rows) == 2 * n and all(len(r.split("\t")) == 8 for r in rows)
    assert np.allclose(np.array(rows[n].split("\t"), float), emb["text"][0], atol=1e-4)
    lines = meta.read_text().splitlines()
    assert lines[0] == "modality\tclass\tcaption" and len(lines) == 2 * n + 1
    first = lines[1].split("\t")
    assert first[0] == "image" and first[1] == ds.class_names[ds.labels[idx[0]]]
    assert first[2] == f"a thing with tab {idx[0]} and a new line"
    assert lines[n + 1].startswith("text\t")
    with pytest.raises(ValueError, match="no 'val'|unknown split"):
        export.split_embeddings(run.model(), ds, "nope")


def test_the_dashboards_download_bytes_parse(trained):
    from acmr_core.data import training_split
    from app import embedding_export

    run = trained
    n = int((training_split(run.dataset, run.config.val_fraction, run.config.seed) == "val").sum())
    with np.load(io.BytesIO(embedding_export.npz_bytes(run, "val"))) as z:
        assert z["image"].shape == (n, 8) and z["text"].shape == (n, 8) and len(z["labels"]) == n
    with zipfile.ZipFile(io.BytesIO(embedding_export.projector_zip(run, "val"))) as z:
        assert sorted(z.namelist()) == ["metadata.tsv", "vectors.tsv"]
        vec = z.read("vectors.tsv").decode().splitlines()
        meta = z.read("metadata.tsv").decode().splitlines()
    assert len(vec) == 2 * n and len(meta) == 2 * n + 1
    np.array([r.split("\t") for r in vec], dtype=float)                       # every cell a number
    assert {m.split("\t")[0] for m in meta[1:]} == {"image", "text"}


@pytest.mark.slow
def test_dashboard_shows_mixing_live_and_offers_the_embedding_downloads(tmp_path, monkeypatch):
    from tests.test_dashboard import open_tab, page, state, wait

    monkeypatch.setenv("ACMR_CHECKPOINTS_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("ACMR_PREFETCH", "0")
    ds = make_synthetic(n=240, classes=4, seed=3)
    tr, te = ds.split == "train", ds.split == "test"
    path = tmp_path / "tiny.npz"
    np.savez(path, image_train=ds.image_features[tr], text_train=ds.text_features[tr], label_train=ds.labels[tr],
             image_test=ds.image_features[te], text_test=ds.text_features[te], label_test=ds.labels[te])
    at = page(path, epochs=1)
    at.button(key="btn_start").click().run()
    wait(at, lambda a: state(a) == "finished", what="finished")
    # both invariance measures live on the Training tab: a card each (with a teaching tooltip) and a chart each
    from acmr_core.live import REGISTRY

    hist = REGISTRY.get(at.session_state["run_id"]).view().history
    cards = {m.label: m for m in at.metric}
    assert cards["kNN mixing"].value == f"{hist[-1]['mixing']:.3f}" and "10 nearest" in cards["kNN mixing"].help
    assert cards["Modality probe"].value == f"{hist[-1]['probe']:.3f}" and "held-out" in cards["Modality probe"].help
    from tests.test_dashboard import live_charts
    titles = [c["layout"]["title"]["text"] for c in live_charts(at).values()]
    assert "kNN modality mixing" in titles and "Modality probe" in titles
    open_tab(at, "Checkpoints")
    keys = {getattr(d, "key", None) or d.proto.id for d in at.get("download_button")}
    assert any("dl_emb_npz" in k for k in keys) and any("dl_emb_tsv" in k for k in keys), keys
    split = at.selectbox(key="dl_emb_split")
    assert split.value == "test" and len(split.options) == 3 and any("validation (" in o for o in split.options)
