"""The reversal layer, the minimax game's gradients, and the loss terms."""
import numpy as np
import pytest
import torch

from acmr_core import losses as L
from acmr_core.config import ACMRConfig
from acmr_core.model import ACMR, grad_reverse, grl_weight
from acmr_core.training import Trainer


def test_grl_is_identity_forward_and_flips_and_scales_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    w = torch.randn(4, 3)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.7 * w)


def test_grl_schedule_dann():
    assert grl_weight(0.0) == pytest.approx(0.0)
    assert grl_weight(1.0) == pytest.approx(2 / (1 + np.exp(-10)) - 1)
    assert grl_weight(0.5, "linear", 2.0) == pytest.approx(1.0)
    assert grl_weight(0.1, "constant", 0.3) == pytest.approx(0.3)


def _model():
    torch.manual_seed(0)
    return ACMR(6, 4, 3, ACMRConfig(image_layers=[8], text_layers=[8], common_dim=5, disc_layers=[4], dropout=0.0))


def test_projectors_receive_the_reversed_adversarial_gradient():
    """∂L_adv/∂θ_V through the GRL equals -γ times the gradient without reversal."""
    m, v, t = _model(), torch.randn(10, 6), torch.randn(10, 4)
    gamma = 0.6

    def grads(reverse: bool):
        m.zero_grad()
        sv, st = m.project_image(v), m.project_text(t)
        if reverse:
            sv, st = grad_reverse(sv, gamma), grad_reverse(st, gamma)
        loss, _ = L.adversarial_loss(m.modality_clf(sv), m.modality_clf(st))
        loss.backward()
        return ([p.grad.clone() for p in m.image_proj.parameters()] + [p.grad.clone() for p in m.text_proj.parameters()],
                [p.grad.clone() for p in m.modality_clf.parameters()])

    proj_rev, disc_rev = grads(True)
    proj_plain, disc_plain = grads(False)
    assert any(g.abs().sum() > 0 for g in proj_plain)
    for a, b in zip(proj_rev, proj_plain):
        assert torch.allclose(a, -gamma * b, atol=1e-6)
    for a, b in zip(disc_rev, disc_plain):  # D itself still descends L_adv
        assert torch.allclose(a, b, atol=1e-6)


def test_training_step_moves_projectors_against_the_discriminator(synthetic):
    """One projector step with only L_adv switched on raises L_adv (the projectors fool D)."""
    cfg = ACMRConfig(use_label=False, use_triplet=False, reg_weight=0.0, lr=1e-2, k=1000, seed=1)
    tr = Trainer(synthetic, cfg)
    v, t = tr.v[:64], tr.t[:64]

    def adv():
        with torch.no_grad():
            m = tr.model
            return L.adversarial_loss(m.modality_clf(m.project_image(v)), m.modality_clf(m.project_text(t)))[0].item()

    before = adv()
    for s in range(1, 6):  # step numbers not divisible by k: D is not stepped
        tr.train_step(v, t, tr.y[:64], gamma=1.0, step=s)
    assert adv() > before


def test_discriminator_step_updates_only_its_parameters_with_correct_labels(synthetic):
    cfg = ACMRConfig(use_label=False, use_triplet=False, reg_weight=0.0, lr=1e-2, lr_disc=1e-2, k=1, seed=2)
    tr = Trainer(synthetic, cfg)
    m = tr.model
    proj_before = [p.detach().clone() for p in m.projector_parameters()]
    disc_before = [p.detach().clone() for p in m.modality_clf.parameters()]
    sv, st = m.project_image(tr.v).detach(), m.project_text(tr.t).detach()
    # run only the discriminator's own step, as the trainer does every k-th step
    for _ in range(200):
        loss, acc = L.adversarial_loss(m.modality_clf(sv), m.modality_clf(st))
        tr.opt_d.zero_grad()
        loss.backward()
        tr.opt_d.step()
    assert all(torch.equal(a, b) for a, b in zip(proj_before, m.projector_parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, m.modality_clf.parameters()))
    # trained on correct labels: images are predicted as class 0, texts as class 1
    with torch.no_grad():
        assert (m.modality_clf(sv).argmax(1) == 0).float().mean() > 0.9
        assert (m.modality_clf(st).argmax(1) == 1).float().mean() > 0.9
    assert L.modality_labels(2, 3).tolist() == [0, 0, 1, 1, 1]


