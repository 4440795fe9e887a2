"""The Compare tab: does the adversary do its job? Thin: widgets, layout and figures.

Two parts, each a background job this page polls (the work is in acmr_core.compare and acmr_core.sweep):
  - a comparison of variants of the settings on the left (the chosen adversary game, no adversary, and the
    paper's game when the chosen one differs), trained one after the other with the same seed: maps coloured
    by modality side by side, both invariance measures, D's accuracy and mAP per epoch, and sentences that
    say what the numbers show;
  - a one-click sweep of the adversary's weight that plots mixing, probe and mAP against it, with its cost
    measured and said before it starts.
"""
from __future__ import annotations

import json

import numpy as np
import streamlit as st

from acmr_core import compare, sweep
from app import charts, services
from app.dashboard_defaults import EXPLAIN

ss = st.session_state
BADGES = [":blue-badge[A]", ":orange-badge[B]", ":violet-badge[C]", ":green-badge[D]"]
STATE = {"ready": "ready", "running": "training", "paused": "paused", "stopped": "stopped", "finished": "finished",
         "failed": "failed"}
SWEEP_MODES = {"quick": "Quick (reduced setting)", "full": "Your settings (slower)"}

HELP = {
    "map": "Mean of both retrieval directions (image → text, text → image), validation split, mAP@all.",
    "probe": "Modality probe: a straight line (logistic regression) fitted on training embeddings tries to tell image "
             "from text on held-out ones. 0.5 = it cannot (invariant), 1.0 = it always can. Lower is more invariant.",
    "mixing": "kNN modality mixing: for each point, the share of its 10 nearest neighbours that come from the other "
              "modality, ×2. 1 = perfectly mixed, 0 = every neighbour has the point's own modality. It is what you "
              "see in a map. Higher is more invariant.",
    "disc": "The modality classifier D's accuracy over the last epoch's training steps: 50% = fooled. D being fooled "
            "is not the same as the modalities being mixed: compare with the mixing card.",
}


# --- jobs ----------------------------------------------------------------------------------------------------

def busy() -> bool:
    """Is a comparison or a sweep of this session running (one heavy job at a time)?"""
    cmp, sw = ss.get("cmp"), ss.get("sweep")
    return (cmp is not None and cmp.state == "running") or (sw is not None and sw.active)


def _maps_pending() -> bool:
    cmp = ss.get("cmp")
    return cmp is not None and any(r.view().umap_pending for r in cmp.runs.values())


def _live() -> bool:
    """Must the tab poll: a job runs, its cost is being measured, or a comparison's last maps are computed?"""
    task = ss.get("cost_task")
    return busy() or (task is not None and not task.done) or _maps_pending()


def on_compare(spec, cfg) -> None:
    if busy():
        return
    ss.cmp = compare.ComparisonRun(spec.load, cfg, dataset_label=spec.label, umap_epochs=[0, cfg.epochs])
    for r in ss.cmp.runs.values():
        services.track(r)
    ss.cmp.start()


def on_compare_stop() -> None:
    if ss.get("cmp") is not None:
        ss.cmp.stop()


def sweep_setup(cfg) -> tuple:
    """(config the sweep trains, games it sweeps, what the reduction changed)."""
    run_cfg = sweep.quick_config(cfg) if ss.get("sweep_mode", "quick") == "quick" else cfg
    chosen = compare.game_of(cfg)
    games = []
    if chosen is not None:
        games = [chosen] + (["paper"] if ss.get("sweep_paper") and chosen != "paper" and "paper" in compare.games()
                            else [])
    return run_cfg, games, sweep.reduction_text(cfg, run_cfg)


def on_sweep(spec, cfg, estimate) -> None:
    if busy():
        return
    run_cfg, games, _ = sweep_setup(cfg)
    ss.sweep = sweep.Sweep(spec.load, run_cfg, games=games or None, estimate=estimate)
    ss.sweep.start()


def on_sweep_stop() -> None:
    if ss.get("sweep") is not None:
        ss.sweep.stop()


def _cost_key(spec, cfg) -> str:
    run_cfg, games, _ = sweep_setup(cfg)
    return json.dumps([repr(spec), cfg.to_dict(), run_cfg.to_dict(), games], sort_keys=True, default=str)


