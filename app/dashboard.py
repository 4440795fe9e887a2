"""ACMR Lab dashboard (the Streamlit page). Serve it with `streamlit run app/main.py` from the project root;
app/page.py is the script Streamlit runs (it calls `main()`; importing this module draws nothing).

Thin by design: layout, widgets and plots. Training runs in a background thread owned by
acmr_core.live.TrainingRun, held in the process-wide `live.REGISTRY` (not in a browser session), and recorded
in its run folder (acmr_core.runs). The page keeps only the id of the run it shows, in the URL (`?run=<id>`),
so a reload, a second tab or a second viewer shows the same run; a run no longer (or never) trained by this
process is read back from its folder. The page polls with fragments (`st.fragment(run_every=...)`) and never
blocks. Figures come from app/charts.py.
"""
from __future__ import annotations

import io
import os
import sys
import time
import zipfile
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from acmr_core import maps  # noqa: E402
from acmr_core.config import ACMRConfig, ConfigError  # noqa: E402
from acmr_core.live import ACTIVE, DONE, REGISTRY, TrainingRun, default_umap_epochs  # noqa: E402
from acmr_core.recorder import StoredRun  # noqa: E402
from acmr_core.runs import find_run, list_runs, runs_root  # noqa: E402
from app import charts, compare, embedding_export, services, wording  # noqa: E402
from app.dashboard_defaults import DEFAULTS, DEMO, EXPLAIN, FIELD_GROUPS, TABS  # noqa: E402
from app.live_chart import live_chart  # noqa: E402

CARD_H = 118
POLL = float(os.environ.get("ACMR_POLL_S", "1.0"))   # seconds between live redraws while something runs
EPOCH_CHARTS_S = 2.0   # while a run trains, its per-epoch charts are rebuilt at most this often (see _epoch_key)
ss = st.session_state


# --- helpers ---------------------------------------------------------------------------------------------

def _default(name):
    return getattr(DEFAULTS, name)


def _help(name) -> str:
    d = _default(name)
    shown = ", ".join(map(str, d)) if isinstance(d, list) else d
    text = f"{ACMRConfig.help(name)}. Default: {shown}."
    start = getattr(DEMO, name)
    if start != d:                      # the demo preset's starting value (acmr_core/presets.py)
        text += f" The dashboard starts at {', '.join(map(str, start)) if isinstance(start, list) else start} (preset 'demo')."
    return text


def _initial(name):
    return getattr(DEMO, name)          # the demo preset's value (acmr_core/presets.py via dashboard_defaults)


def _init_state() -> None:
    attached = None
    if "run_id" not in ss:          # a new session (a first visit, a reload, a second viewer): the URL says which run
        wanted = st.query_params.get("run")
        if wanted and open_run(wanted) is not None:
            ss.run_id = wanted
        else:
            if wanted:
                ss.missing_run = wanted
            active = REGISTRY.active()      # else the newest run training now, if any: everyone sees the live run
            ss.run_id = active[0].run_id if active else None
        attached = open_run(ss.run_id)
    for f in fields(ACMRConfig):
        key = f"cfg_{f.name}"
        if key not in ss:           # the settings of the run this session attached to, else the demo's
            v = getattr(attached.config, f.name) if attached is not None else _initial(f.name)
            kind = ACMRConfig.spec(f.name).kind
            ss[key] = ", ".join(map(str, v)) if isinstance(v, list) else float(v) if kind == "float" else v
    ss.setdefault("cmp", None)
    ss.setdefault("task", None)
    ss.setdefault("loaded", None)
    ss.setdefault("map_follow", True)


def reset_config() -> None:
    for f in fields(ACMRConfig):
        v = _initial(f.name)
        ss[f"cfg_{f.name}"] = ", ".join(map(str, v)) if isinstance(v, list) else v


def config_from_widgets() -> tuple[ACMRConfig | None, str | None]:
    """The config the widgets describe, read and checked by the config's own schema (no rules of its own here)."""
    try:
        return ACMRConfig(**{f.name: ACMRConfig.parse(f.name, ss[f"cfg_{f.name}"]) for f in fields(ACMRConfig)}), None
    except (ConfigError, ValueError, TypeError) as e:
        return None, str(e)


# --- the shown run: live in this process, or read back from its folder -----------------------------------

_STORED: dict[str, StoredRun] = {}
_LIST_CACHE: dict = {}


def open_run(run_id: str | None):
    """The run with this id: the live TrainingRun if this process trains (or trained) it, else its folder."""
    if not run_id:
        return None
    live = REGISTRY.get(run_id)
    if live is not None:
        return live
    folder = find_run(run_id)
    if folder is None:
        return None
    key = str(folder.path)
    if key not in _STORED:
        _STORED[key] = StoredRun(folder)
    return _STORED[key]


def shown():
    return open_run(ss.get("run_id"))


def known_runs(ttl: float = 2.0) -> list:
    """Every run folder (runs.RunSummary), newest first; re-read at most every `ttl` seconds."""
    root = str(runs_root())
    hit = _LIST_CACHE.get(root)
    if hit is None or time.monotonic() - hit[0] > ttl:
        hit = _LIST_CACHE[root] = (time.monotonic(), list_runs(root))
    return hit[1]


def show_run(run_id: str | None) -> None:
    ss.run_id = run_id
    ss.map_follow = True
    _LIST_CACHE.clear()


def sync_url() -> None:
    """The URL names the shown run, so a reload (or a copied link) comes back to it."""
    rid = ss.get("run_id")
    if rid and st.query_params.get("run") != rid:
        st.query_params["run"] = rid
    elif not rid and "run" in st.query_params:
        del st.query_params["run"]


