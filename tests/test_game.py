"""The minimax game: every game trains, adversary weight 0 is no adversary, the paper's game hands the projectors
the reversed gradient, and the default game mixes the modalities on a problem with a built-in modality offset."""
import numpy as np
import pytest
import torch
from conftest import make_synthetic

from acmr_core import losses as L
from acmr_core.config import GAMES, ACMRConfig, ConfigError
from acmr_core.metrics import heldout_modality_probe, knn_mixing
from acmr_core.model import ACMR, GAME_RULES
from acmr_core.training import Trainer, train

SMALL = dict(epochs=3, image_layers=[32], text_layers=[32], common_dim=16, probe_every=0, snapshot_size=0)


def test_every_game_has_help_and_rules_and_an_unknown_one_is_refused():
    assert "paper" in GAMES and ACMRConfig().game in GAMES and set(GAMES) == set(GAME_RULES)
    assert ACMRConfig().game != "paper"                  # the default is the game chosen on validation
    assert all(isinstance(h, str) and len(h) > 30 for h in GAMES.values())
    with pytest.raises(ConfigError, match="'game'"):
        ACMRConfig(game="chess")


@pytest.mark.parametrize("game", list(GAMES))
def test_each_game_trains_with_finite_losses(game):
    r = train(make_synthetic(n=200), ACMRConfig(game=game, seed=0, disc_steps=2, **SMALL))
    assert r.error is None
    for h in r.history[1:]:
        assert all(np.isfinite(h[k]) for k in ("loss_total", "loss_adv", "loss_emb")), (game, h)
    assert np.isfinite(r.history[-1]["mixing"])


@pytest.mark.parametrize("game", ["penalty", "paper", "confusion", "lipschitz_conditional"])
def test_weight_zero_means_no_effect_on_the_projectors(game):
    """γ max = 0 with the adversary on trains the very same projectors as no adversary at all."""
    off = train(make_synthetic(n=200), ACMRConfig(game=game, seed=1, use_adversarial=False, **SMALL))
    zero = train(make_synthetic(n=200), ACMRConfig(game=game, seed=1, grl_max=0.0, **SMALL))
    for name, a in off.model.state_dict().items():
        if not name.startswith("modality_clf"):
            assert torch.equal(a, zero.model.state_dict()[name]), (game, name)


def test_the_papers_game_hands_the_projectors_the_reversed_gradient(synthetic):
    """In the trainer's own step for game 'paper', the adversarial term's gradient on θ_V, θ_T is -γ·∂L_adv/∂θ."""
    tr = Trainer(synthetic, ACMRConfig(game="paper", seed=0, image_layers=[16], text_layers=[16], common_dim=8))
    m, v, t, y, gamma = tr.model, tr.v[:32], tr.t[:32], tr.y[:32], 0.4
    m.train(False)                                       # no dropout: both passes see the same network

    def proj_grads(term):
        m.zero_grad()
        term().backward()
        return [p.grad.clone() for p in [*m.image_proj.parameters(), *m.text_proj.parameters()]]

    def s():
        return torch.cat([m.project_image(v), m.project_text(t)])

    fooled = proj_grads(lambda: tr._fool_term(s(), torch.cat([y, y]), 32, gamma)[2])
    plain = proj_grads(lambda: L.adversarial_loss(*m.modality_clf(s()).split(32))[0])
    assert any(g.abs().sum() > 0 for g in plain)
    for a, b in zip(fooled, plain):
        assert torch.allclose(a, -gamma * b, atol=1e-6)


def test_gradient_penalty_is_zero_for_a_constant_d_and_positive_otherwise():
    s = torch.randn(12, 5)
    flat = torch.nn.Linear(5, 2)
    torch.nn.init.zeros_(flat.weight)
    assert L.gradient_penalty(lambda x, y: flat(x), s).item() == 0.0
    steep = torch.nn.Linear(5, 2)
    assert L.gradient_penalty(lambda x, y: steep(x), s).item() > 0


def test_conditional_discriminator_sees_the_label_and_lipschitz_one_is_spectral_normalised():
    torch.manual_seed(0)
    m = ACMR(6, 4, 3, ACMRConfig(game="lipschitz_conditional", common_dim=5, disc_layers=[8]))
    s = torch.randn(10, 5)
    zeros, ones = torch.zeros(10, dtype=torch.long), torch.ones(10, dtype=torch.long)
    assert not torch.allclose(m.modality_clf(s, zeros), m.modality_clf(s, ones))
    m.modality_clf.train()
    for _ in range(50):                                   # power iterations converge in training mode
        m.modality_clf(s, zeros)
    for layer in m.modality_clf.net:
        if isinstance(layer, torch.nn.Linear):
            assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, abs=0.02)


def test_a_config_saved_before_games_existed_plays_the_papers_game():
    old = {k: v for k, v in ACMRConfig().to_dict().items() if k not in ("game", "disc_steps", "disc_penalty")}
    assert ACMRConfig.from_dict(old).game == "paper"


def test_confusion_loss_is_minimal_at_fifty_fifty():
    even = torch.zeros(4, 2)
    assert L.confusion_loss(even, even).item() == pytest.approx(np.log(2), rel=1e-6)
    sure = torch.tensor([[5.0, -5.0]] * 4)
    assert L.confusion_loss(sure, sure).item() > 4


@pytest.mark.slow
def test_the_default_game_mixes_modalities_that_start_apart():
    """make_synthetic gives every image an offset of +3 in its own space: without an adversary the two
    modalities stay apart locally; the default game (same seed, same everything else) mixes them."""
    got = {}
    for adv, game in ((False, ACMRConfig().game), (True, ACMRConfig().game), ("paper", "paper")):
        ds = make_synthetic(n=600, seed=0)
        cfg = ACMRConfig(seed=0, epochs=8, game=game, use_adversarial=bool(adv), image_layers=[64], text_layers=[64],
                         common_dim=16, lr=1e-3, probe_every=0, snapshot_size=0, patience=0)
        tr = Trainer(ds, cfg)
        r = tr.run()
        idx, fit = ds.indices("test"), tr.train_idx
        img, txt = r.model.embed(ds.image_features[idx], "image"), r.model.embed(ds.text_features[idx], "text")
        probe = heldout_modality_probe(r.model.embed(ds.image_features[fit], "image"),
                                       r.model.embed(ds.text_features[fit], "text"), img, txt)
        got[adv] = (knn_mixing(img, txt), probe)
    assert got[True][0] > got[False][0] + 0.05, got
    assert got[True][1] <= got[False][1] + 0.02, got
    # what the app teaches: the paper's game fools its D by segregating the modalities locally
    assert got["paper"][0] < got[False][0] - 0.05, got
