"""Benchmark of the dashboard against the issue's targets.

  .venv/bin/python bench/bench_app.py [--json out.json] [--skip-server] [--epochs N] [--runs-dir DIR]

1. ready    `streamlit run app/main.py` on a free loopback port, until /_stcore/health and /healthz answer
            (target <= 15 s) and until the mounted Gradio app answers at /gradio/.
2. train    the dashboard's default run (shapes, the `demo` preset of acmr_core/presets.py, exactly what the
            dashboard starts with): Start -> training finished -> the final UMAP map ready (target <= 8 s),
            measured twice: (a) in the served app, with Chromium showing the page (Start clicked,
            Maps tab open; progress read from /healthz) once the app's start-up work (default
            dataset, UMAP compilation) is done; (b) in this process, same code path (acmr_core.live.TrainingRun
            and its UMAP worker), no page.
3. redraw   one live redraw during that training (target <= 300 ms): the server-side work of one poll of the
            Training tab (build the figures from a RunView and serialise them as app/live_chart.py does) and of the
            Maps tab (two map figures), sampled while training runs; plus one full page run in AppTest.
4. umap     one UMAP frame of 2,000 points (1,000 pairs x 200-d embeddings) after warm-up (target <= 5 s),
            from scratch and initialised from a previous frame.
Timings depend on the machine and on what else runs on it: the JSON records the CPU count and load average.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
PY = sys.executable

from browser import MISSING, chromium_context, free_port, have_chromium, http_status, stop_process  # noqa: E402  (tests/browser.py)


def bench_ready(timeout: float = 120, browser: bool = True) -> dict:
    port = free_port()
    env = dict(os.environ, ACMR_PREFETCH="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen([PY, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {"port": port}

    def answered(name: str, path: str) -> None:
        while http_status(f"http://127.0.0.1:{port}{path}") != 200:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with code {proc.returncode}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"{path} did not answer within {timeout} s")
            time.sleep(0.1)
        out[name] = round(time.perf_counter() - t0, 2)

    try:
        answered("health_s", "/_stcore/health")
        answered("healthz_s", "/healthz")
        if browser and have_chromium():       # what a presenter waits for: the page, drawn, with its Start button
            with chromium_context(1500, 1500) as ctx:
                pg = ctx.new_page()
                pg.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                pg.get_by_role("button", name="Start").wait_for(timeout=timeout * 1000)
                out["first_page_s"] = round(time.perf_counter() - t0, 2)
        answered("gradio_s", "/gradio/")
        answered("page_s", "/")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
            out["healthz"] = json.loads(r.read())
        if browser:
            out["browser"] = bench_browser_run(f"http://127.0.0.1:{port}/")
    finally:
        stop_process(proc, 10)
    return out


def _health(url: str) -> dict:
    with urllib.request.urlopen(url + "healthz", timeout=5) as r:
        return json.loads(r.read())


def bench_browser_run(url: str, timeout: float = 600) -> dict:
    """The default run as a user sees it: Chromium on the page, Start pressed, the Maps tab open, until the
    run finished and its last UMAP frame is ready (read from /healthz). Skipped without Chromium/Playwright."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return {"skipped": "playwright is not installed"}
    if not have_chromium():
        return {"skipped": MISSING}

    # wait for the default dataset and UMAP's compilation, as a presenter would (the page says when)
    t_wait = time.perf_counter()
    while True:
        h = _health(url)
        if h["default_dataset"] == "loaded" and h["umap"] in ("ready", "failed") and h.get("trainer") != "warming":
            break
        if time.perf_counter() - t_wait > timeout:
            return {"error": f"start-up work not done after {timeout} s: {h}"}
        time.sleep(0.5)
    ready_s = time.perf_counter() - t_wait
    with chromium_context(1500, 1500) as ctx:
        pg = ctx.new_page()
        pg.goto(url, wait_until="domcontentloaded")
        pg.get_by_role("button", name="Start").wait_for(timeout=60_000)
        old = {r["id"] for r in _health(url)["runs"]}
        t0 = time.perf_counter()
        pg.get_by_role("button", name="Start").click()
        pg.get_by_role("tab", name="Maps").click()
        result = {"waited_for_startup_work_s": round(ready_s, 1)}
        while True:
            runs = [r for r in _health(url)["runs"] if r["id"] not in old]
            r = runs[0] if runs else None
            if r and r["state"] == "finished" and "trained_s" not in result:
                result["trained_s"] = round(time.perf_counter() - t0, 1)
            if r and r["state"] in ("finished", "stopped", "failed") and r["umap_pending"] == 0:
                result.update(start_to_final_maps_s=round(time.perf_counter() - t0, 1), run=r)
                break
            if time.perf_counter() - t0 > timeout:
                result["error"] = f"not done after {timeout} s: {r}"
                break
            time.sleep(0.25)
        time.sleep(2)
        shot = Path(tempfile.gettempdir()) / "acmr-bench-final-maps.png"
        pg.screenshot(path=str(shot))
        result["screenshot"] = str(shot)
    return result