def run_label(s) -> str:
    """A run in the picker. A training run's epoch count is left out: the picker is drawn again only when the
    whole page reruns, so it would go stale while the progress bar below it moves on."""
    name = f" · {s.name}" if s.name and s.name != s.run_id else ""
    done = f"{s.epochs} epochs" if s.status == "running" else f"{s.epochs_done}/{s.epochs} epochs"
    return f"{s.run_id} · {s.status} · {done} · {s.dataset}{name}"


def run_state(run) -> str:
    return "none" if run is None else run.state


def is_live(run) -> bool:
    """Does the page need to poll this run (training, or maps / the hand-over to Search still pending)?"""
    return run is not None and (run.state in ACTIVE or run.finishing or bool(run.view().umap_pending))


def is_busy() -> bool:
    """Is this page's own work running (the shown run, trained here; or a comparison or sweep)? Settings lock then."""
    return controllable(shown()) or compare.busy()


# --- sidebar -----------------------------------------------------------------------------------------------

def sidebar(busy: bool):
    from acmr_core.encoders import available_encoders, best_offline_encoders

    with st.sidebar:
        st.markdown("## :material/tune: Set-up")
        if busy:
            st.caption(":material/lock: Settings are locked while training runs. Stop it (or wait) to change them.")
        st.markdown("**Dataset**")
        kind = st.selectbox("Dataset", list(services.DATASET_KINDS), format_func=services.DATASET_KINDS.get,
                            key="ds_kind", disabled=busy, label_visibility="collapsed",
                            help="Shapes is generated on this machine (no download). The Wikipedia benchmark and your "
                                 "own data are read from a folder or file you name.")
        data_dir = ""
        if kind == "wikipedia":
            ss.setdefault("ds_dir_wikipedia", str(services.DEFAULT_WIKIPEDIA_DIR)
                          if services.DEFAULT_WIKIPEDIA_DIR.is_dir() else "")
            data_dir = st.text_input("Wikipedia folder", key="ds_dir_wikipedia", disabled=busy,
                                     help="A folder with raw_features.mat, trainset_txt_img_cat.list, "
                                          "testset_txt_img_cat.list and categories.list.")
        elif kind == "folder":
            data_dir = st.text_input("Folder with images and a CSV", key="ds_dir_folder", disabled=busy,
                                     placeholder="/path/to/my_data",
                                     help="A CSV with columns image, caption, label (and optionally split); image "
                                          "paths relative to the folder.")
        elif kind == "wikipedia_raw":
            data_dir = st.text_input("Raw Wikipedia folder", key="ds_dir_wikipedia_raw", disabled=busy,
                                     help="The release with images/<category>/<id>.jpg, texts/<id>.xml, the two "
                                          "*_txt_img_cat.list files and categories.list.")
        features_map = ""
        if kind == "features":
            data_dir = st.text_input("Features file (.npz or .mat)", key="ds_dir_features", disabled=busy,
                                     placeholder="/path/to/features.npz",
                                     help="Research layouts are recognised (image_train/..., I_tr/T_tr/L_tr, a struct "
                                          "with X1, X2, Y and split indices, ...); see docs/byod.md.")
            features_map = st.text_input("Array mapping (only if not recognised)", key="ds_features_map", disabled=busy,
                                         placeholder="image=X1,text=X2,labels=Y,train=split.ind_train,test=split.ind_test",
                                         help="Which array is which, when the file's names are not recognised.")
        img_enc, txt_enc, n_pairs, difficulty = "hog_color", "tfidf", None, None
        if kind in ("shapes", "folder", "wikipedia_raw"):
            c1, c2 = st.columns(2)
            img_choices = available_encoders("image") or ["hog_color"]
            txt_choices = available_encoders("text") or ["tfidf"]
            # shapes: hog_color serves the drawn demo best; photos: the best installed offline encoders
            best_img = "hog_color" if kind == "shapes" else best_offline_encoders()["image"]
            img_enc = c1.selectbox("Image encoder", img_choices, key=f"ds_img_enc_{kind}", disabled=busy,
                                   index=img_choices.index(best_img) if best_img in img_choices else 0,
                                   help="efficientnet_lite0: ImageNet-pretrained CNN, offline, for photos. hog_color: "
                                        "HOG edges + colour histograms, for drawings. clip_image needs CLIP weights on disk.")
            txt_enc = c2.selectbox("Text encoder", txt_choices, key=f"ds_txt_enc_{kind}", disabled=busy,
                                   index=txt_choices.index("tfidf") if "tfidf" in txt_choices else 0,
                                   help="tfidf: bag of words (or of characters, for captions written without "
                                        "spaces) fitted on the training captions, offline.")
        if kind == "shapes":
            with st.expander("Shapes options"):
                n_pairs = st.number_input("Pairs", 40, 20000, services.SHAPES_PAIRS, 100, key="ds_pairs", disabled=busy,
                                          help="How many image-caption pairs to generate (cached after the first time).")
                difficulty = st.selectbox("Difficulty", ["easy", "normal", "hard"], index=1, key="ds_difficulty",
                                          disabled=busy, help="How much nuisance (noise, distractors, occlusion, "
                                                              "vague captions) the generator adds.")
        spec = None
        spec_error = None
        if kind != "shapes" and not data_dir.strip():
            spec_error = "Name the folder or file to read this dataset from."
        else:
            spec = services.dataset_spec(kind, data_dir, img_enc, txt_enc, n_pairs, difficulty, features_map)

        st.markdown("**Hyperparameters**")
        st.caption("Hover the (?) icons: what each setting does, its default and the paper's value.")
        for title, names in FIELD_GROUPS:
            with st.expander(title, expanded=title.startswith("Ablations")):
                for name in names:
                    _widget(name, busy)
        with st.expander("Maps"):
            st.select_slider("UMAP snapshots", list(UMAP_PLANS), value="6", key="umap_plan", disabled=busy,
                             help="At how many epochs a UMAP map of the common space is computed (epoch 0 and the last "
                                  "always; PCA maps come every epoch). More snapshots, smoother scrubbing; each takes a "
                                  "few seconds of CPU beside training. You can add more epochs afterwards in the Maps tab.")
        st.button("Reset to defaults", icon=":material/settings_backup_restore:", on_click=reset_config, disabled=busy,
                  key="btn_reset_cfg",
                  help="Every hyperparameter back to its default (the tooltips give the paper's value where it differs); "
                       "epochs back to the demo's.")
        cfg, cfg_error = config_from_widgets()
        if cfg_error:
            st.error(cfg_error)
    return spec, spec_error, cfg, cfg_error