def cost(spec, cfg, n_variants: int, is_busy: bool = False) -> dict | None:
    """Measured cost of the comparison and of the sweep for these settings (timed in a background task, once
    per settings); None while it is being measured. A failed measurement returns {"error": ...}."""
    key = _cost_key(spec, cfg)
    task = ss.get("cost_task")
    if task is None or ss.get("cost_key") != key:
        if is_busy or busy():   # timing beside a training run would measure the contention, not the work
            return None
        run_cfg, games, _ = sweep_setup(cfg)

        def measure():
            ds = spec.load()
            full = sweep.estimate(ds, cfg, weights=(max(cfg.grl_max, 1e-3),))
            return {"compare": full, "sweep": sweep.estimate(ds, run_cfg, games=games or None)}

        ss.cost_task, ss.cost_key = services.Task("cost", measure).start(), key
        return None
    if not task.done:
        return None
    if task.error:
        return {"error": task.error}
    res = dict(task.result)
    res["compare_total"] = res["compare"]["per_run"] * n_variants
    return res


def _cost_text(est: dict, what: str) -> str:
    return (f"measured just now: {est['step'] * 1000:.0f} ms per training step × {est['steps_per_epoch']} steps "
            f"+ {est['evaluation']:.1f} s of evaluation ≈ {charts.fmt_seconds(est['per_epoch'])} per epoch; "
            f"{what}. A busier machine takes longer.")


# --- the page ------------------------------------------------------------------------------------------------

def tab(spec, cfg, is_busy: bool, poll: float) -> None:
    """The Compare tab (one fragment that polls while a job of this tab runs or its cost is being measured)."""
    live = _live()
    st.fragment(_body, run_every=poll if live else None)(spec, cfg, is_busy, live)


def _body(spec, cfg, is_busy: bool, polling: bool) -> None:
    variants = compare.default_variants(cfg) if cfg is not None else {}
    est = cost(spec, cfg, len(variants), is_busy) if spec is not None and cfg is not None else None
    comparison_section(spec, cfg, is_busy, variants, est)
    st.divider()
    sweep_section(spec, cfg, is_busy, est)
    # a job started or ended here, or the cost arrived, or this run started something to wait for: rerun the
    # whole page once, so the controls lock or unlock and the polling starts or stops
    cmp, sw, task = ss.get("cmp"), ss.get("sweep"), ss.get("cost_task")
    now = (id(cmp), cmp and cmp.state, id(sw), sw and sw.state, id(task), task is not None and task.done,
           _maps_pending())
    last = ss.get("_cmp_last")
    ss["_cmp_last"] = now
    if (last is not None and last != now) or (_live() and not polling):
        st.rerun(scope="app")


def comparison_section(spec, cfg, is_busy: bool, variants: dict, est) -> None:
    st.markdown("#### Does the adversary do its job? The same seed and data, with and without it.")
    names = " · ".join(f"{BADGES[i % 4]} {label}" for i, label in enumerate(variants))
    c1, c2, c3 = st.columns([1.6, 1, 5], vertical_alignment="center")
    c1.button("Run comparison", icon=":material/play_arrow:", type="primary", key="btn_compare", on_click=on_compare,
              args=(spec, cfg), disabled=is_busy or spec is None or cfg is None, width="stretch",
              help="Trains the settings on the left once per variant, one after the other, with the same seed: "
                   + ", ".join(variants) + ".")
    cmp = ss.get("cmp")
    c2.button("Stop", icon=":material/stop:", key="btn_compare_stop", on_click=on_compare_stop,
              disabled=cmp is None or cmp.state != "running", width="stretch")
    with c3:
        if cfg is not None:
            when = (f"about **{charts.fmt_seconds(est['compare_total'])}**" if est and "compare" in est else
                    "cost being measured …" if est is None else "cost unknown")
            st.caption(f"{names}<br>{len(variants)} runs × {cfg.epochs} epochs: {when}", unsafe_allow_html=True,
                       help=_cost_text(est["compare"], f"× {cfg.epochs} epochs × {len(variants)} runs")
                       if est and "compare" in est else None)
    with st.expander("What am I looking at?"):
        st.markdown(EXPLAIN["compare"])
    if cmp is None:
        return
    views = cmp.views()
    results = {label: compare.variant_result(v) for label, v in views.items()}
    done = {label: r for label, r in results.items() if views[label].state in ("finished", "stopped")}
    lines = compare.story(done)
    with st.container():
        if lines:
            st.info("**What these runs measured** (validation split, last epoch):\n\n" + "\n\n".join(
                f"- {x}" for x in lines), icon=":material/insights:")
        elif cmp.state == "running":
            st.caption(":material/hourglass_top: The verdict appears when the no-adversary run and another have "
                       "finished.")
    m1, m2, m3 = st.columns([1.3, 1.3, 3], vertical_alignment="bottom")
    colour = m1.segmented_control("Colour the maps by", ["modality", "class"], default="modality",
                                  key="cmp_colour") or "modality"
    method = m2.segmented_control("Projection", ["UMAP", "PCA"], default="UMAP", key="cmp_method",
                                  help="UMAP keeps neighbourhoods (what kNN mixing counts); it is computed for each "
                                       "run's last epoch when that run ends. PCA is live every epoch.") or "UMAP"
    # one projection for every column, so the maps compare like with like
    if method == "UMAP" and not all(v.epoch in v.umap for v in views.values()):
        method = "PCA"
        m3.caption(":material/hourglass_top: The UMAP maps appear when every run has ended and its map is "
                   "computed; the live PCA maps meanwhile.")
    cols = st.columns(len(views))
    for i, (col, (label, v)) in enumerate(zip(cols, views.items())):
        with col:
            variant_column(i, label, v, results[label], colour, method)
    curves(views)


