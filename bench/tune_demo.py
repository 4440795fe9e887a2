"""How the `demo` preset was chosen: candidate settings on the shapes dataset, scored on its VALIDATION split
(test is never read here), with their training time.

    .venv/bin/python bench/tune_demo.py [--seeds 0 1] [--candidates NAME ...]

Prints, per candidate, the best validation mAP@all (avg of both directions), the epoch it came at, and the
training wall and CPU time (one torch thread, the per-epoch probe and map snapshots as the dashboard has them).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acmr_core.config import ACMRConfig  # noqa: E402
from acmr_core.data import load_dataset  # noqa: E402
from acmr_core.training import train  # noqa: E402

CANDIDATES = {
    "paper layers, 10 epochs (the old dashboard default)": {"epochs": 10},
    "512/256 hidden, 10 epochs": {"epochs": 10, "image_layers": [512], "text_layers": [256]},
    "512/256 hidden, 10 epochs, lr 3e-4": {"epochs": 10, "image_layers": [512], "text_layers": [256], "lr": 3e-4},
    "256/256 hidden, 10 epochs, lr 3e-4": {"epochs": 10, "image_layers": [256], "text_layers": [256], "lr": 3e-4},
    "256/256 hidden, 8 epochs, lr 1e-3": {"epochs": 8, "image_layers": [256], "text_layers": [256], "lr": 1e-3},
    "512/256 hidden, 8 epochs, lr 3e-4, batch 128": {"epochs": 8, "image_layers": [512], "text_layers": [256], "lr": 3e-4,
                                                     "batch_size": 128},
    "256/256 hidden, 6 epochs, lr 1e-3": {"epochs": 6, "image_layers": [256], "text_layers": [256], "lr": 1e-3},
    "256/256 hidden, 6 epochs, lr 5e-4": {"epochs": 6, "image_layers": [256], "text_layers": [256], "lr": 5e-4},
    "128/128 hidden, 6 epochs, lr 1e-3": {"epochs": 6, "image_layers": [128], "text_layers": [128], "lr": 1e-3},
    "512/256 hidden, 6 epochs, lr 5e-4": {"epochs": 6, "image_layers": [512], "text_layers": [256], "lr": 5e-4},
    "256/256 hidden, 6 epochs, lr 3e-4 (the demo preset)": {"epochs": 6, "image_layers": [256], "text_layers": [256],
                                                            "lr": 3e-4},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--extra", default="{}", help="JSON of fields applied to every candidate, e.g. '{\"probe_every\": 0}'")
    args = ap.parse_args()
    import json

    extra = json.loads(args.extra)
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    for name in args.candidates:
        rows = []
        for seed in args.seeds:
            ds = load_dataset("shapes")
            t0, c0 = time.perf_counter(), time.process_time()
            r = train(ds, ACMRConfig(seed=seed, patience=0, **{**CANDIDATES[name], **extra}))
            rows.append((r.best_val["avg"], r.best_epoch, time.perf_counter() - t0, time.process_time() - c0))
        print(f"{name:<52} val mAP {statistics.mean(x[0] for x in rows):.3f} "
              f"(seeds {', '.join(f'{x[0]:.3f}@{x[1]}' for x in rows)})  "
              f"{statistics.mean(x[2] for x in rows):5.1f} s wall, {statistics.mean(x[3] for x in rows):5.1f} s CPU",
              flush=True)


if __name__ == "__main__":
    main()
