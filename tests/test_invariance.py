"""The two invariance measures on constructed data whose answer is known."""
import numpy as np

from acmr_core.metrics import heldout_modality_probe, knn_mixing


def _interleaved(n, seed):
    """Images and texts drawn from one distribution: nothing tells them apart."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 16)), rng.normal(size=(n, 16))


def _separated(n, seed):
    """Two clouds far apart: every neighbour and every straight line gives the modality away."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 16)) + 6.0, rng.normal(size=(n, 16)) - 6.0


def test_mixing_near_one_when_interleaved_and_zero_when_separated():
    assert abs(knn_mixing(*_interleaved(400, 0)) - 1.0) < 0.1
    assert knn_mixing(*_separated(400, 0)) < 0.02


def test_probe_near_half_when_interleaved_and_one_when_separated():
    fit, held = _interleaved(400, 0), _interleaved(400, 1)
    assert abs(heldout_modality_probe(*fit, *held) - 0.5) < 0.08
    fit, held = _separated(400, 0), _separated(400, 1)
    assert heldout_modality_probe(*fit, *held) > 0.98


def test_mixing_sees_local_clumps_that_the_probe_misses():
    """Images and texts in separate tight clumps around shared class centres: no line separates the
    modalities globally, yet every neighbour is of the point's own modality."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16)) * 5
    y = np.arange(400) % 20
    offset = rng.normal(size=(20, 16))                     # a different image/text offset in every class
    img = centres[y] + offset[y] + 0.05 * rng.normal(size=(400, 16))
    txt = centres[y] - offset[y] + 0.05 * rng.normal(size=(400, 16))
    assert knn_mixing(img, txt) < 0.1
    half = np.arange(400) < 200
    assert heldout_modality_probe(img[half], txt[half], img[~half], txt[~half]) < 0.8


def test_mixing_excludes_the_point_itself_and_handles_small_k():
    img = np.array([[1.0, 0.0], [0.9, 0.1]])
    txt = np.array([[0.0, 1.0], [0.1, 0.9]])
    assert knn_mixing(img, txt, k=1) == 0.0               # each point's nearest other point is its own modality
    assert knn_mixing(img[:1], txt[:1], k=10) == 2.0       # with one neighbour of the other modality
