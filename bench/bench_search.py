"""Search benchmark: server-side time per query at a 10,000-item gallery, and 20 concurrent API queries.

    .venv/bin/python bench/bench_search.py [--n-pairs 10000] [--queries 200] [--concurrent 20] [--epochs 1]

1. Builds a gallery of --n-pairs items: the built-in `shapes` dataset at that size (generated and encoded
   on first use, then cached), all splits in the gallery, and an ACMR model with the paper's layer sizes
   (trained --epochs epochs: the timing does not depend on how well it is trained).
2. Server-side time per query (encode + project + rank, `acmr_core.retrieval.SearchIndex`), text and image,
   median and p95 over --queries queries; and the same through the UI handlers (which also render the
   result gallery / caption list).  Targets: text <= 50 ms, image <= 200 ms.
3. Launches the Search app on 127.0.0.1 and sends --concurrent queries at once with gradio_client (half text,
   half image); checks that every one is answered, with the same ranking as a direct call.
Offline: no network besides the loopback.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

TEXTS = ["a star", "a small blue triangle in the corner", "a red heart on a black background", "a crescent moon",
         "a shape with six corners", "a large green arrow pointing left", "a purple circle", "a tiny yellow cross",
         "a diamond on a grey background", "a big orange square at the top"]


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q))


def line(name, xs, target=None):
    med, p95 = pct(xs, 50), pct(xs, 95)
    ok = "" if target is None else ("  OK" if med <= target else "  OVER TARGET")
    return f"  {name:<38} median {med:7.1f} ms   p95 {p95:7.1f} ms   (n={len(xs)}){ok}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-pairs", type=int, default=10000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--concurrent", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=1, help="0 = an untrained model of the same size (faster set-up)")
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args(argv)

    import torch

    from acmr_core.config import ACMRConfig
    from acmr_core.data import load_dataset
    from acmr_core.retrieval import SearchIndex
    from acmr_core.training import train

    print(f"torch threads: {torch.get_num_threads()}, CPU cores: {os.cpu_count()}, load average: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t = time.perf_counter()
    ds = load_dataset("shapes", n_pairs=args.n_pairs, progress=sys.stderr.isatty())
    print(f"dataset: shapes, {ds.n} pairs, image features {ds.image_features.shape[1]}-d, text features "
          f"{ds.text_features.shape[1]}-d ({time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    if args.epochs > 0:
        cfg = ACMRConfig(epochs=args.epochs, probe_every=0, snapshot_size=0)
        model = train(ds, cfg).model
    else:  # untrained: the same sizes, so the same cost per query
        from acmr_core.model import ACMR

        model = ACMR(ds.image_features.shape[1], ds.text_features.shape[1], ds.num_classes, ACMRConfig())
    print(f"model: paper layer sizes, trained {args.epochs} epoch(s) ({time.perf_counter() - t:.1f} s)")
    splits = ("train", "val", "test")
    t = time.perf_counter()
    index = SearchIndex(model, ds, ds.encoders, splits=splits)
    print(f"gallery: {len(index)} items (all splits), index built in {time.perf_counter() - t:.2f} s")

    rng = np.random.default_rng(0)
    texts = [TEXTS[i % len(TEXTS)] for i in range(args.queries)]
    rows = rng.choice(ds.n, size=args.queries, replace=False)
    images = [ds.images[int(r)] for r in rows]
    for _ in range(3):  # warm-up
        index.search_by_text(texts[0], args.k)
        index.search_by_image(images[0], args.k)

    print(f"\nServer-side time per query, core (encode + project + rank), gallery {len(index)}, k={args.k}:")
    tt = []
    for q in texts:
        t = time.perf_counter()
        index.search_by_text(q, args.k)
        tt.append(time.perf_counter() - t)
    ti = []
    for im in images:
        t = time.perf_counter()
        index.search_by_image(im, args.k)
        ti.append(time.perf_counter() - t)
    print(line("text query", tt, 50))
    print(line("image query (64x64 PIL image)", ti, 200))
    # an uploaded file: decode + checks + encode + rank
    tmp = Path(tempfile.mkdtemp())
    big = tmp / "photo.jpg"
    img = ds.images[int(rows[0])].resize((1600, 1200))
    img.save(big, quality=90)
    tf = []
    for _ in range(min(50, args.queries)):
        t = time.perf_counter()
        index.search_by_image(str(big), args.k)
        tf.append(time.perf_counter() - t)
    print(line("image query (1600x1200 JPEG file)", tf, 200))

    from app import search as S
    from app.model_store import ModelStore

    store = ModelStore(tmp / "no-checkpoints")
    store.set_index(index, "benchmark model")
    print("\nThrough the UI handlers (core + rendering the result gallery / caption list):")
    ht, hi = [], []
    for q in texts[:100]:
        t = time.perf_counter()
        S.search_text(q, args.k, splits, False, store=store)
        ht.append(time.perf_counter() - t)
    for im in images[:100]:
        t = time.perf_counter()
        S.search_image(im, args.k, splits, False, store=store)
        hi.append(time.perf_counter() - t)
    print(line("text handler", ht))
    print(line("image handler", hi))

    # concurrency through the named API endpoints
    from gradio_client import Client, handle_file

    # the API endpoints search the index's default gallery: here every split, 10,000 items
    demo = S.build_search_app(store)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, share=False)
    try:
        url = f"http://127.0.0.1:{port}/"
        n = args.concurrent
        qfiles = []
        for i in range(n // 2):
            p = tmp / f"q{i}.png"
            images[i].save(p)
            qfiles.append(p)
        jobs = []
        expected = []
        for i in range(n):
            if i % 2 == 0:
                q = texts[i % len(texts)]
                expected.append([h.index for h in index.search_by_text(q, args.k).hits])
                jobs.append(("text", q))
            else:
                p = qfiles[i // 2]
                expected.append([h.index for h in index.search_by_image(str(p), args.k).hits])
                jobs.append(("image", p))
        results: list = [None] * n
        latency = [0.0] * n
        server_side = [0.0] * n
        barrier = threading.Barrier(n)

        def worker(i):
            client = Client(url, verbose=False)
            kind, q = jobs[i]
            barrier.wait()
            t = time.perf_counter()
            try:
                if kind == "text":
                    r = client.predict(q, args.k, api_name="/search_by_text")
                else:
                    r = client.predict(handle_file(str(q)), args.k, api_name="/search_by_image")
                results[i] = r
                server_side[i] = r["seconds"]
            except Exception as e:  # noqa: BLE001
                results[i] = e
            latency[i] = time.perf_counter() - t

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join(300)
        wall = time.perf_counter() - t0
        answered = [r for r in results if isinstance(r, dict)]
        correct = sum(isinstance(r, dict) and [h["id"] for h in r["results"]] == e for r, e in zip(results, expected))
        errors = [r for r in results if not isinstance(r, dict)]
        print(f"\n{n} concurrent gradio_client queries ({n - n // 2} text, {n // 2} image) against {url}:")
        print(f"  answered {len(answered)}/{n}, correct (same ranking as a direct call) {correct}/{n}, "
              f"dropped/failed {len(errors)}; all done in {wall:.2f} s")
        print(line("client-side latency under load", latency))
        print(line("server-side search time (from the API)", [s for s in server_side if s]))
        for e in errors[:3]:
            print(f"  error: {type(e).__name__}: {e}")
        ok = len(answered) == n and correct == n
    finally:
        demo.close()
    target_ok = pct(tt, 50) <= 50 and pct(ti, 50) <= 200
    print(f"\nTargets (median): text <= 50 ms: {pct(tt, 50):.1f} ms; image <= 200 ms: {pct(ti, 50):.1f} ms; "
          f"{n} concurrent all answered correctly: {'yes' if ok else 'NO'}")
    return 0 if (ok and target_ok) else 1


if __name__ == "__main__":
    sys.exit(main())
