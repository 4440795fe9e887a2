"""The same code on CUDA (skipped without a GPU): every tensor the trainer and evaluation create lives on the
model's device."""
import numpy as np
import pytest
import torch
from conftest import make_synthetic

from acmr_core.config import ACMRConfig
from acmr_core.training import Trainer, evaluate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("sampler", ["all", "hardest", "random"])
def test_trains_a_few_steps_on_cuda(sampler):
    ds = make_synthetic()
    tr = Trainer(ds, ACMRConfig(device="cuda", epochs=2, seed=0, probe_every=1, snapshot_size=20,
                                triplet_sampler=sampler))
    assert tr.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in tr.model.parameters())
    result = tr.run()
    assert result.error is None and result.epochs_run == 2
    assert all(np.isfinite(h["loss_total"]) for h in result.history[1:])
    assert all(v.device.type == "cuda" for v in tr.best_state.values())
    scores = evaluate(result.model, ds)
    assert 0 <= scores["avg"] <= 1


def test_auto_picks_cuda_and_matches_cpu_first_step():
    ds = make_synthetic()
    cfg = ACMRConfig(epochs=1, seed=0, dropout=0.0, probe_every=0, snapshot_size=0)
    gpu, cpu = Trainer(ds, cfg), Trainer(make_synthetic(), cfg.replace(device="cpu"))
    assert gpu.device.type == "cuda"
    idx = torch.arange(64)
    a, _ = gpu.train_step(gpu.v[idx], gpu.t[idx], gpu.y[idx], 0.1, 0)
    b, _ = cpu.train_step(cpu.v[idx.cpu()], cpu.t[idx.cpu()], cpu.y[idx.cpu()], 0.1, 0)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-5), k