def _widget(name: str, busy: bool):
    """The widget of one hyperparameter, from its schema (acmr_core.config: label, bounds, step, choices)."""
    f = ACMRConfig.spec(name)
    key, help_ = f"cfg_{name}", _help(name)
    common = dict(key=key, help=help_, disabled=busy)
    if f.choices:
        st.selectbox(f.label, list(f.choices), **common)
    elif f.kind == "bool":
        st.toggle(f.label, **common)
    elif f.kind == "list":
        st.text_input(f.label, **dict(common, help=help_ + " Comma-separated sizes."))
    elif f.kind == "int":
        st.number_input(f.label, min_value=None if f.lo is None else int(f.lo) + int(f.lo_open),
                        max_value=None if f.hi is None else int(f.hi) - int(f.hi_open), step=int(f.step or 1), **common)
    else:
        step = f.step or 0.01
        hi = None if f.hi is None else (f.hi - step if f.hi_open else f.hi)
        st.number_input(f.label, min_value=None if f.lo is None else float(f.lo), max_value=hi, step=step,
                        format="%.1e" if f.sci else "%.3f", **common)


# --- control bar -------------------------------------------------------------------------------------------

UMAP_PLANS = {"first and last": 1, "3": 2, "6": 5, "11": 10, "every epoch": None}


def umap_epochs_for(epochs: int) -> list[int]:
    n = UMAP_PLANS.get(ss.get("umap_plan", "6"), 5)
    return list(range(epochs + 1)) if n is None else default_umap_epochs(epochs, n)


def on_start(spec, cfg) -> None:
    if is_busy():
        return
    run = services.track(TrainingRun(spec.load, cfg, dataset_label=spec.label, name=f"run {time.strftime('%H:%M:%S')}",
                                     umap_epochs=umap_epochs_for(cfg.epochs), on_finish=services.publish_run))
    try:
        run.start()
    except OSError as e:            # the runs folder cannot be written: say where and why, train nothing
        ss.start_error = f"Could not create the run's folder under `{runs_root()}`: {e.strerror or e}"
        return
    show_run(run.run_id)


def controllable(run) -> bool:
    """Pause and Stop act on runs this process trains; anyone viewing such a run may use them (the server
    listens on this computer only, see .streamlit/config.toml)."""
    return isinstance(run, TrainingRun) and run.state in ACTIVE


def on_pause() -> None:
    run = shown()
    if not controllable(run):
        return
    if run.state == "paused":
        run.resume()
    else:
        run.pause()


def on_stop() -> None:
    run = shown()
    if controllable(run):
        run.stop()


def on_reset() -> None:
    run = shown()
    if run is not None and run.state in ACTIVE:
        return
    show_run(None)


def picked_run_id(value: str | None) -> str | None:
    """The run a picker value names. The browser sends back the option's label, not its value; when the chosen run's
    label changed since the page drew it (running -> finished), Streamlit hands that stale label on as the value
    (and calls on_pick). A run id is its label's first word (run_label). Taking the whole label showed no run:
    "Press Start" under the finished run's status, in a Chromium walk-through."""
    return (value or "").split(" ", 1)[0] or None


def on_pick() -> None:
    show_run(picked_run_id(ss.get("run_pick")))


def run_picker() -> None:
    """Every run, live and past (newest first): pick one to show."""
    found = known_runs()
    rid = ss.get("run_id")
    ids = [s.run_id for s in found]
    labels = {s.run_id: run_label(s) for s in found}
    if rid and rid not in ids:
        ids.insert(0, rid)
        labels[rid] = rid
    options = [""] + ids
    ss.run_pick = rid or ""
    c1, c2 = st.columns([3, 4], vertical_alignment="bottom")
    c1.selectbox("Run", options, key="run_pick", on_change=on_pick, format_func=lambda i: labels.get(i, "none: a new run"),
                 help=f"Every run recorded under {runs_root()}, newest first: training now, finished, stopped, failed "
                      "or interrupted (its process ended before it did). The page's address names the run shown, so a "
                      "reload or a copied link comes back to it.")
    missing = ss.pop("missing_run", None)
    if missing:
        c2.warning(f"There is no run `{missing}` under {runs_root()}.")
    else:
        c2.caption(":material/group: Everyone who opens this page sees the same runs, live. Anyone viewing a run "
                   "that trains may pause or stop it: the server listens only on this computer (127.0.0.1).")


