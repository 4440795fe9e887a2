"""Presets are defined once (acmr_core/presets.py) and reach the CLI and the dashboard unchanged."""
import json

import numpy as np
import pytest
from conftest import make_synthetic

from acmr_core.__main__ import main
from acmr_core.config import ACMRConfig, ConfigError
from acmr_core.presets import DESCRIPTIONS, PRESETS, preset_config, preset_fields


def test_every_preset_is_a_valid_config_with_a_description():
    names = {f for f in ACMRConfig().to_dict()}
    for name, changes in PRESETS.items():
        assert set(changes) <= names, name
        assert DESCRIPTIONS[name].strip(), name
        cfg = preset_config(name)
        for k, v in changes.items():
            assert getattr(cfg, k) == v, (name, k)


def test_paper_preset_has_the_papers_settings():
    p = preset_config("paper")
    assert (p.k, p.lam, p.batch_size, p.image_layers, p.text_layers, p.common_dim, p.disc_layers) == \
        (5, 0.05, 64, [2000], [500], 200, [50])


def test_overrides_win_and_copies_are_fresh():
    cfg = preset_config("demo", epochs=3)
    assert cfg.epochs == 3 and cfg.image_layers == PRESETS["demo"]["image_layers"]
    preset_fields("demo")["image_layers"].append(7)
    assert PRESETS["demo"]["image_layers"] == [256]
    assert preset_config(None) == ACMRConfig()
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("fast")


def test_dashboard_starts_from_the_demo_preset():
    from app import dashboard_defaults as dd

    assert dd.default_config() == preset_config("demo")
    for k, v in PRESETS["demo"].items():
        assert dd.initial_value(k) == v
    assert dd.DEMO_PATIENCE == PRESETS["demo"]["patience"] and dd.DEMO_EPOCHS == PRESETS["demo"]["epochs"]


def _features_file(tmp_path):
    ds = make_synthetic()
    tr, te = ds.split == "train", ds.split == "test"
    np.savez(tmp_path / "f.npz", image_train=ds.image_features[tr], text_train=ds.text_features[tr], label_train=ds.labels[tr],
             image_test=ds.image_features[te], text_test=ds.text_features[te], label_test=ds.labels[te])
    return tmp_path / "f.npz"


def test_cli_preset_with_an_explicit_flag_on_top(tmp_path):
    f = _features_file(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "features", "--data-dir", str(f), "--out", str(out), "--preset", "demo",
                 "--epochs", "2", "--quiet"]) == 0
    cfg = json.loads((out / "metrics.json").read_text())["config"]
    assert cfg["epochs"] == 2                                   # the flag
    assert cfg["image_layers"] == PRESETS["demo"]["image_layers"] and cfg["lr"] == PRESETS["demo"]["lr"]  # the preset
    out2 = tmp_path / "paper"
    assert main(["train", "--dataset", "features", "--data-dir", str(f), "--out", str(out2), "--preset", "paper",
                 "--epochs", "1", "--k", "2", "--quiet"]) == 0
    cfg = json.loads((out2 / "metrics.json").read_text())["config"]
    assert cfg["k"] == 2 and cfg["lam"] == 0.05 and cfg["image_layers"] == [2000]
