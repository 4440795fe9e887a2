"""Plotly figures of a training run (pure functions of acmr_core.live.RunView; no Streamlit here).

Readable on a projector: large fonts, titled axes, one idea per chart, colour-blind-safe palettes
(Okabe & Ito for modalities and lines, Paul Tol's "muted" set for classes), and marker shapes that
repeat the modality so nothing depends on colour alone.
"""
from __future__ import annotations

import html
import math
import textwrap
import unicodedata

import numpy as np
import plotly.graph_objects as go

from acmr_core.recorder import ACTIVE as ACTIVE_STATES

# Okabe & Ito (2008)
BLUE, VERMILLION, ORANGE, SKY, GREEN, YELLOW, PURPLE, BLACK = (
    "#0072B2", "#D55E00", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#CC79A7", "#000000")
GREY = "#7F7F7F"
MODALITY_COLOURS = {"image": BLUE, "text": VERMILLION}
MODALITY_SYMBOLS = {"image": "circle", "text": "diamond"}
# Paul Tol's "muted" scheme, plus a dark grey for a 10th class; beyond that colours repeat with new symbols
CLASS_COLOURS = ["#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933",
                 "#AA4499", "#555555"]
LOSS_NAMES = {  # key -> (title, meaning)
    "imd": ("L_imd  label prediction", "intra-modal discrimination"),
    "imi": ("L_imi  triplet", "inter-modal invariance"),
    "reg": ("L_reg  weight norms", "regularisation"),
    "adv": ("L_adv  modality classifier", "cross-entropy of D"),
    "total": ("Total loss (projector step)", "α·L_imi + β·L_imd + w·L_reg + L_adv"),
}
FONT = dict(family="Inter, 'Source Sans Pro', 'Segoe UI', Helvetica, Arial, sans-serif", size=14, color="#222")
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
               "toImageButtonOptions": {"format": "png", "scale": 2}}
MAP_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["autoScale2d"],
              "toImageButtonOptions": {"format": "png", "scale": 2}}
MAX_POINTS = 1200    # step series are bucket-averaged down to this many points for drawing


def _fig(data: list, layout: dict) -> go.Figure:
    """A figure from plain dicts, without plotly's per-property validation (about 10x faster to build;
    Streamlit validates the whole figure once when it sends it)."""
    return go.Figure(data=data, layout=layout, _validate=False)


def _layout(title: str, height: int = 300, legend: bool = True, **kw) -> dict:
    layout = dict(
        title=dict(text=title, font=dict(size=17), x=0.01, xanchor="left", y=0.97, yanchor="top"),
        font=FONT, height=height, margin=dict(l=60, r=20, t=70, b=50), plot_bgcolor="white", paper_bgcolor="white",
        hovermode="x unified", showlegend=legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0, font=dict(size=13),
                    bgcolor="rgba(255,255,255,0)"),
        uirevision="keep")
    layout.update(kw)
    return layout


def _axis(title: str | None = None, rng=None, **kw) -> dict:
    a = dict(gridcolor="#E5E5E5", zerolinecolor="#CCCCCC", linecolor="#999999", showline=True, ticks="outside",
             tickcolor="#999999")
    if title:
        a["title"] = dict(text=title, standoff=6)
    if rng is not None:
        a["range"] = list(rng)
    a.update(kw)
    return a


def _line(x, y, name, colour, width=2.0, dash="solid", opacity=None, mode="lines", hover="%{y:.3f}",
          legend=True, **kw) -> dict:
    t = dict(type="scatter", x=x, y=y, name=name, mode=mode, line=dict(color=colour, width=width, dash=dash),
             hovertemplate=hover, showlegend=legend)
    if opacity is not None:
        t["opacity"] = opacity
    t.update(kw)
    return t


def _ref_line(y: float, name: str, x_max: float, colour: str = GREY, dash: str = "dash") -> dict:
    """A horizontal reference line drawn as a trace, so it is named in the legend."""
    return _line([0, x_max], [y, y], name, colour, 2, dash, hover=None, hoverinfo="skip")