def test_trainer_step_keeps_discriminator_out_of_projector_optimizer(synthetic):
    tr = Trainer(synthetic, ACMRConfig(seed=0))
    g_params = {id(p) for group in tr.opt_g.param_groups for p in group["params"]}
    d_params = {id(p) for group in tr.opt_d.param_groups for p in group["params"]}
    assert not g_params & d_params
    assert d_params == {id(p) for p in tr.model.modality_clf.parameters()}
    assert {id(p) for p in tr.model.label_clf.parameters()} <= g_params


def test_label_classifier_is_trained(synthetic):
    tr = Trainer(synthetic, ACMRConfig(epochs=3, seed=0, probe_every=0, lr=1e-3))
    before = [p.detach().clone() for p in tr.model.label_clf.parameters()]
    result = tr.run()
    assert any(not torch.equal(a, b) for a, b in zip(before, result.model.label_clf.parameters()))
    assert result.history[-1]["loss_imd"] < result.history[1]["loss_imd"]


def test_triplet_hand_computed():
    """Two images and two texts on a line; labels 0,1. l2 distances are easy to compute by hand."""
    sv = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    st = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    y = torch.tensor([0, 1])
    # image anchors: (v0,t0,t1): d(v0,t0)=1, d(v0,t1)=5 -> 1 + lam*max(0, mu-5); (v1,t1,t0): 4 + lam*max(0, mu-2)
    # text anchors:  (t0,v0,v1): 1 + lam*max(0, mu-2);  (t1,v1,v0): 4 + lam*max(0, mu-5)
    lam, mu = 0.5, 3.0
    want_v = ((1 + 0) + (4 + 0.5 * 1)) / 2
    want_t = ((1 + 0.5 * 1) + (4 + 0)) / 2
    got = L.triplet_loss(sv, st, y, lam, mu, "all")
    assert got.item() == pytest.approx(want_v + want_t, rel=1e-5)
    assert L.triplet_loss(sv, st, y, lam, mu, "hardest").item() == pytest.approx(want_v + want_t, rel=1e-5)


def test_samplers_pick_valid_triplets():
    torch.manual_seed(0)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
    d = torch.rand(8, 8)
    for name, pick in L.SAMPLERS.items():
        t = pick(d, y)
        assert len(t) > 0, name
        assert (y[t[:, 0]] == y[t[:, 1]]).all() and (y[t[:, 0]] != y[t[:, 2]]).all(), name
    hard = L.hardest_negative(d, y)
    for a, _, n in hard.tolist():
        negs = [j for j in range(8) if y[j] != y[a]]
        assert d[a, n] == min(d[a, j] for j in negs)


def test_pairwise_l2_is_a_matrix_not_rowwise():
    x, z = torch.randn(5, 3), torch.randn(7, 3)
    d = L.pairwise_l2(x, z)
    assert d.shape == (5, 7)
    for i in range(5):
        for j in range(7):
            assert d[i, j].item() == pytest.approx((x[i] - z[j]).norm().item(), abs=1e-5)


def test_label_loss_multilabel_uses_bce():
    logits = torch.zeros(3, 4)
    y = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    assert L.label_loss(logits, logits, y).item() == pytest.approx(2 * np.log(2), rel=1e-5)
    yi = torch.tensor([0, 1, 2])
    assert L.label_loss(logits, logits, yi).item() == pytest.approx(2 * np.log(4), rel=1e-5)


def test_reg_loss_is_sum_of_frobenius_norms():
    m = _model()
    want = sum(w.detach().pow(2).sum().sqrt() for w in m.projector_weights())
    assert L.reg_loss(m.projector_weights()).item() == pytest.approx(want.item(), rel=1e-5)
    assert len(m.projector_weights()) == 4
