"""Shared fixtures: a small synthetic cross-modal dataset, and the shared Wikipedia benchmark when present."""
from __future__ import annotations

import atexit
import importlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from acmr_core.data import CrossModalDataset

ROOT = Path(__file__).resolve().parents[1]
WIKI = ROOT.parent / "shared" / "data" / "wikipedia"

# Every run the tests train is written under a folder of this test session, never into the
# project's runs/ (or the user's $ACMR_RUNS_DIR), where the dashboard would list it. Set here, at import, because
# module- and session-scoped fixtures train before the per-test folder of `_runs_dir` below is set: stray runs
# had piled up in runs/ from test_embed.py's and test_compare.py's fixtures, among others.
# The folder is made once per test session, by the first process that imports this file (pytest-xdist's workers
# inherit it; a second import of this module in one process, as `from conftest import ...` can cause, reuses it),
# and removed when that process exits.
SESSION_KEY = "ACMR_TEST_SESSION_RUNS"
if SESSION_KEY not in os.environ:
    os.environ[SESSION_KEY] = tempfile.mkdtemp(prefix="acmr-test-runs-")
    atexit.register(shutil.rmtree, os.environ[SESSION_KEY], ignore_errors=True)
os.environ["ACMR_RUNS_DIR"] = os.environ[SESSION_KEY]


class lazy_import:
    """Module `name`, imported on the first use of one of its public names. Test files that import Gradio
    (about 5 s) use it, so a pytest-xdist worker that collects them but runs none of their tests never pays for
    the import. Private and dunder names are refused here: pytest probes every module-level object for them
    while it collects, and that must not import anything."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)

    def __setattr__(self, attr: str, value) -> None:
        if not attr.startswith("_"):
            raise AttributeError(f"patch the module itself, e.g. monkeypatch.setattr('{self._name}.{attr}', ...)")
        object.__setattr__(self, attr, value)


def make_synthetic(n: int = 300, classes: int = 5, d_v: int = 20, d_t: int = 12, noise: float = 1.0,
                   seed: int = 0, test_fraction: float = 0.3) -> CrossModalDataset:
    """Pairs whose image and text features are noisy copies of per-class centroids in two different spaces."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    cv, ct = rng.normal(size=(classes, d_v)) * 2, rng.normal(size=(classes, d_t)) * 2
    v = cv[y] + noise * rng.normal(size=(n, d_v)) + 3.0      # an offset, so the raw spaces differ
    t = ct[y] + noise * rng.normal(size=(n, d_t))
    split = np.where(rng.random(n) < test_fraction, "test", "train")
    return CrossModalDataset("synthetic", v, t, y.astype(np.int64), [f"c{i}" for i in range(classes)], split)


@pytest.fixture(autouse=True)
def _runs_dir(tmp_path, monkeypatch):
    """Every run a test trains is written under its own tmp folder, never into the project's runs/."""
    monkeypatch.setenv("ACMR_RUNS_DIR", str(tmp_path / "runs"))


@pytest.fixture
def synthetic():
    return make_synthetic()


@pytest.fixture
def wiki_dir():
    if not (WIKI / "raw_features.mat").is_file():
        pytest.skip(f"the shared Wikipedia benchmark is not at {WIKI}")
    return WIKI


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """For `-n 2 --dist loadgroup` (run-tests.sh): each test file stays on one worker (its module fixtures start
    once), and every browser test runs on the same worker, one after another, so two browser tests never
    compete for the CPU while they wait on a live page."""
    for item in items:
        if item.get_closest_marker("browser") and not item.path.stem.endswith("_browser"):
            raise pytest.UsageError(f"{item.nodeid}: browser tests live in tests/*_browser.py (run-tests.sh's "
                                    "browser phase collects only those files)")
        group = "browser" if item.get_closest_marker("browser") else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))
