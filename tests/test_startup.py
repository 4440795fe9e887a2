"""The search app's build waits for a quiet moment: not beside a run that trains, unless a client asks for it
(app/services.wait_to_build_search, called by app/main.py's SearchMount before it imports Gradio)."""
from __future__ import annotations

import threading
import time

import pytest

from acmr_core.config import ACMRConfig
from acmr_core.live import TrainingRun
from app import services
from tests.conftest import make_synthetic


@pytest.fixture
def wanted(monkeypatch):
    ev = threading.Event()
    monkeypatch.setattr(services, "SEARCH_WANTED", ev)
    return ev


def _waiter(quiet_s: float) -> threading.Event:
    done = threading.Event()
    threading.Thread(target=lambda: (services.wait_to_build_search(quiet_s=quiet_s, poll=0.05), done.set()),
                     daemon=True).start()
    return done


def test_with_no_run_it_waits_only_the_quiet_time(wanted):
    t0 = time.monotonic()
    services.wait_to_build_search(quiet_s=0.3, poll=0.05)
    assert 0.3 <= time.monotonic() - t0 < 2


def test_it_waits_while_a_run_trains_and_goes_at_once_when_search_is_asked_for(wanted):
    cfg = ACMRConfig(epochs=10_000, patience=0, image_layers=[16], text_layers=[16], common_dim=8, probe_every=0,
                     snapshot_size=0)                # patience 0: no early stop, it trains until stopped
    run = TrainingRun(make_synthetic(n=200), cfg, umap_epochs=[]).start()
    try:
        t0 = time.monotonic()
        while not services.training_now():
            assert time.monotonic() - t0 < 60, f"the run never started: {run.state}"
            time.sleep(0.02)
        done = _waiter(quiet_s=0.2)
        assert not done.wait(1.5)                 # 1.5 s of training: still waiting, well past the quiet time
        wanted.set()                              # a client asked for /gradio (the Search tab)
        assert done.wait(2)
        wanted.clear()
        done = _waiter(quiet_s=0.2)               # nobody asks: it waits for the run ...
        assert not done.wait(1.0)
        run.stop()
        run.join(30)
        assert done.wait(3)                       # ... and goes once it ended and the quiet time passed
    finally:
        run.stop()
    assert not services.training_now()
