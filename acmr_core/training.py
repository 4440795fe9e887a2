"""Training ACMR: the minimax game between the feature projectors and the modality classifier.

Each mini-batch (v, t, y):
  1. projector step: S_V = f_V(v), S_T = f_T(t);
       total = α·L_imi + β·L_imd + w·L_reg + L_adv(D(GRL_γ(S_V)), D(GRL_γ(S_T)))
     One backward pass: the GRL hands the projectors -γ·∇L_adv, so they *ascend* L_adv (fool D) while they
     descend L_emb. Only θ_V, θ_T, θ_imd are stepped here. (L_reg's gradient w·W/‖W‖_F is added to the
     gradients directly after the backward pass: the same numbers as autograd's, in one pass per matrix.)
  2. every k-th step, a discriminator step: L_adv on detached S_V, S_T with the true modality labels
     (image = 0, text = 1); only θ_D is stepped.
The trainer emits events to listeners (step, epoch, status); it never draws anything itself. It can be
paused, resumed and stopped from another thread. The best epoch is chosen on validation mAP, never on test.
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import losses as L
from .adam import Adam
from .config import ACMRConfig
from .data import CrossModalDataset, check_split_sizes, training_split
from .metrics import heldout_modality_probe, knn_mixing, modality_gap, retrieval_scores
from .model import ACMR, GAME_RULES, grad_reverse, grl_weight, pick_device


@dataclass
class StepEvent:
    epoch: int
    step: int
    global_step: int
    total_steps: int
    losses: dict            # imd, imi, reg, adv, emb, total (floats)
    disc_acc: float         # modality classifier accuracy on this batch (0.5 = fooled)
    grl: float              # γ at this step
    kind: str = "step"


@dataclass
class EpochEvent:
    epoch: int              # 0 = before training
    epochs: int
    val: dict               # mAP@all on validation: img2txt, txt2img, avg
    probe: float | None     # held-out modality probe: fitted on training embeddings, balanced accuracy on validation
    gap: float              # modality gap on validation embeddings
    seconds: float          # wall time of this epoch
    elapsed: float          # wall time since start
    best_epoch: int
    snapshot: dict | None = None  # {"image": (s, m), "text": (s, m), "labels": (s,), "index": (s,)} for maps
    losses: dict = field(default_factory=dict)   # this epoch's mean of each loss term (empty at epoch 0)
    disc_acc: float | None = None  # this epoch's mean modality-classifier accuracy (None at epoch 0 or without L_adv)
    weights: dict | None = None   # the model's state_dict at the end of this epoch (a copy: read it, never change it)
    mixing: float | None = None   # kNN modality mixing of the validation embeddings (1 = mixed, 0 = segregated)
    kind: str = "epoch"


@dataclass
class StatusEvent:
    state: str              # running, paused, stopped, finished, failed
    message: str = ""
    kind: str = "status"


@dataclass
class TrainResult:
    model: ACMR
    config: ACMRConfig
    best_epoch: int
    best_val: dict
    history: list = field(default_factory=list)   # one dict per epoch
    train_seconds: float = 0.0
    epochs_run: int = 0
    stopped: bool = False
    error: str | None = None
    early_stopped: bool = False  # validation mAP stopped improving (config.patience)


PROBE_FIT_PAIRS = 500   # at most this many training pairs fit the per-epoch held-out probe (it stays cheap)


class TrainingDiverged(RuntimeError):
    pass


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Mini-batches per epoch: whole batches only (the last partial one is dropped), at least one."""
    return max(1, n_train // batch_size)


LOSS_NAMES = ("imd", "imi", "reg", "adv", "emb", "total")


def make_adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters: CPU and CUDA), else the foreach one. It is
    torch.optim.Adam without the 3.7 s import of torch.compile's machinery at the first step (adam.py)."""
    params = list(params)
    try:
        return Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return Adam(params, lr=lr, foreach=device.type == "cuda" or None)


def add_reg_grad(weights: list[torch.Tensor], norms: list[torch.Tensor], w: float) -> None:
    """Add the gradient of w·L_reg = w·Σ_l ‖W_l‖_F to each W_l.grad: ∂/∂W_l = w·W_l / ‖W_l‖_F.

    Exactly what autograd gives for `reg_weight * reg_loss(weights)`, in one pass over each matrix instead of
    autograd's three (tests/test_speed.py checks it)."""
    if not w:
        return
    cpu = weights[0].device.type == "cpu"
    with torch.no_grad():
        for W, n in zip(weights, norms):
            n = n.clamp_min(1e-12)
            if W.grad is None:
                W.grad = W * (w / n)
            elif cpu:                                 # a Python scalar: one fused pass (no device sync on CPU)
                W.grad.add_(W, alpha=w / float(n))
            else:
                W.grad.add_(W * (w / n))


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with `n` torch threads (0: leave as is), then restore the count. With torch's OpenMP
    backend the count belongs to the calling thread, so a training thread never changes another's."""
    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(prev)


