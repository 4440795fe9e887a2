"""Real photos with captions in languages written without spaces: the default encoders against hog_color + word tfidf.

    .venv/bin/python bench/bench_photos.py [--per-photo 40] [--seeds 3] [--folder /tmp/acmr_photos]
    .venv/bin/python bench/bench_photos.py --shapes 1000 --seeds 2     # which image encoder serves `shapes`

Builds (once; reused if present) the largest real photo folder that can be made offline:
`acmr_core/datasets/sample_photos.py` (27 sample photos of scikit-image and scikit-learn, 14 subjects,
`--per-photo` augmented crops each, captions generated in Chinese and Japanese), then loads it through the
`folder` loader like a user's own photos and trains ACMR with its default settings, for

  defaults       the folder loader's defaults: efficientnet_lite0 + tfidf (analyzer auto -> character n-grams)
  char 1-3       the same with character 1-3-grams (the n-gram length is chosen on validation mAP, not test)
  hog + word     hog_color + tfidf with the word analyzer (what the folder loader used before)

Prints validation and test mAP@all (both directions and their average, mean ± std over seeds), the time to
encode one photo (one torch thread, batches of 32, decoding included), the server-side time of a search by an
uploaded photo (SearchIndex, as the search tab calls it), and the device. The feature cache is
used: a second run only trains.
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
from acmr_core.datasets.sample_photos import write_photo_folder  # noqa: E402
from acmr_core.training import evaluate, train  # noqa: E402

VARIANTS = {
    "defaults": {},
    "char 1-3": {"text_params": {"analyzer": "char", "char_ngram_max": 3}},
    "hog + word": {"image_encoder": "hog_color", "text_params": {"analyzer": "word"}},
}


def ms(xs):
    return f"{statistics.mean(xs):.3f}±{statistics.stdev(xs) if len(xs) > 1 else 0:.3f}"


def photo_ms(encoder: str, folder: Path, n: int = 64) -> float:
    """Milliseconds per photo to open and encode `n` of the folder's images, one torch thread, batches of 32."""
    import torch

    from acmr_core.encoders import make_encoder
    from acmr_core.features import ImageFiles, encode_images

    torch.set_num_threads(1)
    images = ImageFiles(sorted((folder / "images").glob("*.jpg"))[:n])
    enc = make_encoder(encoder)
    encode_images(enc, images[:4], batch_size=4)  # load the weights, warm up
    t0, c0 = time.perf_counter(), time.process_time()
    encode_images(enc, images, batch_size=32)
    return (time.perf_counter() - t0) / len(images) * 1000, (time.process_time() - c0) / len(images) * 1000