def _empty(title: str, note: str, height: int = 300) -> go.Figure:
    layout = _layout(title, height, legend=False, xaxis=dict(visible=False), yaxis=dict(visible=False),
                     annotations=[dict(text=note, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                                       font=dict(size=15, color=GREY))])
    return _fig([], layout)


def decimate(x: np.ndarray, *ys: np.ndarray, max_points: int = MAX_POINTS):
    """Bucket means down to at most max_points points (NaN-aware); short series pass unchanged."""
    n = len(x)
    if n <= max_points:
        return (x, *ys)
    edges = np.linspace(0, n, max_points + 1).astype(int)
    out_x = np.array([x[a:b].mean() for a, b in zip(edges[:-1], edges[1:])])
    outs = []
    for y in ys:
        with np.errstate(all="ignore"):
            outs.append(np.array([np.nanmean(y[a:b]) if np.isfinite(y[a:b]).any() else np.nan
                                  for a, b in zip(edges[:-1], edges[1:])]))
    return (out_x, *outs)


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average that ignores NaNs (so the smoothed line starts at the first step)."""
    y = np.asarray(y, dtype=float)
    if window <= 1 or len(y) == 0:
        return y
    ok = np.isfinite(y)
    c = np.concatenate([[0.0], np.cumsum(np.where(ok, y, 0.0))])
    k = np.concatenate([[0.0], np.cumsum(ok.astype(float))])
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(0, idx - window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[idx] - c[lo]) / (k[idx] - k[lo])


def _x_epochs(view) -> np.ndarray:
    """Training progress in epochs (fractional) for each recorded step."""
    s = view.steps
    if not len(s["global_step"]) or not view.total_steps:
        return np.zeros(0)
    per_epoch = view.steps_per_epoch or view.total_steps / max(1, view.epochs)
    return s["global_step"] / per_epoch


def _window(n_steps_per_epoch: float) -> int:
    return max(1, min(50, int(round(n_steps_per_epoch / 2))))


def _epoch_axis(view, pad: float = 0.0) -> dict:
    return _axis("epoch", [-pad, max(1, view.epochs) + pad])


# --- live training charts ---------------------------------------------------------------------------------

def loss_figure(view) -> go.Figure:
    """Each loss term in its own panel (their scales differ by orders of magnitude)."""
    keys = ["imd", "imi", "reg", "adv", "total"]
    title = "Losses during training (thin: each step, thick: moving average)"
    if not len(view.steps["global_step"]):
        return _empty(title, "Press Start: the losses appear here as ACMR trains.", 330)
    x = _x_epochs(view)
    win = _window(view.steps_per_epoch or view.total_steps / max(1, view.epochs))
    cfg = view.config
    off = {"imd": not cfg.use_label, "imi": not cfg.use_triplet, "adv": not cfg.use_adversarial}
    data, annotations = [], []
    layout = _layout(title, 330, legend=False, hovermode="closest", margin=dict(l=45, r=15, t=80, b=50))
    gap, width = 0.045, (1 - 0.045 * 4) / 5
    for i, k in enumerate(keys):
        sfx = str(i + 1) if i else ""
        y = view.steps[k]
        xs, ys, ss = decimate(x, y, smooth(y, win))
        colour = BLACK if k == "total" else [BLUE, VERMILLION, GREEN, PURPLE][i]
        ax = dict(xaxis=f"x{sfx}", yaxis=f"y{sfx}")
        data.append(_line(xs, ys, k, colour, 1, opacity=0.3, hover="%{y:.4g}<extra>step</extra>", legend=False, **ax))
        data.append(_line(xs, ss, k, colour, 3, hover="%{y:.4g}<extra>average</extra>", legend=False, **ax))
        x0 = i * (width + gap)
        layout[f"xaxis{sfx}"] = _epoch_axis(view) | dict(domain=[x0, x0 + width], anchor=f"y{sfx}")
        layout[f"yaxis{sfx}"] = _axis(anchor=f"x{sfx}")
        annotations.append(dict(text=LOSS_NAMES[k][0], x=x0 + width / 2, y=1.0, xref="paper", yref="paper",
                                xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=14)))
        if off.get(k):
            annotations.append(dict(text="switched off<br>(ablation)", x=x0 + width / 2, y=0.5, xref="paper",
                                    yref="paper", showarrow=False, font=dict(size=13, color=GREY)))
    layout["annotations"] = annotations
    return _fig(data, layout)


def disc_figure(view) -> go.Figure:
    title = "Modality classifier D: accuracy"
    if not view.config.use_adversarial:
        return _empty(title, "No modality classifier in this run (adversarial loss switched off).")
    if not len(view.steps["global_step"]):
        return _empty(title, "Waiting for the first training step …")
    x = _x_epochs(view)
    y = view.steps["disc_acc"]
    win = _window(view.steps_per_epoch or view.total_steps / max(1, view.epochs))
    xs, ys, ss = decimate(x, y, smooth(y, win))
    data = [_ref_line(0.5, "50% = fooled", max(1, view.epochs)),
            _line(xs, ys, "each step", PURPLE, 1, opacity=0.3, hover="%{y:.0%}"),
            _line(xs, ss, "moving average", PURPLE, 3, hover="%{y:.0%}")]
    return _fig(data, _layout(title, xaxis=_epoch_axis(view), yaxis=_axis("accuracy", [0, 1.02], tickformat=".0%")))


def grl_figure(view) -> go.Figure:
    """γ over the whole run: the planned schedule (the config fixes it in advance) and, solid, the values the
    trainer used, up to the last finished epoch while the run trains (so the figure changes once an epoch, not at
    every poll: each change redraws the chart in the browser)."""
    from acmr_core.model import grl_weight

    cfg = view.config
    title = f"GRL weight γ ({cfg.grl_schedule})"
    total = view.total_steps
    if not total:
        return _empty(title, "Waiting for the first training step …")
    per_epoch = view.steps_per_epoch or total / max(1, view.epochs)
    g = np.arange(total)
    px, py = decimate((g + 1) / per_epoch, np.array([grl_weight(i / max(1, total - 1), cfg.grl_schedule, cfg.grl_max)
                                                     for i in g]))
    x, y = _x_epochs(view), np.asarray(view.steps["grl"])
    if view.state in ACTIVE_STATES:
        keep = x <= max(0, len(view.history) - 1) + 1e-9
        x, y = x[keep], y[keep]
    xs, ys = decimate(x, y)
    layout = _layout(title, xaxis=_epoch_axis(view), yaxis=_axis("γ", [0, max(cfg.grl_max, 1e-3) * 1.08]))
    if not cfg.use_adversarial:
        layout["annotations"] = [dict(text="(unused: adversarial loss is off)", x=0.5, y=0.5, xref="paper",
                                      yref="paper", showarrow=False, font=dict(size=14, color=GREY))]
    return _fig([_line(px, py, "planned", GREY, 1.5, "dash", hover="planned γ = %{y:.3f}"),
                 _line(xs, ys, "used (finished epochs)", ORANGE, 3, hover="γ = %{y:.3f}")], layout)


def _hist(view, key):
    h = [r for r in view.history if r.get(key) is not None]
    return np.array([r["epoch"] for r in h]), np.array([r[key] for r in h], dtype=float)


def map_figure_epochs(view) -> go.Figure:
    title = "Validation mAP (cosine, mAP@all)"
    if not view.history:
        return _empty(title, "Measured before training (epoch 0) and after every epoch.")
    data, ymax = [], 0.0
    for key, name, colour, width, dash in (("val_img2txt", "Image → Text", BLUE, 2, "dot"),
                                           ("val_txt2img", "Text → Image", VERMILLION, 2, "dot"),
                                           ("val_avg", "average", BLACK, 3.5, "solid")):
        e, y = _hist(view, key)
        ymax = max(ymax, float(np.nanmax(y)) if len(y) else 0.0)
        data.append(_line(e, y, name, colour, width, dash, mode="lines+markers", marker=dict(size=6, color=colour)))
    layout = _layout(title, xaxis=_epoch_axis(view, 0.3), yaxis=_axis("mAP", [0, min(1.0, max(0.2, ymax * 1.15))]))
    if view.best_epoch and len(view.history) > 1:
        layout["shapes"] = [dict(type="line", x0=view.best_epoch, x1=view.best_epoch, y0=0, y1=1, yref="paper",
                                 line=dict(color=GREEN, width=2, dash="dot"))]
        # the label sits on the side of the line with room for it (in the axis' left half it would be cut off)
        side = "left" if view.best_epoch < max(1, view.epochs) / 2 else "right"
        layout["annotations"] = [dict(text=f" best epoch {view.best_epoch} ", x=view.best_epoch, y=0.02, yref="paper",
                                      xanchor=side, yanchor="bottom", showarrow=False,
                                      font=dict(color=GREEN, size=13))]
    return _fig(data, layout)


def probe_figure(view) -> go.Figure:
    title = "Modality probe"
    e, y = _hist(view, "probe")
    if not len(e):
        return _empty(title, "A fresh classifier tries to tell image from text embeddings after each epoch.")
    data = [_ref_line(0.5, "0.5 = mixed", max(1, view.epochs)),
            _line(e, y, "probe", GREEN, 3, mode="lines+markers", marker=dict(size=7, color=GREEN),
                  hover="balanced accuracy %{y:.3f}")]
    return _fig(data, _layout(title, xaxis=_epoch_axis(view, 0.3), yaxis=_axis("balanced accuracy", [0.4, 1.06])))


def gap_figure(view) -> go.Figure:
    title = "Modality gap"
    e, y = _hist(view, "gap")
    if not len(e):
        return _empty(title, "Distance between the mean image and the mean text embedding (unit vectors).")
    data = [_line(e, y, "gap", SKY, 3, mode="lines+markers", marker=dict(size=7, color=BLUE), hover="gap %{y:.3f}")]
    return _fig(data, _layout(title, legend=False, xaxis=_epoch_axis(view, 0.3),
                              yaxis=_axis("centroid distance", rangemode="tozero")))


def training_figures(view) -> dict[str, go.Figure]:
    return {"losses": loss_figure(view), "modality_classifier": disc_figure(view), "grl": grl_figure(view),
            "map": map_figure_epochs(view), "probe": probe_figure(view), "gap": gap_figure(view)}


# --- maps --------------------------------------------------------------------------------------------------

def class_colour(i: int) -> str:
    return CLASS_COLOURS[i % len(CLASS_COLOURS)]


HOVER_COLUMNS = 48     # a hover label's caption lines stay this wide: wider ones ran off both sides of a map


def _wrap(text: str, columns: int = HOVER_COLUMNS) -> list[str]:
    """`text` in lines of at most `columns` columns (a CJK character takes two, and such text, written without
    spaces, is cut anywhere)."""
    wide = sum(unicodedata.east_asian_width(c) in "WF" for c in text) > len(text) / 4
    return textwrap.wrap(text, columns // 2 if wide else columns) or [text]


def _hover_texts(frame, class_names, captions) -> list[str]:
    out = []
    labels = frame.labels
    for k in range(len(frame.coords)):
        lab = labels[k]
        cname = class_names[int(lab)] if np.ndim(lab) == 0 and int(lab) < len(class_names) else (
            ", ".join(class_names[j] for j in np.flatnonzero(lab)) if np.ndim(lab) else str(lab))
        row = int(frame.index[k])
        mod = frame.modality[k]
        cap = None
        if captions is not None and row < len(captions):
            cap = str(captions[row])
            cap = cap if len(cap) <= 140 else cap[:137] + "…"      # three lines at most
        head = f"<b>{html.escape(cname)}</b> · {mod} #{row}"
        if cap:
            what = "caption" if mod == "text" else "its caption"
            lines = _wrap(f"{what}: {cap}")              # wrapped with its label, which stays upright
            lines[0] = lines[0][len(what) + 1:].strip()
            head += f"<br>{what}: " + "<br>".join(f"<i>{html.escape(ln)}</i>" if ln else "" for ln in lines)
        out.append(head)
    return out


def axis_range(frames) -> tuple[list, list]:
    """Shared x/y ranges over frames (with margin), so scrubbing does not rescale the view."""
    pts = np.concatenate([f.coords for f in frames]) if frames else np.zeros((1, 2))
    lo, hi = np.quantile(pts, 0.005, axis=0), np.quantile(pts, 0.995, axis=0)   # a few outliers may fall outside
    pad = (hi - lo) * 0.08 + 1e-6
    return [float(lo[0] - pad[0]), float(hi[0] + pad[0])], [float(lo[1] - pad[1]), float(hi[1] + pad[1])]


def embedding_map(frame, colour_by: str, class_names, captions=None, title: str | None = None,
                  ranges=None, height: int = 520, marker_size: int = 7, thumb_prefix: str | None = None) -> go.Figure:
    """Scatter of one frame: colour by 'modality' or 'class'; the marker shape always shows the modality.

    With `thumb_prefix` (a URL prefix; the point's dataset row is appended), image points carry it in their
    trace's `meta`, and the page's hover script shows the picture next to the hover label."""
    img_meta = {"thumb": thumb_prefix} if thumb_prefix else None
    method = frame.method.upper()
    title = title or f"{method} map, epoch {frame.epoch}: coloured by {colour_by}"
    texts = np.array(_hover_texts(frame, class_names, captions), dtype=object)
    mods = frame.modality
    data = []

    def points(m, name, colour, mod, **kw):
        t = dict(type="scatter", x=frame.coords[m, 0], y=frame.coords[m, 1], mode="markers", name=name,
                 marker=dict(size=marker_size, color=colour, symbol=MODALITY_SYMBOLS[mod], opacity=0.8,
                             line=dict(width=0.5, color="white")),
                 text=list(texts[m]), hovertemplate="%{text}<extra></extra>", customdata=frame.index[m])
        if mod == "image" and img_meta:
            t["meta"] = img_meta
        t.update(kw)
        data.append(t)

    if colour_by == "modality":
        for mod in ("image", "text"):
            points(mods == mod, f"{mod}s", MODALITY_COLOURS[mod], mod)
    else:
        labels = frame.labels if frame.labels.ndim == 1 else frame.labels.argmax(1)
        for c in np.unique(labels):
            name = class_names[int(c)] if int(c) < len(class_names) else str(c)
            has_img = bool(((labels == c) & (mods == "image")).any())
            for mod in ("image", "text"):
                m = (labels == c) & (mods == mod)
                if m.any():
                    points(m, name, class_colour(int(c)), mod, legendgroup=name,
                           showlegend=(mod == "image") or not has_img)
    xr, yr = ranges or axis_range([frame])
    layout = dict(
        title=dict(text=title, font=dict(size=17), x=0.01, xanchor="left"), font=FONT, height=height,
        plot_bgcolor="white", paper_bgcolor="white", margin=dict(l=20, r=20, t=50, b=20), hovermode="closest",
        legend=dict(title=dict(text="● image  ◆ text" if colour_by == "class" else ""), font=dict(size=13),
                    itemsizing="constant"),
        uirevision=f"map-{colour_by}", dragmode="pan",
        xaxis=dict(range=xr, showticklabels=False, title=dict(text=f"{method} 1"), zeroline=False, showgrid=False),
        yaxis=dict(range=yr, showticklabels=False, title=dict(text=f"{method} 2"), zeroline=False, showgrid=False,
                   scaleanchor="x", scaleratio=1))
    return _fig(data, layout)


# --- comparison ------------------------------------------------------------------------------------------

def comparison_curves(views: dict, key: str, title: str, ytitle: str, yrange=None, ref: float | None = None) -> go.Figure:
    data = []
    styles = [(BLACK, "solid"), (ORANGE, "dash")]
    any_points, x_max = False, 1
    for (label, view), (colour, dash) in zip(views.items(), styles):
        if view is None:
            continue
        e, y = _hist(view, key)
        any_points |= bool(len(e))
        x_max = max(x_max, view.epochs)
        data.append(_line(e, y, label, colour, 3, dash, mode="lines+markers", marker=dict(size=6, color=colour)))
    if not any_points:
        return _empty(title, "Press “Run comparison”.")
    if ref is not None:
        data.insert(0, _ref_line(ref, f"{ref:g}", x_max, dash="dot") | {"showlegend": False})
    layout = _layout(title, 330, xaxis=_axis("epoch", [-0.3, x_max + 0.3]), yaxis=_axis(ytitle, yrange),
                     margin=dict(l=60, r=20, t=50, b=95))
    layout["legend"] = dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0, font=dict(size=13))
    return _fig(data, layout)


OVERLAY_COLOURS = [BLACK, BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, YELLOW]


def overlay_curves(views: dict, key: str, title: str, ytitle: str, yrange=None, ref: float | None = None) -> go.Figure:
    """One epoch curve per run (label -> RunView), on shared axes; the first run is drawn thickest."""
    data, x_max = [], 1
    for i, (label, view) in enumerate(views.items()):
        e, y = _hist(view, key)
        x_max = max(x_max, view.epochs, int(e.max()) if len(e) else 0)
        colour = OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)]
        data.append(_line(e, y, label, colour, 3.5 if i == 0 else 2.2, "solid" if i < len(OVERLAY_COLOURS) else "dash",
                          mode="lines+markers", marker=dict(size=5, color=colour)))
    if not any(len(d["x"]) for d in data):
        return _empty(title, "No epoch recorded yet.")
    if ref is not None:
        data.insert(0, _ref_line(ref, f"{ref:g}", x_max, dash="dot") | {"showlegend": False})
    layout = _layout(title, 340, xaxis=_axis("epoch", [-0.3, x_max + 0.3]), yaxis=_axis(ytitle, yrange),
                     margin=dict(l=60, r=20, t=50, b=95))
    layout["legend"] = dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0, font=dict(size=12))
    return _fig(data, layout)


# --- warm-up ---------------------------------------------------------------------------------------------

def warm_up() -> None:
    """Build and serialise one figure of each kind, so plotly's lazily imported validators and encoders are
    loaded before the first live redraw (the first one otherwise took ~0.4 s)."""
    import types

    import plotly.io as pio
    import plotly.tools

    from acmr_core.config import ACMRConfig
    from acmr_core.maps import MapFrame

    steps = {k: np.linspace(1, 0, 8) for k in ("global_step", "imd", "imi", "reg", "adv", "total", "disc_acc", "grl")}
    steps["global_step"] = np.arange(1, 9, dtype=float)
    hist = [{"epoch": e, "val_img2txt": 0.1, "val_txt2img": 0.1, "val_avg": 0.1, "probe": 0.9, "gap": 0.2}
            for e in range(3)]
    view = types.SimpleNamespace(steps=steps, total_steps=8, steps_per_epoch=4, epochs=2, config=ACMRConfig(epochs=2),
                                 history=hist, best_epoch=1, state="running")
    frame = MapFrame(0, np.zeros((4, 2), np.float32), np.array([0, 1, 0, 1]),
                     np.array(["image", "image", "text", "text"]), np.arange(4), "pca")
    figs = list(training_figures(view).values()) + [embedding_map(frame, c, ["a", "b"]) for c in ("modality", "class")]
    for fig in figs:
        pio.to_json(plotly.tools.return_figure_from_figure_or_data(fig, True), validate=False)


# --- export ------------------------------------------------------------------------------------------------

def figures_html(figures: dict[str, go.Figure], title: str = "ACMR Lab charts") -> str:
    """One self-contained HTML page with all figures (plotly.js inlined once: works offline)."""
    parts = []
    first = True
    for name, fig in figures.items():
        parts.append(f"<section><h2>{html.escape(name.replace('_', ' '))}</h2>"
                     + fig.to_html(full_html=False, include_plotlyjs=first, config=PLOT_CONFIG) + "</section>")
        first = False
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title>"
            "<style>body{font-family:Helvetica,Arial,sans-serif;max-width:1300px;margin:auto;padding:1em}"
            "h2{font-weight:600;color:#333}</style></head><body><h1>" + html.escape(title) + "</h1>"
            + "".join(parts) + "</body></html>")


def fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


# The maps' hover thumbnails: Plotly's hover label cannot show pictures, so a small script in the page listens
# to Plotly's hover events and shows the hovered image point's picture (served by app/main.py) beside it.
HOVER_SCRIPT = """<script>
(function () {
  if (window.__acmrThumbs) return;
  window.__acmrThumbs = true;
  var tip = document.createElement("div");
  tip.id = "acmr-thumb-tip";
  tip.style.cssText = "position:fixed;z-index:100000;pointer-events:none;display:none;background:#fff;" +
    "border:1px solid #bbb;border-radius:6px;padding:4px;box-shadow:0 2px 10px rgba(0,0,0,.25)";
  var img = document.createElement("img");
  img.alt = "hovered image";
  img.style.cssText = "display:block;width:112px;height:112px;image-rendering:pixelated;object-fit:contain";
  tip.appendChild(img);
  document.body.appendChild(tip);
  var mx = 0, my = 0, label = null;
  function place() {
    // above the hover label (below it if there is no room), so the picture never hides the label's text;
    // up and to the left of the pointer while Plotly has not drawn a label yet
    var r = label && label.isConnected && label.getBoundingClientRect();
    var w = 122, h = 122, x, y;
    if (r && r.width) {
      x = Math.min(Math.max(4, r.left + (r.width - w) / 2), window.innerWidth - w - 4);
      y = r.top - h - 6 >= 4 ? r.top - h - 6 : r.bottom + 6;
    } else {
      x = mx - 130 < 4 ? mx + 20 : mx - 130;
      y = my - 130 < 4 ? my + 20 : my - 130;
    }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  document.addEventListener("mousemove", function (e) { mx = e.clientX; my = e.clientY;
    if (tip.style.display === "block") place(); }, true);
  function hook(gd) {
    if (gd.__acmrHooked || typeof gd.on !== "function") return;
    gd.__acmrHooked = true;
    gd.on("plotly_hover", function (ev) {
      var p = ev && ev.points && ev.points[0];
      var m = p && p.data && p.data.meta;
      if (!m || !m.thumb) { tip.style.display = "none"; return; }
      var row = Array.isArray(p.customdata) ? p.customdata[0] : p.customdata;
      img.src = m.thumb + row;
      label = null;
      place();
      tip.style.display = "block";
      requestAnimationFrame(function () {          // once Plotly has drawn this point's label
        label = gd.querySelector(".hoverlayer .hovertext");
        place();
      });
    });
    gd.on("plotly_unhover", function () { tip.style.display = "none"; });
  }
  setInterval(function () { document.querySelectorAll(".js-plotly-plot").forEach(hook); }, 400);
})();
</script>"""


# --- invariance, variants and the adversary-weight sweep (issue 9) ------------------------------------------

def mixing_figure(view) -> go.Figure:
    """kNN modality mixing per epoch: 1 = each point's neighbours are as often texts as images, 0 = segregated."""
    title = "kNN modality mixing"
    e, y = _hist(view, "mixing")
    if not len(e):
        return _empty(title, "Share of each point's 10 nearest neighbours from the other modality, ×2, per epoch.")
    data = [_ref_line(1.0, "1 = mixed", max(1, view.epochs)),
            _line(e, y, "mixing", PURPLE, 3, mode="lines+markers", marker=dict(size=7, color=PURPLE),
                  hover="mixing %{y:.3f}")]
    return _fig(data, _layout(title, xaxis=_epoch_axis(view, 0.3), yaxis=_axis("mixing (0 – 1)", [0, 1.08])))


def variant_style(label: str, i: int) -> tuple[str, str, str]:
    """(colour, dash, marker) of a variant: no adversary is always orange and dashed, the paper's game purple."""
    low = label.lower()
    if "no adversary" in low or "without" in low:
        return ORANGE, "dash", "square"
    if "paper" in low:
        return PURPLE, "dot", "diamond"
    return [BLACK, GREEN, SKY][i % 3], "solid", "circle"


def variant_curves(series: dict, title: str, ytitle: str, yrange=None, ref: float | None = None,
                   ref_name: str | None = None, x_max: float = 1, empty: str = "Press “Run comparison”.",
                   fmt: str = ".3f", height: int = 330) -> go.Figure:
    """One line per variant: series = {label: (epochs, values)}."""
    data, any_points = [], False
    for i, (label, (x, y)) in enumerate(series.items()):
        if not len(x):
            continue
        any_points = True
        colour, dash, symbol = variant_style(label, i)
        data.append(_line(list(x), list(y), label, colour, 3, dash, mode="lines+markers",
                          marker=dict(size=7, color=colour, symbol=symbol), hover=f"%{{y:{fmt}}}"))
        x_max = max(x_max, max(x))
    if not any_points:
        return _empty(title, empty, height)
    if ref is not None:
        data.insert(0, _ref_line(ref, ref_name or f"{ref:g}", x_max, dash="dot") | {"showlegend": bool(ref_name)})
    layout = _layout(title, height, xaxis=_axis("epoch", [-0.3, x_max + 0.3]), yaxis=_axis(ytitle, yrange),
                     margin=dict(l=60, r=20, t=50, b=95))
    layout["legend"] = dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0, font=dict(size=13))
    return _fig(data, layout)


def weight_label(w: float) -> str:
    return "0 (none)" if w == 0 else f"{w:g}"


def sweep_figure(curves: dict, key: str, title: str, ytitle: str, weights, yrange=None, ref: float | None = None,
                 ref_name: str | None = None, fmt: str = ".3f", height: int = 340) -> go.Figure:
    """A measure against the adversary's weight: curves = {label: [point dicts with weight and `key`]}.
    The weights sit evenly on the x axis (they span 0 to 3 and more, so a linear axis would crowd them)."""
    cats = [weight_label(w) for w in weights]
    data = []
    for i, (label, pts) in enumerate(curves.items()):
        pts = [p for p in pts if p.get(key) is not None]
        if not pts:
            continue
        colour, dash, symbol = variant_style(label, i)
        data.append(_line([weight_label(p["weight"]) for p in pts], [p[key] for p in pts], label, colour, 3, dash,
                          mode="lines+markers", marker=dict(size=10, color=colour, symbol=symbol),
                          hover=f"%{{y:{fmt}}}"))
    if not data:
        return _empty(title, "Press “Run sweep”.", height)
    # an invisible trace on every weight, so the axis shows all of them before their runs end
    data.insert(0, dict(type="scatter", x=cats, y=[None] * len(cats), mode="markers", showlegend=False,
                        hoverinfo="skip", marker=dict(opacity=0)))
    if ref is not None:
        data.insert(0, dict(type="scatter", x=cats, y=[ref] * len(cats), mode="lines", name=ref_name or f"{ref:g}",
                            line=dict(color=GREY, width=2, dash="dot"), hoverinfo="skip",
                            showlegend=bool(ref_name)))
    layout = _layout(title, height, hovermode="x unified",
                     xaxis=_axis("adversary weight (γ maximum)", type="category", categoryorder="array",
                                 categoryarray=cats),
                     yaxis=_axis(ytitle, yrange), margin=dict(l=60, r=20, t=50, b=95))
    layout["legend"] = dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0, font=dict(size=13))
    return _fig(data, layout)
