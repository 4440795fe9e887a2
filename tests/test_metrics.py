"""mAP, precision@k and the modality probe."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from acmr_core import metrics as M


def test_map_all_agrees_with_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(40, 8)), rng.normal(size=(60, 8))
    yq, yg = rng.integers(0, 4, 40), rng.integers(0, 4, 60)
    sims = M.similarity(q, g)
    want = np.mean([average_precision_score(yg == yq[i], sims[i]) for i in range(40)])
    assert M.mean_average_precision(q, g, yq, yg) == pytest.approx(want, abs=1e-5)
    # and under L2 distance
    d = -np.linalg.norm(q[:, None] - g[None], axis=2)
    want_l2 = np.mean([average_precision_score(yg == yq[i], d[i]) for i in range(40)])
    assert M.mean_average_precision(q, g, yq, yg, metric="l2") == pytest.approx(want_l2, abs=1e-5)


def test_cosine_similarity_is_the_full_matrix():
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    s = M.similarity(q, g)
    for i in range(5):
        for j in range(7):
            assert s[i, j] == pytest.approx(q[i] @ g[j] / np.linalg.norm(q[i]) / np.linalg.norm(g[j]), abs=1e-5)


def test_map_at_k_hand_example():
    # one query, gallery ranked by score: relevant at ranks 1 and 3 (and one more beyond k=3)
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    rel = np.array([[True, False, True, True]])
    ap3 = M.average_precision(scores, rel, k=3).item()
    assert ap3 == pytest.approx((1 / 1 + 2 / 3) / 2)
    ap_all = M.average_precision(scores, rel).item()
    assert ap_all == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_multilabel_relevance_is_any_shared_label():
    yq = np.array([[1, 0, 1]])
    yg = np.array([[0, 0, 1], [0, 1, 0], [1, 1, 0]])
    assert M.relevance(yq, yg).tolist() == [[True, False, True]]


def test_precision_at_k_and_perfect_retrieval():
    y = np.array([0, 0, 1, 1])
    feats = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=float)
    assert M.precision_at_k(feats, feats, y, y, k=2) == pytest.approx(1.0)
    s = M.retrieval_scores(feats, feats, y)
    assert s["img2txt"] == pytest.approx(1.0) and s["avg"] == pytest.approx(1.0)


def test_modality_gap():
    a = np.array([[1.0, 0.0]] * 3)
    assert M.modality_gap(a, a) == pytest.approx(0.0)
    assert M.modality_gap(a, np.array([[0.0, 1.0]] * 3)) == pytest.approx(np.sqrt(2))


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_both_directions_from_one_matrix_match_separate_rankings(metric):
    rng = np.random.default_rng(2)
    img, txt, y = rng.normal(size=(50, 6)), rng.normal(size=(50, 6)), rng.integers(0, 5, 50)
    s = M.retrieval_scores(img, txt, y, metric=metric)
    assert s["img2txt"] == pytest.approx(M.mean_average_precision(img, txt, y, y, metric=metric), abs=1e-6)
    assert s["txt2img"] == pytest.approx(M.mean_average_precision(txt, img, y, y, metric=metric), abs=1e-6)
    assert s["img2txt"] != pytest.approx(s["txt2img"], abs=1e-6)   # the two directions really differ here
