"""The project's Trainer against a plain, naive PyTorch loop at equal work, in one run.

    .venv/bin/python bench/bench_trainer.py [--data-dir ../shared/data/wikipedia] [--repeats 3] [--epochs 30]
                                            [--preset demo] [--json out.json]

Equal work on both sides: Wikipedia shallow features (loaded through the dataset registry, the same carved
validation split), the paper's architecture (f_V 128 → 2000 → 200, f_T 10 → 500 → 200, D 200 → 50 → 2,
dropout 0.5), batch 64 (the same permutation per epoch from the same numpy generator, the last incomplete batch
dropped), all in-batch triplets, the label loss, L_reg, the reversal layer with the DANN schedule, k = 1
(one discriminator step per projector step), Adam on both, gradient clipping at 10, one torch thread, 30
epochs, no early stop, no probe, no map snapshots. Per-epoch validation on BOTH sides: embed the validation
split, mAP@all (cosine) in both directions, and keep a copy of the weights of the best epoch (the trainer also
computes the modality gap, a few microseconds).

The naive loop is what a careful person writes first: the explicit b³ all-triplets tensor times a 0/1 mask of valid (i, j, k),
torch.cdist, two discriminator forwards, `torch.optim.Adam` with its defaults, one `.item()` a step for the
running loss, `copy.deepcopy(state_dict())` on a new best. Repeats alternate naive / trainer; the medians
and their ratio are printed, with the device. `--preset demo` also times the demo preset's run (shapes).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from acmr_core.config import ACMRConfig  # noqa: E402
from acmr_core.data import load_dataset  # noqa: E402
from acmr_core.model import ACMR, grad_reverse, grl_weight, pick_device  # noqa: E402

DATA_DIR = next((str(p) for p in (Path(__file__).resolve().parents[1] / "../shared/data/wikipedia",
                                   Path("/work/shared/data/wikipedia")) if p.is_dir()), "../shared/data/wikipedia")
EQUAL_WORK = dict(epochs=30, patience=0, probe_every=0, snapshot_size=0, k=1, triplet_sampler="all",
                  image_layers=[2000], text_layers=[500], common_dim=200, disc_layers=[50], dropout=0.5,
                  batch_size=64, use_adversarial=True, use_triplet=True, use_label=True, threads=1,
                  game="paper", grl_max=0.3)   # the reversal game the naive loop plays (no gradient penalty)


def naive_map(img: np.ndarray, txt: np.ndarray, y: np.ndarray) -> float:
    """mAP@all, cosine, both directions, in plain numpy."""
    a = img / np.linalg.norm(img, axis=1, keepdims=True)
    b = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    sims = a @ b.T
    rel = y[:, None] == y[None, :]
    out = []
    for s in (sims, sims.T):
        order = np.argsort(-s, axis=1)
        r = np.take_along_axis(rel, order, axis=1)
        hits = np.cumsum(r, axis=1)
        prec = hits / np.arange(1, r.shape[1] + 1)
        out.append(((prec * r).sum(1) / np.maximum(r.sum(1), 1)).mean())
    return float(np.mean(out))


def naive_run(ds, cfg: ACMRConfig) -> dict:
    """The plain loop. `ds` already has its validation split carved (as the trainer carves it)."""
    dev = pick_device(cfg.device)
    tr, va = ds.indices("train"), ds.indices("val")
    torch.manual_seed(cfg.seed)
    model = ACMR(ds.image_features.shape[1], ds.text_features.shape[1], ds.num_classes, cfg).to(dev)
    for seq in (model.image_proj, model.text_proj):      # plain torch dropout (the project's draws its mask faster)
        for i, mod in enumerate(seq):
            if isinstance(mod, torch.nn.Dropout):
                seq[i] = torch.nn.Dropout(mod.p)
    v = torch.tensor(ds.image_features[tr], device=dev)
    t = torch.tensor(ds.text_features[tr], device=dev)
    y = torch.tensor(ds.labels[tr], device=dev)
    model.set_input_stats(v, t)
    vv, tv = torch.tensor(ds.image_features[va], device=dev), torch.tensor(ds.text_features[va], device=dev)
    yv = ds.labels[va]
    proj_params = list(model.image_proj.parameters()) + list(model.text_proj.parameters()) + list(model.label_clf.parameters())
    opt_g = torch.optim.Adam(proj_params, lr=cfg.lr)
    opt_d = torch.optim.Adam(model.modality_clf.parameters(), lr=cfg.lr_disc)
    rng = np.random.default_rng(cfg.seed)
    n, bs = len(tr), cfg.batch_size
    steps = n // bs
    total_steps = steps * cfg.epochs
    best, best_state, losses = -1.0, None, []
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = rng.permutation(n)
        running = 0.0
        for s in range(steps):
            idx = torch.as_tensor(perm[s * bs:(s + 1) * bs], device=dev)
            g = (epoch - 1) * steps + s
            gamma = grl_weight(g / max(1, total_steps - 1), cfg.grl_schedule, cfg.grl_max)
            bv, bt, by = v[idx], t[idx], y[idx]
            sv, st = model.project_image(bv), model.project_text(bt)
            imd = F.cross_entropy(model.label_clf(sv), by) + F.cross_entropy(model.label_clf(st), by)
            same = by[:, None] == by[None, :]
            valid = same[:, :, None] & ~same[:, None, :]          # (i, j, k): j positive, k negative of anchor i
            w = valid.float()
            imi = 0.0
            for d in (torch.cdist(sv, st), torch.cdist(st, sv)):
                terms = d[:, :, None] + cfg.lam * F.relu(cfg.mu - d[:, None, :])
                imi = imi + (terms * w).sum() / w.sum()
            reg = sum(torch.norm(m.weight) for m in list(model.image_proj) + list(model.text_proj)
                      if isinstance(m, torch.nn.Linear))
            logits = torch.cat([model.modality_clf(grad_reverse(sv, gamma)), model.modality_clf(grad_reverse(st, gamma))])
            target = torch.cat([torch.zeros(bs, dtype=torch.long, device=dev), torch.ones(bs, dtype=torch.long, device=dev)])
            adv = F.cross_entropy(logits, target)
            total = cfg.alpha * imi + cfg.beta * imd + cfg.reg_weight * reg + adv
            opt_g.zero_grad()
            opt_d.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(proj_params, cfg.max_grad_norm)
            opt_g.step()
            d_logits = torch.cat([model.modality_clf(sv.detach()), model.modality_clf(st.detach())])
            d_loss = F.cross_entropy(d_logits, target)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            running += total.item()
        losses.append(running / steps)
        model.eval()
        with torch.no_grad():
            val = naive_map(model.project_image(vv).cpu().numpy(), model.project_text(tv).cpu().numpy(), yv)
        if val > best:
            best, best_state = val, copy.deepcopy(model.state_dict())
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    model.load_state_dict(best_state)
    return {"seconds": seconds, "cpu_s": cpu, "best_val": best, "last_loss": losses[-1]}


def trainer_run(ds, cfg: ACMRConfig) -> dict:
    from acmr_core.training import Trainer

    trainer = Trainer(ds, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    r = trainer.run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu_s": cpu, "best_val": r.best_val["avg"], "last_loss": r.history[-1]["loss_total"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default=None, help="also time this preset's demo run (shapes), e.g. demo")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = ACMRConfig(**{**EQUAL_WORK, "epochs": args.epochs, "seed": args.seed, "device": args.device})
    dev = pick_device(cfg.device)
    print(f"device: {dev}{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}; "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}; cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    naive, ours = [], []
    for rep in range(args.repeats):
        for name, fn, acc in (("naive", naive_run, naive), ("trainer", trainer_run, ours)):
            ds = load_dataset("wikipedia", data_dir=args.data_dir)
            from acmr_core.data import carve_validation

            ds.split = carve_validation(ds.split, ds.labels, cfg.val_fraction, cfg.seed)
            r = fn(ds, cfg)
            acc.append(r)
            print(f"  repeat {rep + 1}: {name:<8} {r['seconds']:6.2f} s wall, {r['cpu_s']:6.2f} s CPU   "
                  f"best val mAP {r['best_val']:.3f}   "
                  f"last-epoch loss {r['last_loss']:.3f}", flush=True)
    tn = statistics.median(r["seconds"] for r in naive)
    tt = statistics.median(r["seconds"] for r in ours)
    cn = statistics.median(r["cpu_s"] for r in naive)
    ct = statistics.median(r["cpu_s"] for r in ours)
    res = {"device": str(dev), "epochs": args.epochs, "naive_s": tn, "trainer_s": tt, "speedup": tn / tt,
           "naive_cpu_s": cn, "trainer_cpu_s": ct, "speedup_cpu": cn / ct,
           "load_average_end": os.getloadavg()[0], "naive": naive, "trainer": ours}
    print(f"\nWikipedia, {args.epochs} epochs, equal work, device {dev}: naive loop {tn:.2f} s, Trainer {tt:.2f} s "
          f"(medians of {args.repeats}); Trainer speed = {tn / tt:.2f}x the naive loop (target >= 1.3x)")
    print(f"  the same in CPU time of this process (less sensitive to other load): naive {cn:.2f} s, Trainer "
          f"{ct:.2f} s: {cn / ct:.2f}x")
    if args.preset:
        from acmr_core.presets import preset_config
        from acmr_core.training import evaluate, train

        pc = preset_config(args.preset, device=args.device)
        walls, cpus, maps = [], [], []
        for _ in range(args.repeats):
            ds = load_dataset("shapes")
            t0, c0 = time.perf_counter(), time.process_time()
            r = train(ds, pc)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            maps.append(evaluate(r.model, ds)["avg"])
        tp, cp = statistics.median(walls), statistics.median(cpus)
        res.update(preset=args.preset, preset_s=tp, preset_cpu_s=cp, preset_test_map=maps, preset_ratio=tp / tn,
                   preset_ratio_cpu=cp / cn)
        print(f"preset '{args.preset}' on shapes ({pc.epochs} epochs, its own config, probe and snapshots included): "
              f"{tp:.2f} s wall, {cp:.2f} s CPU (medians of {args.repeats}) = {tp / tn:.2f}x the naive loop's "
              f"{args.epochs}-epoch Wikipedia wall time, {cp / cn:.2f}x its CPU time (target <= 0.7x); "
              f"test mAP@all avg {statistics.mean(maps):.3f} (target >= 0.73)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