def variant_column(i: int, label: str, v, r: dict, colour: str, method: str) -> None:
    st.markdown(f"##### {BADGES[i % 4]} {label}")
    st.progress(v.progress, text=f"{STATE.get(v.state, v.state)} · epoch {v.epoch}/{v.epochs}")
    with st.container():
        if v.error:
            st.error(v.error)
    m1, m2 = st.columns(2)
    m1.metric("mAP avg (val)", _num(r["map"]), border=True, help=HELP["map"])
    m2.metric("D accuracy", f"{r['disc_acc']:.0%}" if r["disc_acc"] is not None else "– (no D)", border=True,
              help=HELP["disc"])
    m3, m4 = st.columns(2)
    m3.metric("Modality probe", _num(r["probe"]), border=True, help=HELP["probe"])
    m4.metric("kNN mixing", _num(r["mixing"]), border=True, help=HELP["mixing"])
    frames = v.umap if method == "UMAP" else v.pca
    if frames:
        e = max(frames)
        f = frames[e]
        st.plotly_chart(charts.embedding_map(f, colour, v.class_names, ranges=charts.axis_range([f]), height=400,
                                             marker_size=6, title=f"{f.method.upper()}, epoch {e}: by {colour}"),
                        config=charts.MAP_CONFIG, key=f"fig_cmp_{i}_map")
    else:
        st.caption("The map appears after the first epoch.")


def _num(x) -> str:
    return f"{x:.3f}" if x is not None else "–"


def curves(views: dict) -> None:
    x_max = max(v.epochs for v in views.values())

    def series(key):
        out = {}
        for label, v in views.items():
            h = [r for r in v.history if r.get(key) is not None]
            out[label] = ([r["epoch"] for r in h], [r[key] for r in h])
        return out

    disc = {label: tuple(zip(*sorted(compare.disc_acc_by_epoch(v).items()))) or ((), ())
            for label, v in views.items()}
    a, b = st.columns(2)
    a.plotly_chart(charts.variant_curves(series("mixing"), "kNN modality mixing (1 = mixed)", "mixing",
                                         [0, 1.05], ref=1.0, x_max=x_max), key="fig_cmp_mixing",
                   config=charts.PLOT_CONFIG)
    b.plotly_chart(charts.variant_curves(series("probe"), "Modality probe (0.5 = cannot tell)", "balanced accuracy",
                                         [0.4, 1.05], ref=0.5, x_max=x_max), key="fig_cmp_probe",
                   config=charts.PLOT_CONFIG)
    c, d = st.columns(2)
    c.plotly_chart(charts.variant_curves(series("val_avg"), "Validation mAP (avg)", "mAP", [0, 1], x_max=x_max),
                   key="fig_cmp_map", config=charts.PLOT_CONFIG)
    d.plotly_chart(charts.variant_curves(disc, "D accuracy per epoch (50% = fooled)", "accuracy", [0, 1.05], ref=0.5,
                                         x_max=x_max, fmt=".0%", empty="No modality classifier trained yet."),
                   key="fig_cmp_disc", config=charts.PLOT_CONFIG)


# --- the sweep -------------------------------------------------------------------------------------------------