def _serialise(fig) -> float:
    """What the live charts do with a figure before they send it (app/live_chart.py: plotly's JSON encoder), timed."""
    from app.live_chart import figure_json

    t = time.perf_counter()
    figure_json(fig, {})
    return time.perf_counter() - t


def redraw_times(run) -> dict:
    from app import charts

    t = time.perf_counter()
    v = run.view()
    figs = charts.training_figures(v)
    build = time.perf_counter() - t
    ser = sum(_serialise(f) for f in figs.values())
    out = {"training_tab_ms": (build + ser) * 1000}
    frames = v.umap or v.pca
    if frames:
        f = frames[max(frames)]
        t = time.perf_counter()
        rng = charts.axis_range(list(frames.values()))
        caps = getattr(run.dataset, "captions", None)
        maps_figs = [charts.embedding_map(f, c, v.class_names, caps, ranges=rng) for c in ("modality", "class")]
        out["maps_tab_ms"] = (time.perf_counter() - t + sum(_serialise(m) for m in maps_figs)) * 1000
    return out


def bench_train(epochs: int | None) -> dict:
    from acmr_core import maps
    from acmr_core.live import TrainingRun, default_umap_epochs
    from app import dashboard_defaults as dd
    from app import services

    t = time.perf_counter()
    maps.warm_up()
    maps.wait_warm(300)
    warm = time.perf_counter() - t
    from acmr_core.pipeline import warm_up
    from app import charts
    charts.warm_up()                      # as the app does at start-up
    warm_up()                             # ... and the trainer's first-run costs (app/services.start_background)
    t = time.perf_counter()
    ds = services.DEFAULT_SPEC.load()
    load = time.perf_counter() - t
    cfg = dd.default_config()
    if epochs:
        cfg = cfg.replace(epochs=epochs)
    # (1) Start -> final maps with nothing else in this process (the redraw sampling below holds the GIL and a
    # core for ~100 ms every 0.5 s, which slowed this very run by about 2x when measured together)
    t0 = time.perf_counter()
    run = TrainingRun(ds, cfg, umap_epochs=default_umap_epochs(cfg.epochs)).start()
    run.join()
    t_trained = time.perf_counter() - t0
    run.wait_maps(300)
    t_maps = time.perf_counter() - t0
    # (2) the same run again, sampling one live redraw every 0.5 s while it trains
    t0 = time.perf_counter()
    run = TrainingRun(ds, cfg, umap_epochs=default_umap_epochs(cfg.epochs)).start()
    samples: list[dict] = []
    while run.state in ("ready", "running", "paused"):
        time.sleep(0.5)
        if run.view().history:
            samples.append(redraw_times(run))
    run.wait_maps(300)
    t_maps_sampled = time.perf_counter() - t0
    v = run.view()
    first, last = v.history[0], v.history[-1]

    def stats(key):
        xs = [s[key] for s in samples if key in s]
        if not xs:
            return None
        xs = sorted(xs)
        return {"median_ms": round(statistics.median(xs), 1), "p95_ms": round(xs[int(0.95 * (len(xs) - 1))], 1),
                "max_ms": round(max(xs), 1), "n": len(xs)}

    return {"epochs": cfg.epochs, "umap_warm_up_s": round(warm, 1), "dataset_load_s": round(load, 1),
            "state": v.state, "start_to_trained_s": round(t_trained, 1), "start_to_final_maps_s": round(t_maps, 1),
            "start_to_final_maps_while_sampling_redraws_s": round(t_maps_sampled, 1),
            "umap_frames": sorted(v.umap), "umap_error": v.umap_error,
            "val_map_avg": [round(first["val_avg"], 3), round(last["val_avg"], 3)],
            "probe": [first["probe"], last["probe"]], "gap": [round(first["gap"], 3), round(last["gap"], 3)],
            "redraw_training_tab": stats("training_tab_ms"), "redraw_maps_tab": stats("maps_tab_ms")}


def bench_page_run() -> dict:
    """One full page run (script execution) in AppTest while a run with history exists."""
    from streamlit.testing.v1 import AppTest

    os.environ["ACMR_PREFETCH"] = "0"
    at = AppTest.from_file(str(ROOT / "app" / "page.py"), default_timeout=120)
    at.run()
    at.selectbox(key="ds_kind").select("wikipedia").run()
    wiki = ROOT.parent / "shared" / "data" / "wikipedia"
    if not wiki.is_dir():
        return {"skipped": "no Wikipedia folder for a quick run"}
    at.text_input(key="ds_dir_wikipedia").input(str(wiki)).run()
    at.session_state["cfg_epochs"] = 200
    at.run()
    at.button(key="btn_start").click().run()
    from acmr_core.live import REGISTRY

    run = REGISTRY.get(at.session_state["run_id"])
    while run.view().epoch < 2:
        time.sleep(0.3)
    times = []
    for _ in range(10):
        t = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - t) * 1000)
    run.stop()
    run.join(30)
    return {"full_page_run_ms": {"median": round(statistics.median(times), 1), "max": round(max(times), 1)}}