def photo_query_ms(model, ds, folder: Path, repeats: int = 10) -> float:
    """Median server-side time (SearchIndex: encode + project + rank) of a search by an uploaded photo."""
    from PIL import Image

    from acmr_core.retrieval import SearchIndex

    index = SearchIndex(model, ds)
    with Image.open(sorted((folder / "images").glob("*.jpg"))[-1]) as im:
        upload = im.convert("RGB").resize((640, 480))
    index.search_by_image(upload, k=10)  # warm
    walls, cpus = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        walls.append(index.search_by_image(upload, k=10).seconds * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def shapes_check(n_pairs: int, seeds: int) -> None:
    """Which image encoder serves the `shapes` demo: validation mAP, load time (encoding) and train time."""
    for encoder in ("hog_color", "efficientnet_lite0"):
        t0 = time.perf_counter()
        ds = load_dataset("shapes", image_encoder=encoder, n_pairs=n_pairs, progress=False)
        load_s = time.perf_counter() - t0
        runs = [train(ds, ACMRConfig(seed=seed, probe_every=0)) for seed in range(seeds)]
        print(f"shapes ({n_pairs} pairs) with {encoder:<19} validation mAP@all avg "
              f"{ms([r.best_val['avg'] for r in runs])}, load + encode {load_s:.0f} s, "
              f"train {statistics.mean(r.train_seconds for r in runs):.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-photo", type=int, default=40, help="augmented pairs per source photo")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--holdout", default="photo", choices=["photo", "crop"],
                    help="test items: crops of held-out photos (default) or held-out crops of seen photos")
    ap.add_argument("--folder", default="/tmp/acmr_photos", help="where the photo folder is written (and reused)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--shapes", type=int, default=0, metavar="N_PAIRS",
                    help="instead: compare hog_color and efficientnet_lite0 on N_PAIRS shapes (validation mAP, time)")
    ap.add_argument("--timing", action="store_true", help="only the timings (encoding, photo query), no training runs")
    args = ap.parse_args()
    if args.shapes:
        import torch

        torch.set_num_threads(1)
        return shapes_check(args.shapes, args.seeds)
    folder = Path(args.folder) / f"{args.holdout}-per{args.per_photo}"
    if not (folder / "captions.csv").is_file():
        t0 = time.perf_counter()
        write_photo_folder(folder, per_photo=args.per_photo, holdout=args.holdout)
        print(f"wrote {folder} in {time.perf_counter() - t0:.0f} s", flush=True)
    import torch

    torch.set_num_threads(1)
    device = "CPU, one torch thread" + (f" ({os.cpu_count()} cores)" if os.cpu_count() else "")
    if args.timing:
        return timing_only(folder, device)
    out = {}
    for name in args.variants:
        t0 = time.perf_counter()
        ds = load_dataset("folder", data_dir=folder, progress=False, **VARIANTS[name])
        load_s = time.perf_counter() - t0
        n_tr, n_te = int((ds.split == "train").sum()), int((ds.split == "test").sum())
        rows = []
        for seed in range(args.seeds):
            r = train(ds, ACMRConfig(seed=seed, probe_every=0))
            rows.append({"val": r.best_val, "test": evaluate(r.model, ds, "test"), "s": r.train_seconds})
            print(f"  {name:<11} seed {seed}: val {r.best_val['avg']:.3f}  test {rows[-1]['test']['img2txt']:.3f} / "
                  f"{rows[-1]['test']['txt2img']:.3f}  avg {rows[-1]['test']['avg']:.3f}  ({r.train_seconds:.1f} s)",
                  flush=True)
        if name == "defaults":
            query_ms = photo_query_ms(r.model, ds, folder)
        enc = ds.encoders
        out[name] = (rows, f"{enc['image'].name} + tfidf {enc['text'].state().get('analyzer')}"
                           f" 1-{enc['text'].params['char_ngram_max' if enc['text'].analyzer_used == 'char' else 'ngram_max']}",
                     load_s)
    print(f"\n{folder}: {ds.n} pairs ({n_tr} train incl. validation, {n_te} test), {ds.num_classes} classes; "
          f"captions in Chinese and Japanese; test: held-out {args.holdout}s; mean±std over {args.seeds} seeds; {device}")
    print(f"{'variant':<12}{'encoders':<34}{'val avg':>13}{'I2T':>13}{'T2I':>13}{'Avg':>13}{'train s':>9}")
    for name, (rows, encs, _) in out.items():
        cells = [ms([r["val"]["avg"] for r in rows])] + [ms([r["test"][d] for r in rows]) for d in ("img2txt", "txt2img", "avg")]
        print(f"{name:<12}{encs:<34}" + "".join(f"{c:>13}" for c in cells) + f"{statistics.mean(r['s'] for r in rows):>9.1f}")
    if "defaults" in out:
        print_query(query_ms)
    print_encoding(folder, device)


def print_query(query_ms) -> None:
    print(f"search by an uploaded 640x480 photo, server side (encode + project + rank over the test gallery), "
          f"median of 10: {query_ms[0]:.0f} ms wall, {query_ms[1]:.0f} ms CPU")


def print_encoding(folder, device) -> None:
    for encoder in ("efficientnet_lite0", "hog_color"):
        wall, cpu = photo_ms(encoder, folder)
        print(f"encoding one photo with {encoder}: {wall:.1f} ms wall, {cpu:.1f} ms CPU (open + encode, {device})")


def timing_only(folder: Path, device: str) -> None:
    """The timings alone, from the cached features: a 1-epoch model has the trained one's size and speed."""
    ds = load_dataset("folder", data_dir=folder, progress=False)
    print_query(photo_query_ms(train(ds, ACMRConfig(epochs=1, probe_every=0)).model, ds, folder))
    print_encoding(folder, device)


if __name__ == "__main__":
    main()
