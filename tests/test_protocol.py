"""The official ACMR demo's scoring (`evaluate --protocol acmr-demo`), on examples computed by hand."""
import numpy as np
import pytest
from conftest import make_synthetic

from acmr_core.__main__ import main
from acmr_core.metrics import acmr_demo_scores


def test_hand_computed_only_the_first_items_count():
    # 1-D embeddings, so L2 distances are plain differences. Labels a a b b, and a 5th pair (label b) that the
    # protocol must ignore with n_items=4, although its text would be v0's nearest neighbour.
    img = np.array([[0.0], [10.0], [20.0], [31.0], [50.0]], np.float32)
    txt = np.array([[1.0], [12.0], [24.0], [36.0], [0.2]], np.float32)
    y = np.array([0, 0, 1, 1, 1])
    s = acmr_demo_scores(img, txt, y, k=2, n_items=4)
    # image queries, top 2 of the texts at 1, 12, 24, 36:
    #   v0 (0):  t0 (1) rel, t1 (12) rel   -> AP (1/1 + 2/2) / 2 = 1
    #   v1 (10): t1 (2) rel, t0 (9) rel    -> 1
    #   v2 (20): t2 (4) rel, t1 (8) not    -> (1/1) / 1 = 1
    #   v3 (31): t3 (5) rel, t2 (7) rel    -> 1
    assert s["img2txt"] == pytest.approx(1.0)
    # text queries, top 2 of the images at 0, 10, 20, 31:
    #   t0 (1): v0, v1 rel -> 1;  t1 (12): v1 rel, v2 not -> 1;  t2 (24): v2, v3 rel -> 1;  t3 (36): v3, v2 rel -> 1
    assert s["txt2img"] == pytest.approx(1.0)
    # with the 5th pair counted, v0's top 2 are t4 (0.2, label b: a miss) and t0 (1, a hit): AP (1/2) / 1 = 0.5;
    # v4 (50) as a query: t3 (14) rel, t2 (26) rel -> 1. So img2txt = (0.5 + 1 + 1 + 1 + 1) / 5.
    s5 = acmr_demo_scores(img, txt, y, k=2, n_items=5)
    assert s5["img2txt"] == pytest.approx(4.5 / 5)


def test_hand_computed_with_misses_and_a_query_without_hits():
    img = np.array([[0.0], [5.0], [9.0]], np.float32)
    txt = np.array([[4.0], [0.5], [20.0]], np.float32)
    y = np.array([0, 1, 2])
    s = acmr_demo_scores(img, txt, y, k=2, n_items=3)
    # image queries, top 2 texts (texts at 4, 0.5, 20):
    #   v0 (0): t1 (0.5) not, t0 (4) rel      -> precision at the hit 1/2, one hit  -> AP 0.5
    #   v1 (5): t0 (1) not, t1 (4.5) rel      -> AP 0.5
    #   v2 (9): t0 (5) not, t1 (8.5) not      -> no hit in the top 2                -> AP 0
    assert s["img2txt"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    # text queries, top 2 images (images at 0, 5, 9):
    #   t0 (4):   v1 (1) not, v0 (4) rel      -> 0.5
    #   t1 (0.5): v0 (0.5) not, v1 (4.5) rel  -> 0.5
    #   t2 (20):  v2 (11) rel                 -> 1
    assert s["txt2img"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert s["avg"] == pytest.approx((s["img2txt"] + s["txt2img"]) / 2)


def test_default_is_640_items_and_top_50():
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(700, 8)).astype(np.float32), rng.normal(size=(700, 8)).astype(np.float32)
    y = rng.integers(0, 10, 700)
    assert acmr_demo_scores(img, txt, y) == acmr_demo_scores(img[:640], txt[:640], y[:640], k=50, n_items=10_000)
    assert acmr_demo_scores(img, txt, y) != acmr_demo_scores(img, txt, y, n_items=700)


def test_cli_evaluate_protocol_acmr_demo(tmp_path, capsys):
    ds = make_synthetic()
    tr, te = ds.split == "train", ds.split == "test"
    np.savez(tmp_path / "f.npz", image_train=ds.image_features[tr], text_train=ds.text_features[tr], label_train=ds.labels[tr],
             image_test=ds.image_features[te], text_test=ds.text_features[te], label_test=ds.labels[te])
    out = tmp_path / "run"
    assert main(["train", "--dataset", "features", "--data-dir", str(tmp_path / "f.npz"), "--out", str(out),
                 "--epochs", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out), "--protocol", "acmr-demo"]) == 0
    table = capsys.readouterr().out
    assert "acmr-demo (L2, @50)" in table and "mAP@all (cosine)" in table
