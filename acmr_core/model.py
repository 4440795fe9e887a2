"""The ACMR networks: two feature projectors f_V, f_T into the common space S, a label classifier on S,
and a modality classifier D behind a gradient reversal layer (GRL)."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .config import GAMES, ACMRConfig


class Game(NamedTuple):
    """What a game (config.GAMES) changes: D's form, and what the projectors are trained to do to it."""
    lipschitz: bool = False      # D spectral-normalised (1-Lipschitz)
    conditional: bool = False    # D also sees the label y
    confusion: bool = False      # projectors minimise γ·L_conf (D pushed to 50/50) instead of ascending L_adv via the GRL
    penalty: bool = False        # D is trained with a zero-centred gradient penalty (weight config.disc_penalty)


GAME_RULES = {
    "penalty": Game(penalty=True),
    "paper": Game(),
    "conditional_penalty": Game(conditional=True, penalty=True),
    "lipschitz": Game(lipschitz=True),
    "lipschitz_conditional": Game(lipschitz=True, conditional=True),
    "conditional": Game(conditional=True),
    "confusion": Game(confusion=True),
}
assert set(GAME_RULES) == set(GAMES), "config.GAMES and model.GAME_RULES must name the same games"


class GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by -γ (Ganin & Lempitsky's GRL)."""

    @staticmethod
    def forward(ctx, x, gamma):
        ctx.gamma = float(gamma)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.gamma * grad, None


def grad_reverse(x: torch.Tensor, gamma: float) -> torch.Tensor:
    return GradReverse.apply(x, gamma)


def grl_weight(progress: float, schedule: str = "dann", gamma_max: float = 1.0) -> float:
    """γ at training progress p in [0, 1]. DANN: γ_p = 2/(1+exp(-10p)) - 1."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "dann":
        return gamma_max * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)
    if schedule == "linear":
        return gamma_max * p
    return gamma_max


class Dropout(nn.Dropout):
    """Inverted dropout, as nn.Dropout: in training, zero each unit with probability p and scale the rest by
    1/(1-p). The mask comes from torch.rand (vectorised) rather than bernoulli_ (about 2.5x slower on CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))
        return x * keep


def mlp(sizes: list[int], act=nn.Tanh, last_act: bool = True, dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        last = i == len(sizes) - 2
        if not last or last_act:
            layers.append(act())
        if dropout and not last:
            layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """The modality classifier D(s; θ_D): m → 50 → 2 logits (image, text).

    conditional: D also sees the label y (one-hot or multi-hot, appended to s), so it can tell the modalities
    apart *within* a class. lipschitz: every layer is spectral-normalised (largest singular value 1), so D is a
    1-Lipschitz function of s and its gradient on the projectors stays smooth."""

    def __init__(self, dim: int, layers: list[int], num_classes: int = 0, lipschitz: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.net = mlp([dim + num_classes, *layers, 2], act=nn.ReLU, last_act=False)
        if lipschitz:
            for i, layer in enumerate(self.net):
                if isinstance(layer, nn.Linear):
                    self.net[i] = nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, s: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            onehot = nn.functional.one_hot(y, self.num_classes) if y.ndim == 1 else y
            s = torch.cat([s, onehot.to(s.dtype)], 1)
        return self.net(s)


class ACMR(nn.Module):
    """f_V: d_v → hidden → m, f_T: d_t → hidden → m (tanh), label classifier m → c, D: m → 50 → 2."""

    def __init__(self, d_v: int, d_t: int, num_classes: int, cfg: ACMRConfig):
        super().__init__()
        self.d_v, self.d_t, self.num_classes = d_v, d_t, num_classes
        self.image_proj = mlp([d_v, *cfg.image_layers, cfg.common_dim], dropout=cfg.dropout)   # f_V(v; θ_V)
        self.text_proj = mlp([d_t, *cfg.text_layers, cfg.common_dim], dropout=cfg.dropout)     # f_T(t; θ_T)
        self.label_clf = nn.Linear(cfg.common_dim, num_classes)                                # θ_imd
        game = GAME_RULES[cfg.game]
        self.modality_clf = Discriminator(cfg.common_dim, cfg.disc_layers, num_classes if game.conditional else 0,
                                          game.lipschitz)                                                  # D(·; θ_D)
        # input standardisation (set from the training split by `set_input_stats`; identity until then)
        for name, d in (("v", d_v), ("t", d_t)):
            self.register_buffer(f"{name}_mean", torch.zeros(d))
            self.register_buffer(f"{name}_std", torch.ones(d))

    def set_input_stats(self, v: torch.Tensor, t: torch.Tensor) -> None:
        """z-score inputs with the training split's statistics (stored in the checkpoint with the weights)."""
        for name, x in (("v", v), ("t", t)):
            getattr(self, f"{name}_mean").copy_(x.mean(0))
            getattr(self, f"{name}_std").copy_(x.std(0).clamp(min=1e-6))

    def project_image(self, v: torch.Tensor) -> torch.Tensor:
        """f_V(v): image features → common space."""
        return self.image_proj((v - self.v_mean) / self.v_std)

    def project_text(self, t: torch.Tensor) -> torch.Tensor:
        """f_T(t): text features → common space."""
        return self.text_proj((t - self.t_mean) / self.t_std)

    @torch.inference_mode()
    def embed(self, features, modality: str, batch: int = 4096):
        """Numpy features of one modality → numpy common-space embeddings (eval mode, no gradient)."""
        import numpy as np

        was = self.training
        self.eval()
        proj = self.project_image if modality == "image" else self.project_text
        dev = self.v_mean.device
        out = [proj(torch.as_tensor(np.asarray(features[i:i + batch]), dtype=torch.float32, device=dev)).cpu().numpy()
               for i in range(0, len(features), batch)]
        self.train(was)
        return np.concatenate(out) if out else np.zeros((0, self.label_clf.in_features), np.float32)

    def projector_parameters(self):
        """θ_V, θ_T and θ_imd: what the embedding step updates."""
        for m in (self.image_proj, self.text_proj, self.label_clf):
            yield from m.parameters()

    def projector_weights(self):
        """The projector weight matrices W_v^l, W_t^l that L_reg penalises."""
        return [m.weight for proj in (self.image_proj, self.text_proj) for m in proj if isinstance(m, nn.Linear)]


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
