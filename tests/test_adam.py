"""acmr_core.adam.Adam: torch.optim.Adam's numbers, without importing torch._dynamo (3.7 s) on the first step."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acmr_core.adam import Adam

ROOT = Path(__file__).resolve().parents[1]


def _train(opt_cls, steps=40, **kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 40), torch.nn.Tanh(), torch.nn.Linear(40, 3))
    opt = opt_cls(model.parameters(), lr=1e-2, **kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        x = torch.randn(16, 12, generator=g)
        torch.nn.functional.cross_entropy(model(x), torch.randint(0, 3, (16,), generator=g)).backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize("kw", [dict(fused=True), dict(foreach=True), dict(foreach=False),
                                dict(fused=True, weight_decay=0.01, amsgrad=True)])
def test_the_same_parameters_and_state_as_torch_adam_bit_for_bit(kw):
    ours, o1 = _train(Adam, **kw)
    ref, o2 = _train(torch.optim.Adam, **kw)
    for a, b in zip(ours.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s2["state"]:
        for name, v in s2["state"][k].items():
            assert torch.equal(s1["state"][k][name], v), name


def test_its_state_loads_into_torch_adam_and_back():
    model, opt = _train(Adam, steps=5, fused=True)
    other = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    other.load_state_dict(opt.state_dict())
    again = Adam(model.parameters(), lr=1e-2, fused=True)
    again.load_state_dict(other.state_dict())
    assert int(again.state_dict()["state"][0]["step"]) == 5


@pytest.mark.slow          # a fresh Python process: torch's import alone takes 3 s
def test_a_training_run_in_a_fresh_process_never_imports_torch_dynamo():
    code = """
import sys
from acmr_core.config import ACMRConfig
from acmr_core.training import train
from tests.conftest import make_synthetic
res = train(make_synthetic(n=120), ACMRConfig(epochs=2, image_layers=[32], text_layers=[32], common_dim=16,
                                                probe_every=0, snapshot_size=0))
assert res.history, "no epoch ran"
print("dynamo imported:", "torch._dynamo" in sys.modules)
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "dynamo imported: False" in r.stdout, r.stdout
