"""Training the default model on the built-in `shapes` dataset, with and without the adversary, over 5 seeds.

    .venv/bin/python bench/bench_shapes_training.py [--seeds 5]

Prints per seed and as mean ± std: test mAP@all (both directions and average), the modality probe and the
modality gap on the test embeddings, and the training wall time (the dataset is loaded from cache first).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acmr_core.config import ACMRConfig  # noqa: E402
from acmr_core.data import load_dataset  # noqa: E402
from acmr_core.metrics import modality_gap, modality_probe  # noqa: E402
from acmr_core.training import evaluate, train  # noqa: E402


def ms(xs):
    return f"{statistics.mean(xs):.3f}±{statistics.stdev(xs) if len(xs) > 1 else 0:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    load_dataset("shapes", progress=False)  # warm the cache
    out = {}
    for name, over in (("full ACMR", {}), ("no adversarial", {"use_adversarial": False})):
        rows = []
        for seed in range(args.seeds):
            ds = load_dataset("shapes", progress=False)
            t0 = time.perf_counter()
            r = train(ds, ACMRConfig(seed=seed, probe_every=0, **over))
            wall = time.perf_counter() - t0
            idx = ds.indices("test")
            img, txt = r.model.embed(ds.image_features[idx], "image"), r.model.embed(ds.text_features[idx], "text")
            s = evaluate(r.model, ds)
            rows.append({"map": s, "probe": modality_probe(img, txt, seed=seed), "gap": modality_gap(img, txt), "s": wall})
            print(f"  {name:<15} seed {seed}: mAP@all {s['img2txt']:.3f}/{s['txt2img']:.3f} avg {s['avg']:.3f} "
                  f"probe {rows[-1]['probe']:.3f} gap {rows[-1]['gap']:.3f} {wall:.1f}s", flush=True)
        out[name] = rows
    print(f"\nshapes (default: 3000 pairs, hog_color + tfidf), test split, mean±std over {args.seeds} seeds")
    print(f"{'variant':<16}{'I2T':>13}{'T2I':>13}{'Avg':>13}{'probe':>13}{'gap':>13}{'train s':>10}")
    for name, rows in out.items():
        cells = [ms([r["map"][d] for r in rows]) for d in ("img2txt", "txt2img", "avg")]
        cells += [ms([r["probe"] for r in rows]), ms([r["gap"] for r in rows])]
        print(f"{name:<16}" + "".join(f"{c:>13}" for c in cells) + f"{statistics.mean(r['s'] for r in rows):>10.1f}")


if __name__ == "__main__":
    main()
