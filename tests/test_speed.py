"""The speed-ups compute the same thing as the plain forms they replace."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_synthetic

from acmr_core import losses as L
from acmr_core import metrics as M
from acmr_core.config import ACMRConfig
from acmr_core.model import Dropout, grad_reverse
from acmr_core.training import Trainer, add_reg_grad


def explicit_b3(sv, st, y, lam, mu):
    """The all-triplets L_imi as a b³ tensor: mean over valid (i, j, k) of d[i, j] + λ·relu(μ − d[i, k])."""
    same = L.same_label(y)
    valid = (same[:, :, None] & ~same[:, None, :]).to(sv.dtype)
    out = 0.0
    for d in (torch.cdist(sv, st), torch.cdist(st, sv)):
        terms = d[:, :, None] + lam * F.relu(mu - d[:, None, :])
        out = out + (terms * valid).sum() / valid.sum().clamp_min(1)
    return out


@pytest.mark.parametrize("kind", ["classes", "multi-hot", "multi-hot with empty rows"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_all_triplets_equals_explicit_b3(kind, seed):
    g = torch.Generator().manual_seed(seed)
    n, m = 24, 7
    sv = torch.randn(n, m, generator=g, dtype=torch.float64, requires_grad=True)
    st = torch.randn(n, m, generator=g, dtype=torch.float64, requires_grad=True)
    if kind == "classes":
        y = torch.randint(0, 4, (n,), generator=g)
    else:
        y = (torch.rand(n, 5, generator=g) < 0.3).long()
        if kind.endswith("empty rows"):
            y[:3] = 0
    lam, mu = 0.3, 3.5                          # μ near the typical distance: both hinge branches occur
    got = L.triplet_loss(sv, st, y, lam, mu, "all")
    want = explicit_b3(sv, st, y, lam, mu)
    listed = L.triplet_loss_explicit(sv, st, y, lam, mu)
    assert got.item() == pytest.approx(want.item(), rel=1e-9)
    assert got.item() == pytest.approx(listed.item(), rel=1e-9)
    g_got = torch.autograd.grad(got, (sv, st))
    g_want = torch.autograd.grad(want, (sv, st))
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10)


def test_closed_form_without_negatives_is_zero_with_a_gradient():
    sv = torch.randn(5, 3, requires_grad=True)
    st = torch.randn(5, 3)
    got = L.triplet_loss(sv, st, torch.zeros(5, dtype=torch.long), 0.1, 2.0, "all")
    assert got.item() == 0.0
    got.backward()
    assert torch.equal(sv.grad, torch.zeros_like(sv))


def test_other_samplers_still_pick_explicit_triplets():
    torch.manual_seed(0)
    sv, st = torch.randn(16, 4), torch.randn(16, 4)
    y = torch.randint(0, 3, (16,))
    d = L.pairwise_l2(sv, st)
    for name in ("hardest", "semihard", "random"):
        torch.manual_seed(1)
        got = L.triplet_loss(sv, st, y, 0.2, 2.0, name)
        torch.manual_seed(1)
        want = (L.triplet_terms(d, L.SAMPLERS[name](d, y), 0.2, 2.0)
                + L.triplet_terms(d.T, L.SAMPLERS[name](d.T, y), 0.2, 2.0))
        assert got.item() == pytest.approx(want.item(), rel=1e-6), name


def test_pairwise_l2_expansion_matches_cdist_and_has_a_safe_gradient():
    x = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    z = torch.randn(6, 5, dtype=torch.float64)
    torch.testing.assert_close(L.pairwise_l2(x, z), torch.cdist(x, z))
    d = L.pairwise_l2(x, x.detach())            # zero distances on the diagonal
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_analytic_reg_gradient_equals_autograd():
    torch.manual_seed(0)
    ws = [torch.randn(7, 4, requires_grad=True), torch.randn(3, 7, requires_grad=True), torch.zeros(2, 2, requires_grad=True)]
    (0.3 * L.reg_loss(ws)).backward()
    want = [w.grad.clone() for w in ws]
    for w in ws:
        w.grad = torch.ones_like(w) if w.shape == (7, 4) else None
    add_reg_grad(ws, [torch.linalg.matrix_norm(w.detach()) for w in ws], 0.3)
    torch.testing.assert_close(ws[0].grad, want[0] + 1)
    torch.testing.assert_close(ws[1].grad, want[1])
    assert torch.equal(ws[2].grad, torch.zeros(2, 2))       # ‖0‖ = 0: no gradient, no NaN


def reference_step(model, opt_g, opt_d, v, t, y, cfg, gamma):
    """One step written plainly (autograd L_reg, explicit triplets, two D forwards, plain Adam)."""
    sv, st = model.project_image(v), model.project_text(t)
    imd = L.label_loss(model.label_clf(sv), model.label_clf(st), y)
    imi = L.triplet_loss_explicit(sv, st, y, cfg.lam, cfg.mu)
    reg = L.reg_loss(model.projector_weights())
    adv, _ = L.adversarial_loss(model.modality_clf(grad_reverse(sv, gamma)), model.modality_clf(grad_reverse(st, gamma)))
    total = cfg.alpha * imi + cfg.beta * imd + cfg.reg_weight * reg + adv
    opt_g.zero_grad()
    opt_d.zero_grad()
    total.backward()
    torch.nn.utils.clip_grad_norm_(list(model.projector_parameters()), cfg.max_grad_norm)
    opt_g.step()
    d_loss, _ = L.adversarial_loss(model.modality_clf(sv.detach()), model.modality_clf(st.detach()))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    return total.item()


def test_trainer_step_equals_the_plain_step():
    cfg = ACMRConfig(seed=0, game="paper", dropout=0.0, probe_every=0, snapshot_size=0, reg_weight=0.05, max_grad_norm=0.5)
    tr = Trainer(make_synthetic(), cfg)
    ref = copy.deepcopy(tr.model)
    opt_g = torch.optim.Adam(list(ref.projector_parameters()), lr=cfg.lr, foreach=False)
    opt_d = torch.optim.Adam(ref.modality_clf.parameters(), lr=cfg.lr_disc, foreach=False)
    for step in range(3):
        idx = torch.arange(step * 32, step * 32 + 32)
        v, t, y = tr.v[idx], tr.t[idx], tr.y[idx]
        values, acc = tr.train_step(v, t, y, 0.2, step)
        want = reference_step(ref, opt_g, opt_d, v, t, y, cfg, 0.2)
        assert values["total"] == pytest.approx(want, rel=1e-5)
        assert set(values) == {"imd", "imi", "reg", "adv", "emb", "total"} and 0 <= acc <= 1
    for (name, a), b in zip(tr.model.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_dropout_is_inverted_dropout():
    torch.manual_seed(0)
    d = Dropout(0.5)
    x = torch.ones(200, 500)
    y = d(x)
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    assert abs((y == 0).float().mean().item() - 0.5) < 0.01
    d.eval()
    assert torch.equal(d(x), x)
    assert isinstance(d, torch.nn.Dropout)


def test_sorted_relevance_equals_argsort_when_scores_are_apart():
    rng = np.random.default_rng(0)
    scores = rng.permuted(np.tile(np.arange(60, dtype=np.float32), (40, 1)), axis=1) / 7.0   # distinct per row
    rel = rng.random((40, 60)) < 0.3
    want = np.take_along_axis(rel, np.argsort(-scores, axis=1), axis=1).astype(np.float32)
    np.testing.assert_array_equal(M.ranked_relevance(scores, rel), want)
    scores = rng.normal(size=(50, 80)).astype(np.float32)        # near-ties may swap: AP within rounding
    rel = rng.random((50, 80)) < 0.2
    r = np.take_along_axis(rel, np.argsort(-scores, axis=1), axis=1).astype(np.float32)
    want_ap = (np.cumsum(r, 1) / np.arange(1, 81) * r).sum(1) / np.maximum(r.sum(1), 1)
    np.testing.assert_allclose(M.average_precision(scores, rel), want_ap, atol=1e-6)
