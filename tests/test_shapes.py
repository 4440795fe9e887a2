"""The built-in `shapes` dataset: determinism, balance, captions, splits, cache, and that it is learnable."""
import json

import numpy as np
import pytest
from PIL import Image

from acmr_core.data import CrossModalDataset, DataError, load_dataset
from acmr_core.datasets import shapes
from acmr_core.encoders import Encoder, make_encoder, register_encoder


@register_encoder("counting_image_test", modality="image")
class CountingImage(Encoder):
    """A cheap image encoder (mean colour) that counts how many items it encoded."""

    calls = 0

    def encode(self, items):
        CountingImage.calls += len(items)
        return np.array([np.asarray(im.convert("RGB"), np.float32).mean((0, 1)) / 255 for im in items], np.float32)

    @property
    def dim(self):
        return 3


def small(tmp_path, **kw):
    opts = dict(n_pairs=200, image_size=32, seed=0, cache_dir=tmp_path, progress=False)
    opts.update(kw)
    return load_dataset("shapes", **opts)


def test_generation_is_deterministic_under_a_seed():
    d = shapes.PRESETS["normal"]
    a, b, c = (shapes.generate(60, 32, d, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a["pixels"], b["pixels"])
    assert list(a["captions"]) == list(b["captions"])
    np.testing.assert_array_equal(a["labels"], b["labels"])
    assert not np.array_equal(a["pixels"], c["pixels"])
    assert list(a["captions"]) != list(c["captions"])


def test_classes_balanced_and_splits_stratified():
    g = shapes.generate(400, 32, shapes.PRESETS["normal"], seed=1)
    counts = np.bincount(g["true_labels"], minlength=len(shapes.CLASSES))
    assert counts.min() == counts.max() == 40
    for k in range(len(shapes.CLASSES)):
        members = g["split"][g["true_labels"] == k]
        assert (members == "test").sum() == 8 and (members == "val").sum() == 4
    assert 8 <= len(shapes.CLASSES) <= 10
    assert {"circle", "square", "triangle", "star", "cross"} <= set(shapes.CLASSES)


def test_label_noise_only_touches_training_items():
    d = shapes.resolve_difficulty("normal", label_noise=0.5)
    g = shapes.generate(300, 32, d, seed=0)
    flipped = g["labels"] != g["true_labels"]
    assert flipped.sum() > 50
    assert set(g["split"][flipped]) == {"train"}


def test_captions_mention_the_right_shape_or_its_description():
    g = shapes.generate(500, 32, shapes.PRESETS["normal"], seed=2)
    kinds = g["attr_caption_kind"]
    assert {"name", "description", "vague"} <= set(kinds)
    for cap, y, kind in zip(g["captions"], g["true_labels"], kinds):
        cap, shape = cap.lower(), shapes.CLASSES[y]
        if kind == "name":
            assert any(s in cap for s in shapes.SYNONYMS[shape]), cap
        elif kind == "description":
            assert any(s in cap for s in shapes.DESCRIPTIONS[shape]), cap
        else:  # vague: no name and no description of its own shape
            assert not any(s in cap for s in shapes.DESCRIPTIONS[shape] + shapes.SYNONYMS[shape]), cap
    assert len(set(g["captions"])) > 0.95 * len(g["captions"])  # a varied grammar, not a template


def test_colour_is_mentioned_but_independent_of_the_class():
    g = shapes.generate(1000, 32, shapes.PRESETS["normal"], seed=0)
    colours, labels = g["attr_colour"], g["true_labels"]
    said = [any(s in cap.lower() for s in shapes.COLOURS[c][1]) for cap, c in zip(g["captions"], colours)]
    assert np.mean(said) > 0.85
    for k in range(len(shapes.CLASSES)):  # every class comes in many colours, none dominates
        _, n = np.unique(colours[labels == k], return_counts=True)
        assert len(n) >= 6 and n.max() / n.sum() < 0.3


def test_loader_contract(tmp_path):
    ds = small(tmp_path)
    assert isinstance(ds, CrossModalDataset)
    assert ds.image_features.shape == (200, ds.encoders["image"].dim)
    assert ds.text_features.shape == (200, ds.encoders["text"].dim)
    assert ds.labels.dtype.kind == "i" and ds.class_names == shapes.CLASSES
    assert set(ds.split) == {"train", "val", "test"}
    im = ds.images[5]
    assert isinstance(im, Image.Image) and im.mode == "RGB" and im.size == (32, 32)
    assert isinstance(ds.captions[5], str) and len(ds.captions) == 200
    json.dumps(ds.info)  # JSON-safe
    assert ds.info["image_encoder"]["name"] == "hog_color" and ds.info["text_encoder"]["name"] == "tfidf"
    # the fitted encoders encode a query exactly as the gallery was encoded
    np.testing.assert_allclose(ds.encoders["image"].encode([ds.images[7]])[0], ds.image_features[7], atol=1e-6)
    np.testing.assert_allclose(ds.encoders["text"].encode([ds.captions[7]])[0], ds.text_features[7], atol=1e-6)


def test_recorded_options_rebuild_the_same_dataset(tmp_path):
    ds = small(tmp_path, n_pairs=80, difficulty="hard", rotation=5, text_params={"ngram_max": 1})
    opts = json.loads(json.dumps(ds.info["options"]))  # as stored in a checkpoint
    assert opts["rotation"] == 5 and opts["difficulty"] == "hard"
    again = load_dataset("shapes", cache_dir=tmp_path / "elsewhere", progress=False, **opts)
    np.testing.assert_array_equal(again.images.pixels, ds.images.pixels)
    np.testing.assert_allclose(again.text_features, ds.text_features)
    assert again.captions == ds.captions


def test_text_encoder_is_fitted_on_training_captions_only(tmp_path):
    ds = small(tmp_path)
    train = [ds.captions[i] for i in ds.indices("train")]
    ref = make_encoder("tfidf").fit(train)
    assert ds.encoders["text"].terms == ref.terms
    everything = make_encoder("tfidf").fit(ds.captions)
    assert everything.state()["idf"] != ds.encoders["text"].state()["idf"]


def test_unknown_options_and_bad_values_are_refused(tmp_path):
    with pytest.raises(DataError, match="colour_blind"):
        small(tmp_path, colour_blind=True)
    with pytest.raises(DataError, match="difficulty"):
        small(tmp_path, difficulty="nightmare")
    with pytest.raises(DataError, match="must lie in 0..1"):
        small(tmp_path, occlusion=1.5)
    with pytest.raises(DataError, match="n_pairs"):
        small(tmp_path, n_pairs=5)


@pytest.mark.slow
def test_cache_is_used_and_invalidated(tmp_path):
    CountingImage.calls = 0
    a = small(tmp_path, image_encoder="counting_image_test")
    assert CountingImage.calls == 200
    files = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    b = small(tmp_path, image_encoder="counting_image_test")
    assert CountingImage.calls == 200  # nothing re-encoded
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == files  # nothing rewritten
    np.testing.assert_array_equal(a.image_features, b.image_features)
    np.testing.assert_array_equal(a.images.pixels, b.images.pixels)
    assert a.captions == b.captions and b.encoders["text"].terms == a.encoders["text"].terms

    small(tmp_path, image_encoder="counting_image_test", text_params={"ngram_max": 1})
    assert CountingImage.calls == 200  # a text-encoder change leaves the image features cached
    small(tmp_path, image_encoder="counting_image_test", seed=1)
    assert CountingImage.calls == 400  # new data -> re-encoded
    small(tmp_path, image_encoder="counting_image_test", noise=0)
    assert CountingImage.calls == 600
    c = small(tmp_path, image_params={"size": 32})
    d = small(tmp_path, image_params={"size": 48})
    assert c.image_features.shape[1] != d.image_features.shape[1]


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ACMR_CACHE_DIR", str(tmp_path / "env"))
    load_dataset("shapes", n_pairs=60, image_size=32, progress=False, image_encoder="counting_image_test")
    assert list((tmp_path / "env" / "shapes").glob("*.npz"))
    assert list((tmp_path / "env" / "features").glob("*.json"))


def test_clear_cache(tmp_path):
    from acmr_core.cache import clear_cache

    small(tmp_path, n_pairs=60)
    assert clear_cache(tmp_path) == 6  # data + image features + text features, each .npz + .json
    assert not list(tmp_path.rglob("*.npz"))


def test_a_corrupt_cache_entry_is_recomputed(tmp_path):
    a = small(tmp_path, n_pairs=60)
    for p in (tmp_path / "features").glob("*.npz"):
        p.write_bytes(b"garbage")
    b = small(tmp_path, n_pairs=60)
    np.testing.assert_allclose(a.image_features, b.image_features)


@pytest.mark.slow
def test_small_shapes_is_learnable_far_above_chance_and_colour_is_a_trap(tmp_path):
    """Logistic regression on each modality's features: far above chance (0.1) for the class; the
    colour part of the image features predicts colour well but the class only at chance level."""
    from sklearn.linear_model import LogisticRegression

    ds = small(tmp_path, n_pairs=800, image_size=64)
    tr, te = ds.indices("train"), ds.indices("test")
    y = ds.attributes["true_label"]
    colour = np.unique(ds.attributes["colour"], return_inverse=True)[1]

    def acc(X, target):
        clf = LogisticRegression(max_iter=500, C=1.0).fit(X[tr], target[tr])
        return clf.score(X[te], target[te])

    assert acc(ds.image_features, y) > 0.35
    assert acc(ds.text_features, y) > 0.6
    colour_part = ds.image_features[:, -16:] * 10
    assert acc(colour_part, colour) > 0.7
    assert acc(colour_part, y) < 0.2
    assert acc(ds.text_features, colour) > 0.7
