"""Timing of the `shapes` dataset and the offline encoders, against the targets of issue 3.

    .venv/bin/python bench/bench_shapes.py

  generate + encode the default dataset the first time      target <= 30 s
  load it again from the cache                               target <= 1 s
  encode one text query (tfidf)                              target <= 5 ms
  encode one image query (hog_color)                         target <= 50 ms

A fresh temporary cache folder is used, so the first load really generates and encodes.

    .venv/bin/python bench/bench_shapes.py --trap

also shows the colour trap: CCA, which aligns the two modalities pair by pair without labels, finds
colour first (high mAP when "relevant" means "same colour", near chance when it means "same class").
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(fn, repeats: int = 50) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def row(what: str, value: float, unit: str, target: float) -> None:
    ok = "ok" if value <= target else "MISSED"
    print(f"  {what:<52} {value:8.3f} {unit:<2}  (target <= {target:g} {unit})  {ok}")


def main() -> None:
    t = time.perf_counter()
    from PIL import Image

    from acmr_core.data import load_dataset
    import_s = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as cache:
        print(f"shapes, default options (n_pairs=3000, image_size=64, difficulty='normal'); fresh cache {cache}")
        t = time.perf_counter()
        ds = load_dataset("shapes", cache_dir=cache, progress=False)
        first = time.perf_counter() - t
        t = time.perf_counter()
        load_dataset("shapes", cache_dir=cache, progress=False)
        again = time.perf_counter() - t
        code = ("import time; t=time.perf_counter(); from acmr_core.data import load_dataset; "
                f"ds=load_dataset('shapes', cache_dir={cache!r}, progress=False); a=time.perf_counter()-t; "
                "t=time.perf_counter(); ds.encoders['text'].encode(['a red star']); print(a, time.perf_counter()-t)")
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        cold, first_text = (float(x) for x in out.stdout.strip().splitlines()[-1].split())

        img, txt = ds.encoders["image"], ds.encoders["text"]
        query_img = ds.images[0]
        big = Image.open(ROOT / "assets" / "examples" / sorted(p.name for p in (ROOT / "assets" / "examples").glob("*.png"))[0]) \
            if (ROOT / "assets" / "examples").is_dir() else query_img.resize((128, 128))
        text_ms = median_ms(lambda: txt.encode(["a small red star in the top left"]))
        image_ms = median_ms(lambda: img.encode([query_img]))
        big_ms = median_ms(lambda: img.encode([big]), repeats=20)

    print(f"  (importing acmr_core.data: {import_s:.2f} s)")
    print(f"  features: image {ds.image_features.shape}, text {ds.text_features.shape}; "
          f"splits " + ", ".join(f"{s} {(ds.split == s).sum()}" for s in ("train", "val", "test")))
    row("generate + encode, first time", first, "s", 30)
    row("load from cache (same process)", again, "s", 1)
    row("load from cache (fresh process, incl. imports)", cold, "s", 1)
    row("encode one text query, tfidf (median)", text_ms, "ms", 5)
    print(f"  {'  (first text query in that fresh process: imports sklearn)':<52} {1000 * first_text:8.1f} ms")
    row("encode one image query, hog_color, 64 px (median)", image_ms, "ms", 50)
    row(f"encode one image query, hog_color, {big.size[0]} px {big.mode} (median)", big_ms, "ms", 50)


def colour_trap(ds, components: int = 4) -> None:
    """mAP@all on the test split of a CCA space (no labels used), judged by class and by colour."""
    from sklearn.cross_decomposition import CCA
    from sklearn.decomposition import PCA

    from acmr_core.metrics import mean_average_precision as mAP

    tr, te = ds.indices("train"), ds.indices("test")
    pv = PCA(64, random_state=0).fit(ds.image_features[tr])
    pt = PCA(64, random_state=0).fit(ds.text_features[tr])
    cca = CCA(components, max_iter=1000).fit(pv.transform(ds.image_features[tr]), pt.transform(ds.text_features[tr]))
    a, b = cca.transform(pv.transform(ds.image_features[te]), pt.transform(ds.text_features[te]))
    colour = np.unique(ds.attributes["colour"], return_inverse=True)[1][te]
    print(f"colour trap: CCA with {components} components (pairs only, no labels), test mAP@all (img2txt / txt2img)")
    for what, y in (("same class", ds.labels[te]), ("same colour", colour)):
        chance = float(np.sum((np.bincount(y) / len(y)) ** 2))  # share of relevant items
        print(f"  relevant = {what:<12} {mAP(a, b, y, y):.3f} / {mAP(b, a, y, y):.3f}   (chance about {chance:.2f})")


if __name__ == "__main__":
    main()
    if "--trap" in sys.argv:
        from acmr_core.data import load_dataset

        colour_trap(load_dataset("shapes", progress=False))