def control_bar(spec, spec_error, cfg, cfg_error, busy: bool) -> None:
    run = shown()
    state = run_state(run) if controllable(run) else "idle"
    cols = st.columns([1.1, 1.1, 1, 1, 4.5], vertical_alignment="center")
    can_start = not busy and spec is not None and cfg is not None
    cols[0].button("Start", icon=":material/play_arrow:", type="primary", disabled=not can_start, key="btn_start",
                   on_click=on_start,
                   args=(spec, cfg), width="stretch",
                   help="Train a new model with the settings on the left (a new run replaces the shown one).")
    paused = state == "paused"
    cols[1].button("Resume" if paused else "Pause", icon=":material/play_arrow:" if paused else ":material/pause:",
                   disabled=state not in ACTIVE, key="btn_pause",
                   on_click=on_pause, width="stretch", help="Pause the training thread; resume where it stopped.")
    cols[2].button("Stop", icon=":material/stop:", disabled=state not in ACTIVE, key="btn_stop", on_click=on_stop,
                   width="stretch",
                   help="Stop after the current step. The best epoch so far is kept and can be saved.")
    cols[3].button("Reset", icon=":material/restart_alt:", disabled=busy or run is None, key="btn_reset",
                   on_click=on_reset, width="stretch",
                   help="Clear the charts and maps of the last run (saved checkpoints are kept).")
    with cols[4]:
        start_error = ss.pop("start_error", None)
        if start_error:
            st.error(start_error)
        elif spec_error:
            st.warning(spec_error)
        elif cfg_error:
            st.warning("Fix the setting marked in the sidebar to start.")
        elif run is None:
            st.caption(f"Ready: **{spec.label if spec else '?'}** · {cfg.epochs} epochs · seed {cfg.seed}. "
                       "Press **Start** and watch ACMR learn.")


# --- status (progress and metric cards) ------------------------------------------------------------------

STATE_BADGE = {"ready": ":gray-badge[ready]", "running": ":green-badge[:material/autorenew: training]",
               "paused": ":orange-badge[:material/pause: paused]", "stopped": ":gray-badge[:material/stop: stopped]",
               "finished": ":blue-badge[:material/check: finished]", "failed": ":red-badge[:material/error: failed]",
               "interrupted": ":violet-badge[:material/power_off: interrupted]"}


def status_panel() -> None:
    run = shown()
    if run is None:
        return
    v = run.view()
    box = st.container()
    if v.state == "failed":
        box.error(f"**Training failed.** {wording.failure(v.error_type, v.error or v.message)}\n\nChange the settings "
                  "or the data and press **Start** again; nothing that was saved before is lost.", icon=":material/error:")
    elif v.state == "interrupted":
        box.warning(f"**This run was interrupted**: {v.message}. Below is everything it recorded.",
                    icon=":material/power_off:")
    total = max(1, v.total_steps)
    eta = f" · about {charts.fmt_seconds(v.eta)} left" if v.eta is not None else ""
    text = (f"{STATE_BADGE.get(v.state, v.state)} · **{v.name}** · run `{v.run_id}` on {v.dataset_name} · "
            f"epoch {v.epoch}/{v.epochs} · step {v.global_step}/{v.total_steps or '?'} · "
            f"{charts.fmt_seconds(v.elapsed)} elapsed{eta}")
    st.progress(min(1.0, v.global_step / total), text=text)
    # always exactly one caption here: a fragment whose elements change in number can leave stale ones behind
    caption = "\u00a0"
    if v.state in ACTIVE and v.message and not v.global_step:
        caption = f":material/hourglass_top: {v.message} …"
    elif v.state in ACTIVE and not controllable(run):
        caption = f"Trained by another process (pid {_owner_pid(run)}): shown as its folder grows; it can be paused " \
                  "or stopped only there."
    elif v.state in ACTIVE:
        caption = f"{v.message}" if v.state == "paused" else "Training in a background thread: the page stays usable."
    elif v.state == "interrupted":
        caption = f"Read back from its folder: `{_rel(run.folder)}`"
    elif v.state in DONE and v.message:
        note = run.finish_note
        search = (" · :material/search: the Search tab now uses this model" if note == "ok" else
                  f" · the model could not be handed to Search ({note.removeprefix('failed: ')})" if note else "")
        caption = v.message + search
    st.caption(caption)
    metric_cards(v)
    # a run that just ended, or whose last maps / hand-over to Search just finished: rerun the whole page once, so
    # the locked controls unlock and the polling stops
    now_live = is_live(run)
    if (v.state in DONE and ss.get("_last_state") in ACTIVE) or (ss.get("_was_live") and not now_live):
        ss["_last_state"], ss["_was_live"] = v.state, now_live
        _LIST_CACHE.clear()             # the run picker names the state the run ended in, not "running"
        st.rerun(scope="app")
    ss["_last_state"], ss["_was_live"] = v.state, now_live


def _owner_pid(run) -> str:
    ev = next((e for e in run.dir.events() if e.get("kind") == "owner"), {}) if isinstance(run, StoredRun) else {}
    return str(ev.get("pid", "?"))


