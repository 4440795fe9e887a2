"""The config's schema is the one source: it validates, and it makes the dashboard's widgets and the CLI's flags."""
from __future__ import annotations

import math

import pytest

from acmr_core.config import GROUPS, ACMRConfig, ConfigError

SCHEMA = ACMRConfig.schema()


def test_every_field_has_a_label_a_group_and_a_valid_default():
    assert [f.name for f in SCHEMA] == list(ACMRConfig.__dataclass_fields__)
    for f in SCHEMA:
        assert f.label and f.group in GROUPS and f.check(f.default) is None, f


@pytest.mark.parametrize("spec", [f for f in SCHEMA if f.kind in ("int", "float") and f.lo is not None],
                         ids=lambda f: f.name)
def test_bounds_in_the_schema_are_what_validation_enforces(spec):
    below = spec.lo if spec.lo_open else spec.lo - (1 if spec.kind == "int" else 1e-9)
    with pytest.raises(ConfigError, match=f"'{spec.name}'"):
        ACMRConfig(**{spec.name: int(below) if spec.kind == "int" else below})
    if spec.hi is not None:
        with pytest.raises(ConfigError, match=f"'{spec.name}'"):
            ACMRConfig(**{spec.name: spec.hi if spec.hi_open else spec.hi + 1})
    ok = spec.lo + (spec.step or 1) if spec.lo_open else spec.lo
    ACMRConfig(**{spec.name: int(ok) if spec.kind == "int" else float(ok)})


def test_choices_and_lists_are_checked_and_parsed():
    for f in SCHEMA:
        if f.choices:
            for c in f.choices:
                ACMRConfig(**{f.name: c})
            with pytest.raises(ConfigError, match="choose one of"):
                ACMRConfig(**{f.name: "no-such-choice"})
    assert ACMRConfig.parse("image_layers", "1024, 512;256") == [1024, 512, 256]
    assert ACMRConfig.parse("use_label", "off") is False and ACMRConfig.parse("epochs", "7") == 7
    with pytest.raises(ConfigError, match="'image_layers': write whole numbers"):
        ACMRConfig.parse("image_layers", "2000, lots")
    with pytest.raises(ConfigError, match="'epochs': write a whole number"):
        ACMRConfig.parse("epochs", 2.5)


def test_the_cli_has_one_flag_per_field_with_its_label():
    import argparse

    from acmr_core.__main__ import _add_config_args

    p = argparse.ArgumentParser()
    _add_config_args(p)
    flags = {a.dest: a for a in p._actions if a.dest != "help"}
    own = {"seed", "use_adversarial", "use_triplet", "use_label"}     # the train command's own flags
    assert set(flags) == {f.name for f in SCHEMA} - own
    for f in SCHEMA:
        if f.name in flags:
            assert flags[f.name].help.startswith(f.label)
    assert p.parse_args(["--grl-schedule", "linear", "--image-layers", "64", "32"]).image_layers == [64, 32]


def test_the_dashboard_draws_each_widget_from_the_schema(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.test_dashboard import PAGE

    monkeypatch.setenv("ACMR_PREFETCH", "0")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    for f in SCHEMA:
        kind = "selectbox" if f.choices else {"bool": "toggle", "list": "text_input"}.get(f.kind, "number_input")
        w = getattr(at, kind)(key=f"cfg_{f.name}")
        assert w.label == f.label, f.name
        if kind == "number_input":
            assert w.min == (f.lo if f.lo is not None else w.min), f.name
            assert f.step is None or math.isclose(w.step, f.step), (f.name, w.step)
        if kind == "selectbox":
            assert list(w.options) == list(f.choices), f.name
