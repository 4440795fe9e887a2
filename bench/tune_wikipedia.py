"""Hyperparameter search on the Wikipedia benchmark's VALIDATION split (carved from train; test is never read).

    .venv/bin/python bench/tune_wikipedia.py --data-dir ../shared/data/wikipedia [--grid quick]

Prints validation mAP@all (avg of both directions) of each setting, best first.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acmr_core.config import ACMRConfig  # noqa: E402
from acmr_core.data import load_dataset  # noqa: E402
from acmr_core.training import train  # noqa: E402

GRIDS = {
    "quick": {"alpha": [0.1, 1.0], "beta": [0.1, 1.0], "grl_max": [0.1, 1.0], "lr": [1e-3, 3e-4]},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data/wikipedia")
    ap.add_argument("--grid", default="quick", help="a named grid, or JSON like '{\"lr\": [1e-3, 1e-4]}'")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--set", nargs="*", default=[], help="fixed overrides name=value")
    args = ap.parse_args()
    fixed = {k: eval(v, {}) for k, v in (s.split("=", 1) for s in args.set)}  # noqa: S307 (developer tool)
    grid = GRIDS[args.grid] if args.grid in GRIDS else json.loads(args.grid)
    rows = []
    for values in itertools.product(*grid.values()):
        over = dict(zip(grid, values))
        ds = load_dataset("wikipedia", data_dir=args.data_dir)
        cfg = ACMRConfig(epochs=args.epochs, probe_every=0, snapshot_size=0, **fixed, **over)
        t = time.perf_counter()
        r = train(ds, cfg)
        assert "test" not in {s for s in ds.split[ds.indices("val")]}
        rows.append((r.best_val["avg"], r.best_epoch, time.perf_counter() - t, over))
        print(f"val avg {r.best_val['avg']:.4f} (i2t {r.best_val['img2txt']:.3f} t2i {r.best_val['txt2img']:.3f}) "
              f"best epoch {r.best_epoch:3d}  {rows[-1][2]:5.1f}s  {over}", flush=True)
    print("\nbest first:")
    for avg, ep, _sec, over in sorted(rows, key=lambda r: -r[0])[:10]:
        print(f"{avg:.4f}  epoch {ep:3d}  {over}")


if __name__ == "__main__":
    main()