def metric_cards(v) -> None:
    h = v.history
    cols = st.columns(7)
    if not h:
        for c, label in zip(cols, ["mAP avg (val)", "Image → Text", "Text → Image", "Modality probe", "kNN mixing",
                                   "Modality gap", "D accuracy"]):
            c.metric(label, "–", border=True, height=CARD_H)
        return
    first, last = h[0], h[-1]

    def card(col, label, key, better_up=True, fmt="{:.3f}", help_=None):
        val, base = last.get(key), first.get(key)
        if val is None:
            col.metric(label, "–", border=True, help=help_, height=CARD_H)
            return
        delta = None if base is None or last is first else f"{val - base:+.3f}"
        col.metric(label, fmt.format(val), delta, delta_color="normal" if better_up else "inverse", border=True,
                   help=(help_ + " " if help_ else "") + "The small number: change since epoch 0 (before training).",
                   height=CARD_H)

    card(cols[0], "mAP avg (val)", "val_avg", help_="Mean of both retrieval directions, validation split, mAP@all.")
    card(cols[1], "Image → Text", "val_img2txt")
    card(cols[2], "Text → Image", "val_txt2img")
    card(cols[3], "Modality probe", "probe", better_up=False, help_=compare.HELP["probe"])
    card(cols[4], "kNN mixing", "mixing", help_=compare.HELP["mixing"])
    card(cols[5], "Modality gap", "gap", better_up=False, help_="Distance between the image and text centroids.")
    acc = v.steps["disc_acc"]
    per_epoch = max(1, v.steps_per_epoch)
    import numpy as np

    recent = acc[-per_epoch:]
    recent = recent[np.isfinite(recent)]
    cols[6].metric("D accuracy", f"{recent.mean():.0%}" if len(recent) else "–", border=True,
                   help="The modality classifier's accuracy over the last epoch's steps: 50% = fooled. A fooled D "
                        "does not mean mixed modalities: compare with kNN mixing.",
                   height=CARD_H)


# --- the training tab ------------------------------------------------------------------------------------

def explain(key: str) -> None:
    with st.expander("What am I looking at?"):
        st.markdown(EXPLAIN[key])


def training_tab() -> None:
    run = shown()
    if run is None:
        st.info("Press **Start** to train ACMR on the chosen dataset. The charts below fill in live: the losses "
                "per step, the modality classifier being fooled, and retrieval improving epoch by epoch.")
        loaded = ss.loaded
        if loaded:
            st.markdown(f"**Loaded checkpoint** `{loaded['path']}`: its training history")
            history_charts(loaded["meta"])
        return
    v = run.view()
    figs = {"losses": charts.loss_figure(v), "modality_classifier": charts.disc_figure(v)}
    # these change once per epoch: built once, and the same figure is the same chart in the browser (not redrawn)
    epoch_key = _epoch_key(v)
    for name, build in (("map", charts.map_figure_epochs), ("probe", charts.probe_figure), ("gap", charts.gap_figure),
                        ("mixing", charts.mixing_figure), ("grl", charts.grl_figure)):
        figs[name] = _cached_figure(name, epoch_key, lambda b=build: b(v))
    _chart(figs, "losses")
    for row in (("modality_classifier", "map"), ("probe", "mixing"), ("gap", "grl")):
        for column, name in zip(st.columns(len(row)), row):
            with column:
                _chart(figs, name)
    overlay(v)


OVERLAY = (("val_avg", "Validation mAP (avg) of each run", "mAP", None, None),
           ("probe", "Modality probe of each run (0.5 = mixed)", "balanced accuracy", [0.4, 1.05], 0.5),
           ("gap", "Modality gap of each run", "centroid distance", None, None),
           ("loss_total", "Total loss (epoch mean) of each run", "loss", None, None))


def overlay(v) -> None:
    """The epoch curves of the shown run and of other chosen runs, on shared axes (as in TensorBoard)."""
    others = {s.run_id: s for s in known_runs() if s.run_id != v.run_id}
    if not others:
        return
    st.markdown("##### :material/stacked_line_chart: Overlay other runs")
    ss["overlay_runs"] = [r for r in ss.get("overlay_runs", []) if r in others]
    picked = st.multiselect("Runs to draw beside this one", list(others), key="overlay_runs",
                            format_func=lambda i: run_label(others[i]),
                            help="Any recorded run: live, finished, stopped, failed or interrupted. Their epoch curves "
                                 "are drawn on the same axes as this run's.")
    if not picked:
        return
    views = {f"{v.name} · {v.run_id} (shown)": v}
    for rid in picked:
        r = open_run(rid)
        if r is not None:
            ov = r.view()
            views[f"{ov.name} · {rid}"] = ov
    cols = st.columns(2)
    for i, (key, title, ytitle, yrange, ref) in enumerate(OVERLAY):
        with cols[i % 2]:
            st.plotly_chart(charts.overlay_curves(views, key, title, ytitle, yrange, ref), config=charts.PLOT_CONFIG,
                            key=f"fig_overlay_{key}")


_CHART_KEYS = {"modality_classifier": "disc"}     # element keys the browser tests look for: fig_<key>


def _chart(figs: dict, name: str) -> None:
    """One live chart and its teaching text below it."""
    live_chart(figs[name], key=f"fig_{_CHART_KEYS.get(name, name)}", config=charts.PLOT_CONFIG)
    explain(name)


def _epoch_key(v, now: float | None = None) -> tuple:
    """What the epoch charts are built from: a new key at each new epoch, but while a run trains at most one new
    key every EPOCH_CHARTS_S seconds. The browser draws every changed chart again from scratch; with epochs
    shorter than a poll all five were redrawn at every poll (a software-rendered page was caught with charts
    blank mid-redraw). A run that ends, or another run, gets its new key at once."""
    key = (v.run_id, len(v.history), v.best_epoch, v.state in ACTIVE)
    now = time.monotonic() if now is None else now
    old, since = ss.get("_epoch_key") or (None, now)
    if old == key:
        return key
    if old is not None and old[0] == key[0] and old[3] and key[3] and now - since < EPOCH_CHARTS_S:
        return old                                   # the same run, still training: keep the charts as drawn
    ss["_epoch_key"] = (key, now)
    return key