def state_copy(model: torch.nn.Module) -> dict:
    """A copy of the weights as plain tensor clones (a deep copy of the state dict, without its overhead)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Trainer:
    """Trains ACMR on `dataset` with `config`; `run()` blocks, `start()` runs in a daemon thread."""

    def __init__(self, dataset: CrossModalDataset, config: ACMRConfig | None = None,
                 listeners: list[Callable] | None = None):
        self.cfg = (config or ACMRConfig()).validate()
        self.ds = dataset
        self.listeners = list(listeners or [])
        self.device = pick_device(self.cfg.device)
        split = training_split(dataset, self.cfg.val_fraction, self.cfg.seed)   # the caller's dataset is left alone
        check_split_sizes(dataset, split)  # a clear DataError, not a failure deep inside the probe or the ranking
        self.split = split
        self.train_idx = np.flatnonzero(split == "train")
        self.val_idx = np.flatnonzero(split == "val") if (split == "val").any() else self.train_idx
        self.steps_per_epoch = steps_per_epoch(len(self.train_idx), self.cfg.batch_size)
        self.total_steps = self.steps_per_epoch * self.cfg.epochs
        torch.manual_seed(self.cfg.seed)
        self.model = ACMR(dataset.image_features.shape[1], dataset.text_features.shape[1],
                          dataset.num_classes, self.cfg).to(self.device)
        self.v, self.t, self.y = (self._tensor(dataset.image_features[self.train_idx]),
                                  self._tensor(dataset.text_features[self.train_idx]),
                                  torch.as_tensor(dataset.labels[self.train_idx], device=self.device))
        if self.cfg.standardize:
            self.model.set_input_stats(self.v, self.t)
        self._g_params = list(self.model.projector_parameters())
        self._reg_weights = self.model.projector_weights()
        self.opt_g = make_adam(self._g_params, self.cfg.lr, self.device)
        self.opt_d = make_adam(self.model.modality_clf.parameters(), self.cfg.lr_disc, self.device)
        # two generators, so that how many points are sent for maps never changes the batches the model sees
        self._rng = np.random.default_rng(self.cfg.seed)
        s = min(self.cfg.snapshot_size, len(self.val_idx))
        pick = np.random.default_rng([self.cfg.seed, 1])
        self.snapshot_idx = np.sort(pick.choice(self.val_idx, size=s, replace=False)) if s else None
        f = min(PROBE_FIT_PAIRS, len(self.train_idx))      # the training pairs the held-out probe is fitted on
        self.probe_fit_idx = np.sort(np.random.default_rng([self.cfg.seed, 2]).choice(self.train_idx, f, replace=False))
        self._pause = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "ready"
        self.result: TrainResult | None = None

    # --- control (safe from any thread) ------------------------------------------------------------
    def add_listener(self, fn: Callable) -> None:
        self.listeners.append(fn)

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, daemon=True, name="acmr-trainer")
        self._thread.start()
        return self._thread

    def pause(self) -> None:
        if self.state == "running":
            self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def stop(self) -> None:
        self._stop.set()
        self._pause.clear()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    # --- internals ---------------------------------------------------------------------------------
    def _tensor(self, a) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)

    def _emit(self, event) -> None:
        for fn in list(self.listeners):
            fn(event)

    def _status(self, state: str, message: str = "") -> None:
        self.state = state
        self._emit(StatusEvent(state, message))

    def _wait_if_paused(self) -> None:
        if self._pause.is_set():
            self._status("paused", "training paused")
            while self._pause.is_set() and not self._stop.is_set():
                time.sleep(0.05)
            if not self._stop.is_set():
                self._status("running", "training resumed")

    def train_step(self, v: torch.Tensor, t: torch.Tensor, y: torch.Tensor, gamma: float, step: int) -> tuple[dict, float]:
        """One projector step (and, every k-th step, one discriminator step). Returns (losses, D accuracy)."""
        cfg, m = self.cfg, self.model
        sv, st = m.project_image(v), m.project_text(t)
        b = len(sv)
        s_both = torch.cat([sv, st])                  # S_V over S_T: one forward of each classifier for both
        zero = sv.sum() * 0.0
        if cfg.use_label:
            logits = m.label_clf(s_both)
            imd = L.label_loss(logits[:b], logits[b:], y)
        else:
            imd = zero
        imi = L.triplet_loss(sv, st, y, cfg.lam, cfg.mu, cfg.triplet_sampler) if cfg.use_triplet else zero
        with torch.no_grad():                         # L_reg's value; its gradient is added after backward
            norms = [torch.linalg.vector_norm(W) for W in self._reg_weights]
            reg = torch.stack(norms).sum()
        emb = cfg.alpha * imi + cfg.beta * imd + cfg.reg_weight * reg
        y2 = torch.cat([y, y])
        if cfg.use_adversarial:
            adv, acc, fool = self._fool_term(s_both, y2, b, gamma)
        else:
            adv, acc, fool = zero, torch.tensor(float("nan")), zero
        total = emb + fool
        # one stacked tensor, one transfer per step (no .item() per loss term); checked after the steps: a
        # diverged step is rolled back to the last good state anyway
        stacked = torch.stack([imd, imi, reg, adv, emb, total]).detach()
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        total.backward()
        add_reg_grad(self._reg_weights, norms, cfg.reg_weight)
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self._g_params, cfg.max_grad_norm, foreach=True)
        self.opt_g.step()
        if cfg.use_adversarial and step % cfg.k == 0:
            acc = self._disc_step(s_both.detach(), y2, b)
        *losses, acc = torch.cat([stacked, acc.detach().reshape(1).to(stacked)]).tolist()
        values = dict(zip(LOSS_NAMES, losses))
        if not all(np.isfinite(x) for x in losses) or abs(values["total"]) > cfg.max_loss:
            bad = [k for k, x in values.items() if not np.isfinite(x)] or ["total"]
            raise TrainingDiverged(f"the loss {'became NaN or infinite' if not np.isfinite(values['total']) else 'exploded'} "
                                   f"({', '.join(bad)} = {values[bad[0]]:.4g})")
        return values, acc

    def _fool_term(self, s: torch.Tensor, y2: torch.Tensor, b: int, gamma: float):
        """The projectors' side of the game on S = [S_V; S_T]: (L_adv, D's accuracy, the term they follow).

        Every game but confusion: L_adv through the GRL (the projectors receive -γ·∇L_adv);
        confusion: γ·L_conf, D's output pushed toward 50/50 (no reversal)."""
        d, game = self.model.modality_clf, GAME_RULES[self.cfg.game]
        if game.confusion:
            logits = d(s, y2)
            adv, acc = L.adversarial_loss(logits[:b], logits[b:])
            return adv, acc, gamma * L.confusion_loss(logits[:b], logits[b:])
        logits = d(grad_reverse(s, gamma), y2)
        adv, acc = L.adversarial_loss(logits[:b], logits[b:])
        return adv, acc, adv

    def _disc_step(self, s: torch.Tensor, y2: torch.Tensor, b: int) -> torch.Tensor:
        """D's side: descend L_adv on detached S (images labelled 0, texts 1), plus the gradient penalty in the
        penalty games, `disc_steps` times. Returns D's accuracy before its last step."""
        d, game, cfg = self.model.modality_clf, GAME_RULES[self.cfg.game], self.cfg
        for _ in range(cfg.disc_steps):
            logits = d(s, y2)
            d_loss, acc = L.adversarial_loss(logits[:b], logits[b:])
            if game.penalty and cfg.disc_penalty:
                d_loss = d_loss + cfg.disc_penalty * L.gradient_penalty(d, s, y2)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        return acc

    def evaluate_val(self) -> tuple[dict, float | None, float, dict | None, int]:
        ds, m = self.ds, self.model
        img = m.embed(ds.image_features[self.val_idx], "image")
        txt = m.embed(ds.text_features[self.val_idx], "text")
        val = retrieval_scores(img, txt, ds.labels[self.val_idx])
        epoch = len(self.history)
        probe = None
        if self.cfg.probe_every and epoch % self.cfg.probe_every == 0:
            fit = self.probe_fit_idx
            probe = heldout_modality_probe(m.embed(ds.image_features[fit], "image"), m.embed(ds.text_features[fit], "text"),
                                           img, txt, seed=self.cfg.seed)
        snap = None
        if self.snapshot_idx is not None:
            pos = np.searchsorted(self.val_idx, self.snapshot_idx)
            snap = {"image": img[pos], "text": txt[pos], "labels": ds.labels[self.snapshot_idx], "index": self.snapshot_idx}
        return val, probe, modality_gap(img, txt), snap, epoch, knn_mixing(img, txt)

    def _record_epoch(self, epoch: int, t_epoch: float, t0: float) -> None:
        val, probe, gap, snap, _, mixing = self.evaluate_val()
        self.last_good = state_copy(self.model)          # a fresh dict each epoch: readers never see it change
        if val["avg"] > self.best_val.get("avg", -1):
            self.best_val, self.best_epoch = val, epoch
            self.best_state = self.last_good             # the same copy: no second one
        elapsed = time.perf_counter() - t0
        self.history.append({"epoch": epoch, "val_img2txt": val["img2txt"], "val_txt2img": val["txt2img"],
                             "val_avg": val["avg"], "probe": probe, "mixing": mixing, "gap": gap,
                             "seconds": time.perf_counter() - t_epoch,
                             **{f"loss_{k}": v for k, v in self._epoch_losses.items()}})
        accs = [a for a in self._epoch_accs if a == a]
        self._emit(EpochEvent(epoch, self.cfg.epochs, val, probe, gap, time.perf_counter() - t_epoch, elapsed,
                               self.best_epoch, snap, dict(self._epoch_losses),
                               float(np.mean(accs)) if accs else None, self.last_good, mixing))

    def pinned_threads(self):
        """A context: cfg.threads torch threads in the calling thread on CPU (more threads only spin on matrices
        this small), the thread's own count restored afterwards."""
        return torch_threads(self.cfg.threads if self.device.type == "cpu" else 0)

    def run(self) -> TrainResult:
        """Train (blocking) on `pinned_threads()`: evaluating or searching after training uses every core again."""
        with self.pinned_threads():
            return self._run()

    def _run(self) -> TrainResult:
        cfg = self.cfg
        n, bs = len(self.train_idx), cfg.batch_size
        steps_per_epoch, total_steps = self.steps_per_epoch, self.total_steps
        self.history, self.best_val, self.best_epoch, self._epoch_losses, self._epoch_accs = [], {}, 0, {}, []
        self.best_state = self.last_good = state_copy(self.model)
        error, epoch, early = None, 0, False
        t0 = time.perf_counter()
        self._status("running", "training started")
        self._record_epoch(0, t0, t0)
        try:
            for epoch in range(1, cfg.epochs + 1):
                t_epoch = time.perf_counter()
                perm = self._rng.permutation(n)
                sums: dict[str, float] = {}
                self._epoch_accs = []
                for s in range(steps_per_epoch):
                    self._wait_if_paused()
                    if self._stop.is_set():
                        break
                    idx = torch.as_tensor(perm[s * bs:(s + 1) * bs], device=self.device)
                    g = (epoch - 1) * steps_per_epoch + s
                    gamma = grl_weight(g / max(1, total_steps - 1), cfg.grl_schedule, cfg.grl_max)
                    values, acc = self.train_step(self.v[idx], self.t[idx], self.y[idx], gamma, g)
                    for k_, x in values.items():
                        sums[k_] = sums.get(k_, 0.0) + x
                    self._epoch_accs.append(acc)
                    self._emit(StepEvent(epoch, s + 1, g + 1, total_steps, values, acc, gamma))
                if self._stop.is_set():
                    epoch -= 1
                    break
                self._epoch_losses = {k_: x / steps_per_epoch for k_, x in sums.items()}
                self._record_epoch(epoch, t_epoch, t0)
                if cfg.patience and epoch < cfg.epochs and epoch - self.best_epoch >= cfg.patience:
                    early = True
                    break
        except TrainingDiverged as e:
            self.model.load_state_dict(self.last_good)
            error = (f"Training stopped at epoch {epoch}: {e}. The model was rolled back to the last good state "
                     f"(end of epoch {epoch - 1}). Try a lower learning rate (lr={cfg.lr:g}) or smaller loss weights.")
            epoch -= 1
        seconds = time.perf_counter() - t0
        if error is None:
            self.model.load_state_dict(self.best_state)
        self.result = TrainResult(self.model, cfg, self.best_epoch, self.best_val, self.history, seconds,
                                  epoch, self._stop.is_set(), error, early)
        if error:
            self._status("failed", error)
        elif self._stop.is_set():
            self._status("stopped", f"stopped after epoch {epoch}; kept the best epoch ({self.best_epoch}) on validation")
        elif early:
            self._status("finished", f"stopped early after epoch {epoch} of {cfg.epochs} in {seconds:.1f} s: validation mAP "
                                     f"had not improved for {cfg.patience} epochs; kept the best epoch ({self.best_epoch})")
        else:
            self._status("finished", f"finished {epoch} epochs in {seconds:.1f} s; best epoch on validation: {self.best_epoch}")
        return self.result


def train(dataset: CrossModalDataset, config: ACMRConfig | None = None, listeners=None) -> TrainResult:
    """Train ACMR and return the model of the best validation epoch."""
    return Trainer(dataset, config, listeners).run()


def evaluate(model: ACMR, dataset: CrossModalDataset, split: str = "test", k: int | None = None,
             metric: str = "cosine") -> dict:
    """Retrieval scores of `split` (both directions and their mean) under one protocol."""
    idx = dataset.indices(split)
    img = model.embed(dataset.image_features[idx], "image")
    txt = model.embed(dataset.text_features[idx], "text")
    return retrieval_scores(img, txt, dataset.labels[idx], k=k, metric=metric)
