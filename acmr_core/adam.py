"""Adam, as torch.optim.Adam computes it, without importing torch.compile's machinery on the first step.

torch.optim wraps every `Optimizer.step` in `_use_grad_for_differentiable`, which imports `torch._dynamo` (the
torch.compile stack) at each call; `zero_grad`, `add_param_group` and `state_dict` carry wrappers
(`torch._compile._disable_dynamo`) that import it on first use. The first optimizer of a process therefore
paid 3.7 s on this machine, on every CLI `train` and on the dashboard's first run: more than a whole 30-epoch
Wikipedia training. The wrappers only matter under torch.compile, which nothing here uses, so `Adam`:

- runs Adam's own `step` body (found with `inspect.unwrap`) under `torch.no_grad()`, which is what the
  wrapper does for a non-differentiable optimizer;
- gives each `_disable_dynamo` wrapper of torch.optim the cache entry it would set itself on its first call,
  pointing at the plain function, so it has nothing to import.

Where a torch release changes either wrapper, it falls back to torch's own path (slower to start, same
numbers). tests/test_adam.py checks the parameters against torch.optim.Adam bit for bit, and that a training
run in a fresh process leaves torch._dynamo unimported.
"""
from __future__ import annotations

import importlib
import inspect

import torch


def _adam_step_body():
    body = inspect.unwrap(torch.optim.Adam.step)
    code = getattr(body, "__code__", None)
    ok = code is not None and code.co_name == "step" and code.co_filename.endswith("adam.py")
    return body if ok and body is not torch.optim.Adam.step else None


def _preset_disable_dynamo_caches() -> None:
    """Give each `_disable_dynamo` wrapper of torch.optim its cache entry (none if torch's wrapper changed shape)."""
    from torch._compile import _disable_dynamo

    wrapper_code = _disable_dynamo(lambda: None).__code__
    optimizer_module = importlib.import_module("torch.optim.optimizer")
    for owner in (optimizer_module, optimizer_module.Optimizer):
        for fn in list(vars(owner).values()):
            inner = getattr(fn, "__wrapped__", None)
            if getattr(fn, "__code__", None) is wrapper_code and inner is not None \
                    and getattr(inner, "__dynamo_disable", None) is None:
                inner.__dynamo_disable = inner    # what the wrapper calls; torch._dynamo.disable(f) is f outside compile


_STEP = _adam_step_body()
_preset_disable_dynamo_caches()


class Adam(torch.optim.Adam):
    """torch.optim.Adam (same arguments, same state, same results) whose step imports nothing."""

    def step(self, closure=None):
        if _STEP is None:
            return super().step(closure)
        with torch.no_grad():
            return _STEP(self, closure)
