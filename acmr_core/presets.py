"""Named settings, defined once: each preset is a set of config fields changed from ACMRConfig's defaults.

    python -m acmr_core train --preset demo ...      (flags given explicitly override the preset)
    preset_config("demo", epochs=12)                 (the same in code; the dashboard starts from "demo")

`demo`   what the dashboard starts with: a live run in seconds on the built-in shapes data.
`paper`  the paper's stated settings (Wang et al., 2017); what the paper does not state keeps the default.
Fields a preset does not name (for instance the adversary's game) keep ACMRConfig's defaults, so a preset
follows changes of those defaults.
"""
from __future__ import annotations

from .config import ACMRConfig, ConfigError

PRESETS: dict[str, dict] = {
    "demo": {
        "image_layers": [256],
        "text_layers": [256],
        "lr": 3e-4,
        "epochs": 6,
        "patience": 0,
    },
    "paper": {
        "image_layers": [2000],
        "text_layers": [500],
        "common_dim": 200,
        "disc_layers": [50],
        "batch_size": 64,
        "k": 5,
        "lam": 0.05,
    },
}

DESCRIPTIONS: dict[str, str] = {
    "demo": ("6 epochs, every one run (patience 0, so the maps at the chosen epochs all exist), 256-unit hidden "
             "layers and lr 3e-4: the shapes inputs are 1,780-d and 2,000-d, so the paper's 2,000-unit first layer "
             "made each step several times dearer and scored lower on shapes' validation split (best val mAP@all "
             "0.716 in 10 epochs vs 0.736 in 6, bench/tune_demo.py); 3x the default rate reaches the plateau "
             "in the few epochs a demo has (1e-3 peaked at epoch 2 and then fell)."),
    "paper": ("the paper's stated settings: f_V d_v -> 2000 -> 200, f_T d_t -> 500 -> 200, D 200 -> 50 -> 2, batch 64, "
              "k = 5 projector steps per discriminator step, lambda = 0.05; unstated ones (mu, lr, dropout, gamma) "
              "keep the defaults chosen on validation."),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset_fields(name: str | None) -> dict:
    """The fields a preset changes (a fresh copy; {} for None)."""
    if name is None:
        return {}
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose one of {', '.join(PRESETS)}")
    return {k: (list(v) if isinstance(v, list) else v) for k, v in PRESETS[name].items()}


def preset_config(name: str | None, **overrides) -> ACMRConfig:
    """ACMRConfig with the preset's fields, then `overrides` on top (validated)."""
    return ACMRConfig().replace(**{**preset_fields(name), **overrides})