def bench_umap(n_pairs: int = 1000, dim: int = 200) -> dict:
    import numpy as np

    from acmr_core import maps

    maps.warm_up()
    maps.wait_warm(300)
    rng = np.random.default_rng(0)
    classes = rng.normal(size=(10, dim))
    y = rng.integers(0, 10, n_pairs)
    snap = {"image": np.tanh(classes[y] + rng.normal(size=(n_pairs, dim))).astype(np.float32),
            "text": np.tanh(classes[y] + 0.5 + rng.normal(size=(n_pairs, dim))).astype(np.float32),
            "labels": y, "index": np.arange(n_pairs)}
    t = time.perf_counter()
    f0 = maps.umap_frame(snap, 0)
    scratch = time.perf_counter() - t
    snap2 = {**snap, "image": snap["image"] * 0.9, "text": snap["text"] * 0.9}
    t = time.perf_counter()
    maps.umap_frame(snap2, 1, previous=f0.coords)
    init = time.perf_counter() - t
    t = time.perf_counter()
    maps.pca_frame(snap2, 1, previous=f0.coords)
    pca = time.perf_counter() - t
    return {"points": 2 * n_pairs, "umap_from_scratch_s": round(scratch, 2),
            "umap_from_previous_s": round(init, 2), "pca_ms": round(pca * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--skip-page", action="store_true")
    ap.add_argument("--epochs", type=int, default=None, help="override the default run's epochs")
    ap.add_argument("--no-browser", action="store_true", help="skip the run watched in Chromium")
    ap.add_argument("--runs-dir", default=None, help="where the benchmark's runs are recorded (default: a new "
                                                     "temporary folder, so they never join the dashboard's list)")
    args = ap.parse_args()
    # the served app and the in-process runs record here (acmr_core/runs.py), and the app starts with an empty list
    os.environ["ACMR_RUNS_DIR"] = args.runs_dir or tempfile.mkdtemp(prefix="acmr-bench-runs-")
    print(f"runs recorded under {os.environ['ACMR_RUNS_DIR']}", file=sys.stderr)
    import torch

    from acmr_core.model import pick_device
    from app import dashboard_defaults as dd

    dev = pick_device(dd.default_config().device)
    res = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "device": str(dev),
           "preset": dd.DEMO_PRESET, "config": dd.default_config().to_dict()}
    print(f"device: {dev}{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}; preset "
          f"'{dd.DEMO_PRESET}'; cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    if not args.skip_server:
        res["ready"] = bench_ready(browser=not args.no_browser)
        print("ready:", res["ready"], flush=True)
    res["umap"] = bench_umap()
    print("umap:", res["umap"], flush=True)
    res["train"] = bench_train(args.epochs)
    print("train:", res["train"], flush=True)
    if not args.skip_page:
        res["page"] = bench_page_run()
        print("page:", res["page"], flush=True)
    res["load_average_at_end"] = os.getloadavg()
    browser = res.get("ready", {}).get("browser", {})
    targets = [("app ready (health) <= 15 s", res.get("ready", {}).get("healthz_s"), 15),
               ("first page drawn, Start shown (no target)", res.get("ready", {}).get("first_page_s"), None),
               ("Start -> final maps <= 8 s (in-process)", res["train"]["start_to_final_maps_s"], 8),
               ("Start -> final maps <= 8 s (browser)", browser.get("start_to_final_maps_s"), 8),
               ("live redraw, training tab <= 300 ms", (res["train"]["redraw_training_tab"] or {}).get("max_ms"), 300),
               ("live redraw, maps tab <= 300 ms", (res["train"]["redraw_maps_tab"] or {}).get("max_ms"), 300),
               ("UMAP 2,000 points <= 5 s", max(res["umap"]["umap_from_scratch_s"], res["umap"]["umap_from_previous_s"]), 5)]
    print("\ntarget                                             measured   ok")
    for name, got, limit in targets:
        ok = "–" if got is None or limit is None else ("yes" if got <= limit else "NO")
        print(f"{name:<50} {got if got is not None else '–':>9}   {ok}")
    res["targets"] = [{"target": n, "measured": g, "limit": lim, "ok": None if g is None or lim is None else g <= lim}
                      for n, g, lim in targets]
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