def sweep_section(spec, cfg, is_busy: bool, est) -> None:
    st.markdown("#### Sweep the adversary's weight: does a stronger adversary mix the modalities more?")
    if cfg is None:
        st.caption("Fix the settings on the left to sweep.")
        return
    c1, c2 = st.columns([2.2, 2], vertical_alignment="bottom")
    c1.segmented_control("Sweep setting", list(SWEEP_MODES), format_func=SWEEP_MODES.get, default="quick",
                         key="sweep_mode", disabled=is_busy,
                         help="Quick: fewer epochs of narrower projectors at a larger learning rate, so five runs "
                              "take about a minute on an idle machine (the line below says exactly what it changed). "
                              "Your settings: exactly the settings on the left, one run per weight.")
    chosen = compare.game_of(cfg)
    if chosen is not None and chosen != "paper" and "paper" in compare.games():
        c2.toggle("Also sweep the paper's game", key="sweep_paper", disabled=is_busy,
                  help="Trains the same weights with the paper's formulation too (about twice the time), to see "
                       "which game mixes the modalities as the weight grows.")
    run_cfg, games, reduced = sweep_setup(cfg)
    weights = sweep.WEIGHTS
    n_runs = len(sweep.plan(weights, games or None))
    what = f"{n_runs} runs (weights {', '.join(charts.weight_label(w) for w in weights)}) × {run_cfg.epochs} epochs"
    s_est = est.get("sweep") if est else None
    cost_line = (f"Estimated cost: about **{charts.fmt_seconds(s_est['total'])}** for {what}." if s_est else
                 f"Measuring what {what} will cost …" if est is None else f"Could not measure the cost: {est['error']}")
    st.markdown(cost_line, help=_cost_text(s_est, f"× {run_cfg.epochs} epochs × {n_runs} runs, plus the final "
                                                  "measurements") if s_est else None)
    st.caption(("Reduced setting: " + reduced + ". " if reduced else "") + "Weight 0 = no adversary at all. Each run "
               "uses the same seed and data; the points are the kept model's validation numbers.")
    sw = ss.get("sweep")
    b1, b2, _ = st.columns([1.6, 1, 5])
    b1.button("Run sweep", icon=":material/tune:", type="primary", key="btn_sweep", on_click=on_sweep,
              args=(spec, cfg, s_est), disabled=is_busy or spec is None, width="stretch",
              help=f"Trains {what}, one after the other, and plots mixing, probe and mAP against the weight.")
    b2.button("Stop", icon=":material/stop:", key="btn_sweep_stop", on_click=on_sweep_stop,
              disabled=sw is None or not sw.active, width="stretch")
    if sw is None:
        _explain("sweep")
        return
    v = sw.view()
    took = (f" · took {charts.fmt_seconds(v.elapsed)}" + (f" (estimated {charts.fmt_seconds(v.estimate['total'])})"
                                                           if v.estimate else "")) if v.state != "running" else ""
    st.progress(v.progress, text=f"{v.state}: {v.message} · {len(v.points)}/{len(v.plan)} runs · "
                                 f"{charts.fmt_seconds(v.elapsed)} elapsed{took}")
    with st.container():
        if v.error:
            st.error(f"The sweep failed: {v.error}")
    sweep_charts(v, weights)
    if v.points:
        with st.expander("The numbers"):
            st.dataframe(sweep_table(v.points), hide_index=True)
    lines = [sweep.summary(v.points, g, _adversary_name(g)) for g in (v.games or [None])]
    lines = [x for x in lines if x]
    with st.container():
        if lines:
            st.info("\n\n".join(lines), icon=":material/insights:")
    _explain("sweep")


def _adversary_name(game: str | None) -> str:
    return "the adversary" if game is None else "the paper's adversary" if game == "paper" else f"the {game} adversary"


def sweep_charts(v, weights) -> None:
    games = (v.games if v is not None else []) or [None]
    curves_ = {compare.adversary_label(g): sweep.curve(v.points, g) for g in games} if v is not None else {}
    cols = st.columns(3)
    specs = [("mixing", "kNN mixing (1 = mixed)", "mixing", [0, 1.05], 1.0, None),
             ("probe", "Modality probe (0.5 = cannot tell)", "balanced accuracy", [0.4, 1.05], 0.5, None),
             ("map", "Validation mAP (avg)", "mAP", [0, 1], None, None)]
    for col, (key, title, ytitle, yr, ref, name) in zip(cols, specs):
        col.plotly_chart(charts.sweep_figure(curves_, key, title, ytitle, weights, yr, ref, name),
                         key=f"fig_sweep_{key}", config=charts.PLOT_CONFIG)


def _explain(key: str) -> None:
    with st.expander("What am I looking at?"):
        st.markdown(EXPLAIN[key])


def sweep_table(points: list[dict]) -> list[dict]:
    """Rows of a table of the sweep's numbers."""
    games = any(p["game"] for p in points)
    return [{**({"game": p["game"] or "none"} if games else {}), "weight": p["weight"],
             "mixing": round(p["mixing"], 3), "probe": round(p["probe"], 3), "mAP": round(p["map"], 3),
             "D accuracy": "no D" if p["disc_acc"] is None or not np.isfinite(p["disc_acc"])
             else f"{p['disc_acc']:.0%}"} for p in points]
