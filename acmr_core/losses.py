"""The loss terms of ACMR as small composable functions.

L_emb = α·L_imi + β·L_imd + w·L_reg   (projectors minimise L_emb - γ·L_adv, D minimises L_adv;
                                        with the confusion game they minimise L_emb + γ·L_conf)

Triplet samplers ("miners") are separate from the triplet loss, in the spirit of pytorch-metric-learning:
a sampler picks (anchor, positive, negative) index triples inside a batch; the loss scores them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# --- L_imd: label prediction (intra-modal discrimination) --------------------------------------


def label_loss(logits_v: torch.Tensor, logits_t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_imd = -(1/n) Σ y_i·(log p̂(v_i) + log p̂(t_i)). y: class indices (softmax) or multi-hot (sigmoid/BCE)."""
    if y.ndim == 1:
        return F.cross_entropy(logits_v, y) + F.cross_entropy(logits_t, y)
    y = y.float()
    return F.binary_cross_entropy_with_logits(logits_v, y) + F.binary_cross_entropy_with_logits(logits_t, y)


# --- triplet samplers ---------------------------------------------------------------------------


def same_label(y: torch.Tensor) -> torch.Tensor:
    """(n, n) bool: items i and j share a label (any shared label for multi-hot)."""
    if y.ndim == 1:
        return y[:, None] == y[None, :]
    y = y.float()
    return (y @ y.T) > 0