def _cached_figure(name: str, key, build):
    cache = ss.setdefault("_figcache", {})
    if name not in cache or cache[name][0] != key:
        cache[name] = (key, build())
    return cache[name][1]


def history_charts(meta: dict) -> None:
    hist = meta.get("history") or []
    if not hist:
        st.caption("This checkpoint has no training history.")
        return
    cfg = meta.get("config", {})
    fake = SimpleNamespace(history=[{**r, "probe": r.get("probe")} for r in hist], epochs=cfg.get("epochs", len(hist)),
                           best_epoch=(meta.get("metrics") or {}).get("best_epoch", 0))
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.map_figure_epochs(fake), config=charts.PLOT_CONFIG, key="fig_loaded_map")
    c2.plotly_chart(charts.probe_figure(fake), config=charts.PLOT_CONFIG, key="fig_loaded_probe")


# --- the maps tab ----------------------------------------------------------------------------------------

def _captions(run):
    ds = run.dataset
    return getattr(ds, "captions", None) if ds is not None else None


def maps_tab() -> None:
    run = shown()
    if run is None:
        st.info("The maps of the common space appear here once training starts (epoch 0 = the untrained model).")
        return
    v = run.view()
    c1, c2, c3 = st.columns([1.3, 1.3, 2])
    method = c1.segmented_control("Projection", ["UMAP", "PCA"], default="UMAP", key="map_method",
                                  help="UMAP: computed at chosen epochs (keeps neighbourhoods: shows the modality gap). "
                                       "PCA: recomputed live every epoch (keeps large-scale variance).") or "UMAP"
    layout = c2.segmented_control("View", ["Side by side", "Before / after"], default="Side by side",
                                  key="map_layout") or "Side by side"
    colour = "class"
    if layout == "Before / after":
        colour = c3.segmented_control("Colour by", ["modality", "class"], default="class", key="map_colour") or "class"
    frames = v.pca if method == "PCA" else v.umap
    with st.container():        # one element whatever it holds: the elements below never shift (see status_panel)
        if method == "UMAP":
            umap_status(run, v)
            if not frames and v.pca:
                st.caption(":material/info: No UMAP frame yet: showing the live PCA map meanwhile.")
                method, frames = "PCA", v.pca
    if not frames:
        st.info("No map yet: waiting for the first epoch's embeddings …" if method == "PCA" else
                "No UMAP frame yet. Frames are computed at the epochs listed above as training reaches them.")
        explain("maps")
        return
    epochs = sorted(frames)
    latest = epochs[-1]
    epoch = latest
    if len(epochs) > 1:
        s1, s2 = st.columns([5, 1], vertical_alignment="bottom")
        s2.toggle("Follow live", key="map_follow", help="Show the newest epoch as training goes. Switch it off to "
                                                         "scrub through the epochs with the slider.")
        label = "Epoch (switch “Follow live” off to scrub)" if ss.map_follow else "Epoch (scrub through training)"
        if ss.map_follow:   # a read-only slider that marks where training is
            s1.select_slider(label, options=epochs, value=latest, key=f"map_at_{method}_{latest}", disabled=True)
        else:
            key = f"map_sel_{method}"
            if ss.get(key) not in epochs:
                ss[key] = latest
            epoch = s1.select_slider(label, options=epochs, key=key)
    frame = frames[epoch]
    ranges = charts.axis_range([frames[e] for e in epochs])
    names, caps = v.class_names, _captions(run)
    thumbs = services.thumb_prefix(run.dataset)
    if layout == "Side by side":
        a, b = st.columns(2)
        with a:
            live_chart(charts.embedding_map(frame, "modality", names, caps, ranges=ranges, thumb_prefix=thumbs,
                                            title=f"{method}, epoch {epoch}: by modality"),
                       key="fig_map_mod", config=charts.MAP_CONFIG, select=True)
        with b:
            live_chart(charts.embedding_map(frame, "class", names, caps, ranges=ranges, thumb_prefix=thumbs,
                                            title=f"{method}, epoch {epoch}: by class"),
                       key="fig_map_cls", config=charts.MAP_CONFIG, select=True)
    else:
        before = frames[epochs[0]]
        with st.container():
            if epoch == before.epoch and len(epochs) > 1:
                st.caption(":material/info: Before and after show the same epoch: pick a later one with the slider "
                           "(or switch “Follow live” on).")
        a, b = st.columns(2)
        with a:
            live_chart(charts.embedding_map(before, colour, names, caps, ranges=ranges, thumb_prefix=thumbs,
                                            title=f"{method} · before: epoch {before.epoch} (by {colour})"),
                       key="fig_map_before", config=charts.MAP_CONFIG)
        with b:
            live_chart(charts.embedding_map(frame, colour, names, caps, ranges=ranges, thumb_prefix=thumbs,
                                            title=f"{method} · after: epoch {epoch} (by {colour})"),
                       key="fig_map_after", config=charts.MAP_CONFIG, select=True)
    st.caption(f"{frame.n_pairs} validation pairs ({2 * frame.n_pairs} points). Hover a point for its class and "
               "caption" + (" (and, for an image, the picture)" if thumbs else "") + "; click or lasso points to "
               "list the items below. Drag to pan, scroll to zoom, double-click to reset the view.")
    if thumbs:
        st.html(charts.HOVER_SCRIPT, unsafe_allow_javascript=True)
    selected_items(run)
    explain("maps")


