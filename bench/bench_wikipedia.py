"""Benchmark on the Wikipedia benchmark (shallow features): the full model and each ablation over 5 seeds.

    .venv/bin/python bench/bench_wikipedia.py --data-dir ../shared/data/wikipedia [--seeds 5] [--json out.json]

Prints, per variant, mean ± standard deviation over seeds of test mAP@all and mAP@50 in both directions,
the official ACMR demo's protocol (`acmr-demo`: first 640 test pairs, L2, mAP@50), the held-out modality
probe (fitted on training embeddings, scored on test) and kNN modality mixing of the test embeddings, and the
training wall time; then the time of one full evaluation of the 693 x 693 test set. Every run goes through
acmr_core.pipeline (the metrics layout of the CLI and the dashboard) and is recorded as a run folder. Epochs are
chosen on the validation split (carved from train). `--eval-only` times only the evaluation.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from acmr_core.config import ACMRConfig  # noqa: E402
from acmr_core.data import load_dataset  # noqa: E402
from acmr_core.metrics import acmr_demo_scores, retrieval_scores  # noqa: E402
from acmr_core.model import pick_device  # noqa: E402
from acmr_core.pipeline import train_run  # noqa: E402
from acmr_core.training import evaluate, train  # noqa: E402

VARIANTS = {
    "full ACMR": {},
    "no adversarial": {"use_adversarial": False},
    "no triplet (label only)": {"use_triplet": False},
    "no label (triplet only)": {"use_label": False},
}
PAPER = {"full ACMR": (0.366, 0.277)}


def ms(xs):
    return f"{statistics.mean(xs):.3f}±{statistics.stdev(xs) if len(xs) > 1 else 0:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data/wikipedia")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--json", default=None, help="also write the raw figures to this file")
    ap.add_argument("--runs-dir", default=None, help="where the runs are recorded (default: a temporary folder)")
    ap.add_argument("--eval-only", action="store_true", help="only time one test evaluation")
    args = ap.parse_args()
    import tempfile

    dev = pick_device(ACMRConfig().device)
    print(f"device: {dev}; torch threads: {torch.get_num_threads()}; seeds 0..{args.seeds - 1}; defaults: {ACMRConfig()}",
          flush=True)
    if args.eval_only:
        return time_evaluation(args.data_dir)
    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="acmr-bench-runs-")
    print(f"runs recorded under {runs_dir} (python -m acmr_core runs --dir {runs_dir})")
    raw = {}
    for name in args.variants:
        rows = []
        for seed in range(args.seeds):
            ds = load_dataset("wikipedia", data_dir=args.data_dir)
            t0 = time.perf_counter()
            out = train_run(ds, ACMRConfig(seed=seed, probe_every=0, snapshot_size=0, **VARIANTS[name]), root=runs_dir,
                            name=f"{name}, seed {seed}", dataset_label="wikipedia")
            wall = time.perf_counter() - t0
            r, m = out.result, out.metrics
            idx = ds.indices("test")
            img, txt = r.model.embed(ds.image_features[idx], "image"), r.model.embed(ds.text_features[idx], "text")
            rows.append({"seed": seed, "all": m["test"]["map_all"], "at50": m["test"]["map_at_50"],
                         "acmr_demo": acmr_demo_scores(img, txt, ds.labels[idx]),
                         "probe": m["test"]["modality_probe"], "mixing": m["test"]["knn_mixing"], "seconds": wall,
                         "best_epoch": r.best_epoch, "epochs_run": r.epochs_run, "run": out.run.run_id})
            print(f"  {name:<24} seed {seed}: mAP@all {rows[-1]['all']['img2txt']:.3f}/{rows[-1]['all']['txt2img']:.3f} "
                  f"best epoch {r.best_epoch} of {r.epochs_run} run, {wall:.1f}s", flush=True)
        raw[name] = rows
    print("\nWikipedia, shallow features, test split (693 pairs), cosine; mean±std over", args.seeds, "seeds")
    cols = ("mAP@all I2T", "T2I", "Avg", "mAP@50 I2T", "T2I", "Avg", "demo I2T", "T2I", "probe", "kNN mix")
    head = f"{'variant':<25}" + "".join(f"{c:>13}" for c in cols) + f"{'train s':>11}"
    print(head)
    for name, rows in raw.items():
        cells = [ms([r["all"][d] for r in rows]) for d in ("img2txt", "txt2img", "avg")]
        cells += [ms([r["at50"][d] for r in rows]) for d in ("img2txt", "txt2img", "avg")]
        cells += [ms([r["acmr_demo"][d] for r in rows]) for d in ("img2txt", "txt2img")]
        cells += [ms([r["probe"] for r in rows]), ms([r["mixing"] for r in rows])]
        print(f"{name:<25}" + "".join(f"{c:>13}" for c in cells) + f"{statistics.mean(r['seconds'] for r in rows):>11.1f}")
    print(f"{'paper (Table 2)':<25}{'':>78}{0.366:>13}{0.277:>13}   (its official demo's protocol: the 'demo' columns)")
    if "full ACMR" in raw:
        full = statistics.mean(r["all"]["avg"] for r in raw["full ACMR"])
        for name, rows in raw.items():
            if name != "full ACMR":
                print(f"full / {name}: avg mAP@all ratio {full / statistics.mean(r['all']['avg'] for r in rows):.3f}")
    # the training time a user sees: the default config exactly (per-epoch probe and map snapshots included)
    for label, over in (("default config (early stopping, patience 8)", {}), ("every one of the 30 epochs", {"patience": 0})):
        walls = []
        for seed in range(min(3, args.seeds)):
            ds = load_dataset("wikipedia", data_dir=args.data_dir)
            t0 = time.perf_counter()
            out = train_run(ds, ACMRConfig(seed=seed, **over), root=runs_dir, name=f"timing: {label}, seed {seed}",
                            dataset_label="wikipedia")
            walls.append((time.perf_counter() - t0, out.result.epochs_run))
        print(f"full default training, {label}: " + ", ".join(f"{w:.1f} s ({e} epochs)" for w, e in walls)
              + f"; median {statistics.median(w for w, _ in walls):.1f} s", flush=True)
    time_evaluation(args.data_dir)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))


def time_evaluation(data_dir) -> None:
    """One full evaluation of the test set: embed 693+693 items and rank both directions (medians of 30), on one
    torch thread (the trainer's setting) and on every core, interleaved so a busy machine slows both alike. Which is
    faster has changed from run to run here: two threads were slower (75-81 against 65-71 ms) on one day, when
    torch's idle threads spun while numpy ranked, and faster (50 against 73 ms) the same night."""
    ds = load_dataset("wikipedia", data_dir=data_dir)
    r = train(ds, ACMRConfig(epochs=1, probe_every=0, snapshot_size=0))
    cores = os.cpu_count() or 1
    torch.set_num_threads(1)
    idx = ds.indices("test")
    img, txt = r.model.embed(ds.image_features[idx], "image"), r.model.embed(ds.text_features[idx], "text")
    y = ds.labels[idx]
    assert abs(retrieval_scores(img, txt, y)["avg"] - argsort_scores(img, txt, y)) < 1e-4
    times = {"rank": [], "full_one": [], "full_all": [], "ref": []}
    for _ in range(30):
        for key, threads, fn in (("rank", 1, lambda: retrieval_scores(img, txt, y)),
                                 ("full_one", 1, lambda: evaluate(r.model, ds)),
                                 ("full_all", cores, lambda: evaluate(r.model, ds)),
                                 ("ref", 1, lambda: argsort_scores(img, txt, y))):
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"one test evaluation, 693x693, both directions, mAP@all (device {pick_device('auto')}, load average "
          f"{os.getloadavg()[0]:.1f}): ranking + mAP from embeddings {med['rank']:.1f} ms on one thread (the argsort "
          f"reference in numpy: {med['ref']:.1f} ms, {med['ref'] / med['rank']:.1f}x); with embedding the 2x693 items "
          f"{med['full_one']:.1f} ms on one torch thread, {med['full_all']:.1f} ms on {cores} (medians of 30; "
          "target 20 ms)")


def argsort_scores(img, txt, y) -> float:
    """The ranking as it was before the sort-based one: numpy BLAS similarity, argsort + gather (a reference)."""
    q = img / np.linalg.norm(img, axis=1, keepdims=True)
    g = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    sims, rel, out = q @ g.T, y[:, None] == y[None, :], []
    for s, r in ((sims, rel), (sims.T, rel.T)):
        rr = np.take_along_axis(r, np.argsort(-s, axis=1), axis=1).astype(np.float32)
        hits, n = rr.cumsum(1), rr.sum(1)
        out.append(float((np.where(n > 0, (hits / np.arange(1, rr.shape[1] + 1) * rr).sum(1) / np.maximum(n, 1), 0)).mean()))
    return sum(out) / 2


if __name__ == "__main__":
    main()