def all_triplets(dist: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Every valid (anchor i, positive j, negative k): y_j shares a label with y_i, y_k does not."""
    same = same_label(y)
    valid = same[:, :, None] & ~same[:, None, :]
    return valid.nonzero()


def hardest_negative(dist: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """For each (anchor, positive) pair, the closest negative of the other modality."""
    same = same_label(y)
    neg_d = dist.masked_fill(same, float("inf"))
    k = neg_d.argmin(1)
    has_neg = (~same).any(1)
    pairs = (same & has_neg[:, None]).nonzero()
    return torch.stack([pairs[:, 0], pairs[:, 1], k[pairs[:, 0]]], 1)


def semihard_negative(dist: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Negatives farther than the positive but within the margin (FaceNet); all valid when none are."""
    t = all_triplets(dist, y)
    if len(t) == 0:
        return t
    dp, dn = dist[t[:, 0], t[:, 1]], dist[t[:, 0], t[:, 2]]
    keep = (dn > dp) & (dn < dp + margin)
    return t[keep] if keep.any() else t


def random_negative(dist: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """For each (anchor, positive) pair, one random negative (seeded by torch's global generator)."""
    same = same_label(y)
    w = (~same).float()
    has_neg = w.sum(1) > 0
    k = torch.zeros(len(y), dtype=torch.long, device=y.device)
    if has_neg.any():
        k[has_neg] = torch.multinomial(w[has_neg], 1).squeeze(1)
    pairs = (same & has_neg[:, None]).nonzero()
    return torch.stack([pairs[:, 0], pairs[:, 1], k[pairs[:, 0]]], 1)


SAMPLERS = {"all": all_triplets, "hardest": hardest_negative, "semihard": semihard_negative, "random": random_negative}


# --- L_imi: structure preservation (inter-modal invariance) ------------------------------------


def triplet_terms(dist: torch.Tensor, triplets: torch.Tensor, lam: float, mu: float) -> torch.Tensor:
    """Mean over triplets of  l2(a, p) + λ·max(0, μ - l2(a, n))  (the paper's form, averaged)."""
    if len(triplets) == 0:
        return dist.sum() * 0.0
    a, p, n = triplets.unbind(1)
    return (dist[a, p] + lam * F.relu(mu - dist[a, n])).mean()


def pairwise_l2(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(n, n) Euclidean distances ‖x_i - z_j‖₂ = sqrt(‖x_i‖² + ‖z_j‖² - 2·x_i·z_j), with a safe gradient at 0.

    The expansion is one matrix product (no (n, n, m) difference tensor); rounding below zero is clamped."""
    d2 = torch.addmm((x * x).sum(1, keepdim=True) + (z * z).sum(1)[None, :], x, z.T, alpha=-2.0)
    return (d2.clamp_min(0.0) + 1e-12).sqrt()


def all_triplets_closed_form(dist: torch.Tensor, same: torch.Tensor, lam: float, mu: float) -> torch.Tensor:
    """L_imi,V + L_imi,T over ALL valid triplets, both directions, in O(n²) instead of O(n³).

    With image anchors, dist[i, j] = l2(v_i, t_j); text anchors use dist.T. For anchor i let P_i be its
    positives (same label, the pair itself included) and N_i its negatives. The mean over valid (i, j, k) of
    d[i, j] + λ·relu(μ − d[i, k]) factorises, because j and k vary independently for a fixed anchor:
        Σ_(i,j,k) = Σ_i ( |N_i|·Σ_(j∈P_i) d[i, j]  +  λ·|P_i|·Σ_(k∈N_i) relu(μ − d[i, k]) ),
    divided by C = Σ_i |P_i|·|N_i|. `same` is symmetric, so both directions share C, and the text-anchor sums
    are column sums of the same matrix: weight d[i, j] by (|N_i| + |N_j|) on positives and relu(μ − d[i, j])
    by (|P_i| + |P_j|) on negatives. Equals `triplet_terms(dist, all_triplets(...)) + triplet_terms(dist.T, ...)`
    (tests/test_speed.py checks it), 0 (with a gradient) when there are no valid triplets."""
    pos = same.to(dist.dtype)
    n_pos = pos.sum(1)
    n_neg = len(pos) - n_pos
    count = (n_pos * n_neg).sum()
    w_pos = pos * (n_neg[:, None] + n_neg[None, :])
    w_neg = (1.0 - pos) * (n_pos[:, None] + n_pos[None, :])
    total = (dist * w_pos).sum() + lam * (torch.relu(mu - dist) * w_neg).sum()
    return total / count.clamp_min(1.0)


def triplet_loss(sv: torch.Tensor, st: torch.Tensor, y: torch.Tensor, lam: float, mu: float,
                 sampler: str = "all") -> torch.Tensor:
    """L_imi = L_imi,V + L_imi,T: image anchors against texts, then text anchors against images.

    sampler "all" uses the closed form (`all_triplets_closed_form`); the others pick explicit triplets."""
    d_vt = pairwise_l2(sv, st)           # d_vt[i, j] = l2(v_i, t_j)
    if sampler == "all":
        return all_triplets_closed_form(d_vt, same_label(y), lam, mu)
    pick = SAMPLERS[sampler]
    d_tv = d_vt.T
    with torch.no_grad():
        t_v, t_t = pick(d_vt, y), pick(d_tv, y)
    return triplet_terms(d_vt, t_v, lam, mu) + triplet_terms(d_tv, t_t, lam, mu)


def triplet_loss_explicit(sv: torch.Tensor, st: torch.Tensor, y: torch.Tensor, lam: float, mu: float) -> torch.Tensor:
    """The all-triplets L_imi from the explicit (anchor, positive, negative) list: the reference for tests."""
    d_vt = pairwise_l2(sv, st)
    return (triplet_terms(d_vt, all_triplets(d_vt, y), lam, mu)
            + triplet_terms(d_vt.T, all_triplets(d_vt.T, y), lam, mu))


# --- L_reg and L_adv ------------------------------------------------------------------------------


def reg_loss(weights: list[torch.Tensor]) -> torch.Tensor:
    """L_reg = Σ_l (‖W_v^l‖_F + ‖W_t^l‖_F)."""
    return sum(torch.linalg.matrix_norm(w) for w in weights)


def modality_labels(n_img: int, n_txt: int, device=None) -> torch.Tensor:
    """The modality classifier's targets: images are class 0, texts are class 1."""
    return torch.cat([torch.zeros(n_img, dtype=torch.long, device=device), torch.ones(n_txt, dtype=torch.long, device=device)])


def adversarial_loss(logits_v: torch.Tensor, logits_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L_adv: cross-entropy of the modality prediction over both modalities; returns (loss, accuracy)."""
    logits = torch.cat([logits_v, logits_t])
    target = modality_labels(len(logits_v), len(logits_t), logits.device)
    acc = (logits.argmax(1) == target).float().mean()
    return F.cross_entropy(logits, target), acc


def confusion_loss(logits_v: torch.Tensor, logits_t: torch.Tensor) -> torch.Tensor:
    """L_conf: cross-entropy of D's prediction against the uniform target (½ image, ½ text), the "domain
    confusion" of Tzeng et al. (2015). Minimal (ln 2) when D is unsure about every item."""
    return -F.log_softmax(torch.cat([logits_v, logits_t]), 1).mean()


def gradient_penalty(disc, s: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """R = mean ‖∂(D's text logit − image logit)/∂s‖² at the data points (zero-centred, Mescheder et al. 2018):
    a D that is flat around the data cannot be fooled by small reshuffles of the points."""
    s = s.detach().requires_grad_(True)
    out = disc(s, y)
    (g,) = torch.autograd.grad((out[:, 1] - out[:, 0]).sum(), s, create_graph=True)
    return g.pow(2).sum(1).mean()