def umap_status(run, v) -> None:
    warm = maps.warm_status()
    parts = []
    if warm["state"] == "warming":
        parts.append(":material/hourglass_top: umap-learn is compiling (first use in this process; later frames "
                     "take seconds)")
    elif warm["state"] == "failed":
        parts.append(f":material/warning: UMAP unavailable: {warm['error']}")
    if v.umap_pending:
        parts.append(f"computing epoch {', '.join(map(str, v.umap_pending))} …")
    done = sorted(v.umap)
    parts.append(f"ready: epochs {', '.join(map(str, done)) if done else 'none yet'}")
    if run.umap_epochs:
        parts.append(f"planned: {', '.join(map(str, sorted(run.umap_epochs)))}")
    have = sorted(e for e in run.snapshots() if e not in v.umap and e not in v.umap_pending)
    c1, c2, c3 = st.columns([4, 1, 0.8], vertical_alignment="bottom")
    c1.caption("UMAP frames · " + " · ".join(parts))
    if have:
        pick = c2.selectbox("Add a frame at epoch", have, index=len(have) - 1, key="umap_add_epoch")
        if c3.button("Add", key="btn_umap_add", icon=":material/add:", help="Compute a UMAP frame of this epoch too"):
            run.request_umap(int(pick))
            st.rerun(scope="app")            # the whole page: so the maps poll until the frame is ready
    if v.umap_error:
        st.warning(v.umap_error)


def selected_items(run) -> None:
    pts = []
    for key in ("fig_map_mod", "fig_map_cls", "fig_map_after"):
        state = ss.get(key)
        try:
            pts += list(state.selection.points) if state else []
        except AttributeError:
            pts += list((state or {}).get("selection", {}).get("points", []))
    rows = []
    for p in pts:
        cd = p.get("customdata")
        row = cd[0] if isinstance(cd, (list, tuple)) else cd
        if row is not None and int(row) not in rows:
            rows.append(int(row))
    if not rows or run.dataset is None:
        return
    ds = run.dataset
    st.markdown(f"**Selected: {len(rows)} pair(s)**" + (" (showing 12)" if len(rows) > 12 else ""))
    cols = st.columns(6)
    for i, row in enumerate(rows[:12]):
        with cols[i % 6]:
            label = ds.labels[row]
            cname = ds.class_names[int(label)] if getattr(label, "ndim", 0) == 0 else "multi-label"
            if ds.images is not None:
                st.image(ds.images[row], width=96)
            cap = ds.captions[row] if ds.captions is not None else None
            st.caption(f"**{cname}** · #{row}" + (f"<br>{cap}" if cap else ""), unsafe_allow_html=True)


# --- the search tab --------------------------------------------------------------------------------------

def _search_waiting() -> bool:
    """The newest checkpoint, or the search app itself, is still loading (both in the background at start-up)."""
    return services.store_loading() or services.SEARCH["status"] == "loading"


def search_status() -> None:
    waiting = _search_waiting()
    st.caption(f"Searching with: **{services.store_status()}**. A model trained here is handed to Search when "
               "training ends; a checkpoint you load is used at once.")
    if services.SEARCH["status"] == "loading":
        st.info("The search app is still starting (Gradio is built in the background, and opening this tab starts "
                "it even while a run trains: about 10 s on a 2-core laptop). It appears below as soon as it is "
                "ready.",
                icon=":material/hourglass_top:")
    if ss.get("_search_was_waiting") and not waiting:    # loaded: one full rerun, so this stops polling
        ss["_search_was_waiting"] = False
        st.rerun(scope="app")
    ss["_search_was_waiting"] = waiting


def search_tab(live: bool) -> None:
    st.fragment(search_status, run_every=POLL if live or _search_waiting() else None)()
    if services.SEARCH["status"] == "unavailable":
        st.warning(f"The search app could not be loaded: {services.SEARCH['error']}")
    st.iframe("/gradio/", height=1100)


# --- checkpoints and export ------------------------------------------------------------------------------

def on_save() -> None:
    run = shown()
    try:
        folder = run.save(services.checkpoints_dir())
        try:
            services.publish_run(run, checkpoint=folder)
        except Exception:  # noqa: BLE001
            pass
        ss.save_msg = ("success", f"Saved checkpoint **{_rel(folder)}** ({run.model_state()[1]}).")
    except Exception as e:  # noqa: BLE001
        ss.save_msg = ("error", f"Could not save: {e}")


def on_load(path) -> None:
    if path:
        ss.task = services.load_checkpoint_task(path)


