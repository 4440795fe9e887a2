"""Does the adversary make the common space modality-invariant? Every game, and the model without an adversary.

    .venv/bin/python bench/bench_adversary.py                                  # shapes + Wikipedia, 5 seeds, all games
    .venv/bin/python bench/bench_adversary.py --datasets shapes --seeds 2 --games paper,lipschitz --jobs 2
    .venv/bin/python bench/bench_adversary.py --datasets shapes --weights 0,0.1,0.3,1,3    # the default game's weight

Settings: a preset (default `demo`, what the dashboard starts with; acmr_core/presets.py), the best epoch chosen on
validation, the same for both datasets; only `game` (and `use_adversarial`, or `grl_max` with --weights)
changes. On the TEST split: mAP@all both directions and their mean (cosine), the held-out modality probe
(a logistic regression fitted on the training split's embeddings, balanced accuracy on the test split's;
0.5 = invariant) and kNN modality mixing (k = 10, cosine; 1 = mixed, 0 = segregated). Mean ± std over seeds.
Prints a markdown table, and the device it ran on.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acmr_core.config import GAMES, ACMRConfig  # noqa: E402

NONE = "none"           # the no-adversary ablation (use_adversarial=False)
DATASETS = ("shapes", "wikipedia")


def load(name: str, wiki_dir: str):
    from acmr_core.data import load_dataset

    return load_dataset("shapes", progress=False) if name == "shapes" else load_dataset("wikipedia", data_dir=wiki_dir)


def one_run(job: dict) -> dict:
    """Train one (dataset, variant, seed) through the one pipeline (a run folder under job["runs_dir"]) and
    read its test-split figures from the metrics it wrote."""
    from acmr_core.pipeline import train_run
    from acmr_core.presets import preset_config

    ds = load(job["dataset"], job["wiki_dir"])
    cfg = preset_config(None if job["preset"] == "none" else job["preset"], seed=job["seed"], **job["config"])
    t0 = time.perf_counter()
    out = train_run(ds, cfg, root=job["runs_dir"], name=f"bench_adversary: {job['label']}, seed {job['seed']}")
    seconds = time.perf_counter() - t0
    if out.metrics is None:
        raise SystemExit(f"error: {job['dataset']} {job['label']} seed {job['seed']} {out.state}: {out.message}")
    m = out.metrics["test"]
    return {**job, "map": m["map_all"], "modality_probe": m["modality_probe"], "knn_mixing": m["knn_mixing"],
            "seconds": seconds, "best_epoch": out.metrics["best_epoch"], "error": out.metrics["error"],
            "run_id": out.run.run_id}


def variants(games: list[str], weights: list[float] | None) -> list[tuple[str, dict]]:
    """(row label, config changes): the no-adversary ablation, each game, or the default game at each weight."""
    out = []
    for g in games:
        if g == NONE:
            out.append(("no adversary", {"use_adversarial": False}))
        elif weights is None:
            out.append((f"`{g}`" + (" (default)" if g == ACMRConfig().game else ""), {"game": g}))
        else:
            out += [(f"`{g}`, γ max {w:g}", {"game": g, "grl_max": w}) for w in weights]
    return out


def ms(xs) -> str:
    return f"{statistics.mean(xs):.3f}±{statistics.stdev(xs) if len(xs) > 1 else 0:.3f}"


def device_line(jobs: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = f", CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"device: {os.cpu_count()} CPU cores ({cpu}){gpu}; torch {torch.__version__}, 1 torch thread per run, "
            f"{jobs} run(s) at a time; load average at the end {os.getloadavg()[0]:.1f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: shapes, wikipedia")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "wikipedia"), help="the Wikipedia folder")
    ap.add_argument("--seeds", default="5", help="a count (5 = seeds 0-4) or a comma-separated list")
    ap.add_argument("--games", default=",".join([NONE, *GAMES]),
                    help=f"comma-separated, from: {NONE} (no adversary), {', '.join(GAMES)}")
    ap.add_argument("--weights", default=None, help="comma-separated γ max values: one row per game and weight")
    ap.add_argument("--preset", default="demo", help="demo (the dashboard's start), paper, or none (config defaults)")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (each with one torch thread)")
    ap.add_argument("--json", default=None, help="also write every run's figures to this file")
    ap.add_argument("--runs-dir", default=None, help="where the run folders go (default: a new temporary folder)")
    args = ap.parse_args(argv)
    seeds = list(range(int(args.seeds))) if "," not in args.seeds else [int(s) for s in args.seeds.split(",")]
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    unknown = [g for g in games if g != NONE and g not in GAMES]
    if unknown:
        sys.exit(f"error: unknown game(s) {', '.join(unknown)}; choose from {NONE}, {', '.join(GAMES)}")
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for d in datasets:
        if d not in DATASETS:
            sys.exit(f"error: unknown dataset {d}; choose from {', '.join(DATASETS)}")
        load(d, args.data_dir)                       # generate / check once, before the workers start
    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="acmr-bench-runs-")
    print(f"runs recorded under {runs_dir} (python -m acmr_core runs --dir {runs_dir})", file=sys.stderr)
    jobs = [{"dataset": d, "label": label, "config": over, "seed": s, "wiki_dir": args.data_dir, "preset": args.preset,
             "runs_dir": runs_dir}
            for d in datasets for label, over in variants(games, weights) for s in seeds]
    t0 = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(one_run, jobs))
    else:
        runs = [one_run(j) for j in jobs]
    for r in runs:
        print(f"  {r['dataset']:<9} {r['label']:<32} seed {r['seed']}: mAP {r['map']['avg']:.3f} "
              f"probe {r['modality_probe']:.3f} mixing {r['knn_mixing']:.3f} ({r['seconds']:.1f} s)"
              + (f" ERROR {r['error']}" if r["error"] else ""), file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    print(f"Test split, preset `{args.preset}` (the dashboard starts from `demo`), best epoch on validation, seeds "
          f"{', '.join(map(str, seeds))}; mean ± std. Probe: fitted on the training split, 0.5 = invariant. "
          "Mixing: k = 10 cosine neighbours, 1 = mixed.\n")
    print("| dataset | game | mAP@all I2T | T2I | Avg | modality probe | kNN mixing | run s (train, test, save) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for d in datasets:
        for label, _ in variants(games, weights):
            rows = [r for r in runs if r["dataset"] == d and r["label"] == label]
            cells = [ms([r["map"][k] for r in rows]) for k in ("img2txt", "txt2img", "avg")]
            cells += [ms([r["modality_probe"] for r in rows]), ms([r["knn_mixing"] for r in rows]),
                      f"{statistics.mean(r['seconds'] for r in rows):.1f}"]
            print(f"| {d} | {label} | " + " | ".join(cells) + " |")
    print(f"\n{device_line(args.jobs)}; wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