def _rel(p) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def checkpoints_tab(busy: bool) -> None:
    run = shown()
    v = run.view() if run is not None else None
    left, right = st.columns(2)
    with left:
        st.markdown("#### Save")
        can_save = v is not None and v.epoch >= 1 and isinstance(run, TrainingRun)
        st.button("Save checkpoint", icon=":material/save:", key="btn_save", on_click=on_save, disabled=not can_save,
                  help="Writes a new folder under checkpoints/ (never overwrites): the best epoch once training "
                       "ended, else the end of the last completed epoch.")
        msg = ss.pop("save_msg", None)
        if msg:
            getattr(st, msg[0])(msg[1])
        if v is not None and v.saved:
            st.caption("Saved from this run: " + ", ".join(f"`{_rel(p)}`" for p in v.saved))
        elif v is None or v.epoch < 1:
            st.caption("Train at least one epoch to save.")
        elif not isinstance(run, TrainingRun):
            own = run.folder / "checkpoint"
            st.caption(f"This run was recorded earlier (or elsewhere): its own checkpoint is `{_rel(own)}`"
                       if (own / "acmr.safetensors").is_file() else
                       "This run was recorded earlier (or elsewhere) and left no checkpoint.")
        st.markdown("#### Load")
        found = services.list_checkpoints()
        if not found:
            st.caption("No checkpoints under checkpoints/ yet.")
        else:
            pick = st.selectbox("Checkpoint", [str(p) for p in found], format_func=_rel, key="ckpt_pick",
                                help="Newest first. Loading makes it the model Search uses and shows its history.")
            task = ss.task
            loading = task is not None and not task.done
            st.button("Load checkpoint", icon=":material/folder_open:", key="btn_load", on_click=on_load, args=(pick,),
                      disabled=busy or loading)
        task_status()
    with right:
        st.markdown("#### Export")
        if v is None:
            st.caption("Nothing to export yet.")
        else:
            dl = dict(icon=":material/download:", on_click="ignore")
            st.download_button("Metrics per epoch (CSV)", data=run.metrics_csv, file_name=f"acmr-{run.run_id}-epochs.csv",
                               mime="text/csv", key="dl_csv", **dl)
            st.download_button("Losses per step (CSV)", data=run.steps_csv, file_name=f"acmr-{run.run_id}-steps.csv",
                               mime="text/csv", key="dl_steps", **dl)
            st.download_button("All charts (interactive HTML, works offline)", data=lambda: _charts_html(run),
                               file_name=f"acmr-{run.run_id}-charts.html", mime="text/html", key="dl_html", **dl)
            st.caption("For a PNG of one chart, use the :material/photo_camera: button that appears when you hover the chart.")
            last = v.saved[-1] if v.saved else None
            st.download_button("Current checkpoint (zip)", data=lambda: _zip_folder(last) if last else b"",
                               file_name=f"{Path(last).name if last else 'checkpoint'}.zip", mime="application/zip",
                               key="dl_ckpt", disabled=last is None, **dl,
                               help="The last checkpoint saved from this run (save one first).")
            embedding_export.downloads(run, v)
    task = ss.task
    if task is not None and task.done and not task.error and task.result:
        st.markdown(f"##### Training history of `{_rel(task.result['path'])}`")
        history_charts(task.result["meta"])


def task_status() -> None:
    task = ss.task
    if task is None:
        return
    if not task.done and ss.get("_task_started") is not task:   # just started here: let the page start polling
        ss["_task_started"] = task
        st.rerun(scope="app")
    if not task.done:
        st.info(f":material/hourglass_top: Loading `{task.name.removeprefix('load-')}` (it reloads the data it was trained on) …")
    elif task.error:
        st.error(f"**Could not load the checkpoint.** {task.error}", icon=":material/error:")
    else:
        if ss.get("_task_seen") is not task:   # just finished: one full rerun so the page catches up
            ss["_task_seen"] = task
            st.rerun(scope="app")
        res = task.result
        if ss.loaded is None or ss.loaded.get("path") != res["path"]:
            ss.loaded = res
        metrics = res["meta"].get("metrics") or {}
        ds = (res["meta"].get("dataset") or {}).get("dataset", "?")
        st.success(f"Loaded **{_rel(res['path'])}** (trained on {ds}, best epoch {metrics.get('best_epoch', '?')}). "
                   "Search now uses it. Its training history is below.")


def _charts_html(run) -> str:
    v = run.view()
    figs = charts.training_figures(v)
    figs["mixing"] = charts.mixing_figure(v)
    for label, frames in (("PCA", v.pca), ("UMAP", v.umap)):
        if frames:
            e = max(frames)
            for colour in ("modality", "class"):
                figs[f"{label} map, epoch {e}, by {colour}"] = charts.embedding_map(frames[e], colour, v.class_names,
                                                                                    _captions(run))
    return charts.figures_html(figs, title=f"ACMR Lab · {v.name} on {v.dataset_name}")


def _zip_folder(folder) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(Path(folder).iterdir()):
            if p.is_file() and not p.name.startswith("."):
                z.write(p, f"{Path(folder).name}/{p.name}")
    return buf.getvalue()


# --- page ------------------------------------------------------------------------------------------------

def main() -> None:
    st.set_page_config(page_title="ACMR Lab", page_icon=":material/hub:", layout="wide", initial_sidebar_state="expanded")
    st.html("""<style>
      .block-container {padding-top: 2.2rem; padding-bottom: 2rem;}
      [data-testid="stMetricValue"] {font-size: 1.9rem;}
      [data-testid="stExpander"] summary p {font-size: 0.92rem; color: #555;}
    </style>""")
    services.start_background()
    _init_state()
    busy = is_busy()
    spec, spec_error, cfg, cfg_error = sidebar(busy)
    st.markdown("## :material/hub: ACMR Lab · watch adversarial cross-modal retrieval learn")
    st.caption("Two projectors map images and texts into one common space; a modality classifier tries to tell "
               "them apart, and the projectors learn to fool it (Wang et al., ACM Multimedia 2017).")
    run_picker()
    control_bar(spec, spec_error, cfg, cfg_error, busy)
    sync_url()
    run = shown()
    live = is_live(run)
    st.fragment(status_panel, run_every=POLL if live else None)()
    tabs = st.tabs(TABS, key="main_tab", on_change="rerun")
    with tabs[0]:
        if tabs[0].open:
            st.fragment(training_tab, run_every=POLL if live else None)()
    with tabs[1]:
        if tabs[1].open:
            st.fragment(maps_tab, run_every=POLL if live else None)()
    with tabs[2]:
        if tabs[2].open:
            compare.tab(spec, cfg, busy, POLL)
    with tabs[3]:
        if tabs[3].open:
            search_tab(live)
    with tabs[4]:
        if tabs[4].open:
            task = ss.task
            st.fragment(checkpoints_tab, run_every=POLL if (task is not None and not task.done) or live else None)(busy)
    services.client_arrived()           # the page is drawn: the deferred start-up work may begin (services.py)
