"""Command line: train and evaluate ACMR.

  python -m acmr_core train --dataset wikipedia --data-dir ../shared/data/wikipedia --seed 0 --out checkpoints/wiki
  python -m acmr_core train --dataset shapes --out checkpoints/shapes
  python -m acmr_core evaluate --checkpoint checkpoints/wiki --data-dir ../shared/data/wikipedia
  python -m acmr_core runs          # every run under runs/ ($ACMR_RUNS_DIR), newest first
  python -m acmr_core warm-up       # compile UMAP's code, build the app's default dataset (scripts/setup.sh, once)
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import fields
from pathlib import Path

from .config import ACMRConfig, ConfigError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    """One flag per hyperparameter, from the config's schema; values are checked by the config itself."""
    g = p.add_argument_group("hyperparameters (defaults: the paper's where it gives one)")
    for f in ACMRConfig.schema():
        if f.name in ("seed", "use_adversarial", "use_triplet", "use_label"):
            continue
        flag, shown = "--" + f.name.replace("_", "-"), f"{f.label}. {f.help} (default: {f.default})"
        if f.kind == "list":
            g.add_argument(flag, type=int, nargs="+", default=None, metavar="N", help=shown)
        else:
            g.add_argument(flag, type=lambda text, name=f.name: _parse(name, text), default=None, help=shown,
                           metavar=("|".join(f.choices) if f.choices else f.kind.upper()))


def _parse(name: str, text: str):
    try:
        return ACMRConfig.parse(name, text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="shapes", help="registered dataset: wikipedia, shapes, folder, features")
    p.add_argument("--data-dir", default=None, help="folder (or file) the dataset is read from")
    p.add_argument("--image-encoder", default=None, help="image encoder for datasets with raw images (e.g. hog_color)")
    p.add_argument("--text-encoder", default=None, help="text encoder for datasets with raw captions (e.g. tfidf)")
    p.add_argument("--features-map", default=None, metavar="ROLE=ARRAY,...",
                   help="dataset 'features': which array is which, e.g. image=X1,text=X2,labels=Y,"
                        "train=split.ind_train,test=split.ind_test (when the file's names are not recognised)")


def load_from_args(args):
    """The dataset named on the command line. Its own content is fixed; --seed varies training only."""
    from .data import load_dataset

    opts = {}
    if args.data_dir is not None:
        opts["data_dir"] = args.data_dir
    for name in ("image_encoder", "text_encoder", "features_map"):
        if getattr(args, name, None):
            opts[name] = getattr(args, name)
    return load_dataset(args.dataset, **opts)


def cmd_train(args) -> int:
    from tqdm import tqdm

    from .pipeline import save_model, train_run
    from .training import StepEvent

    own_flags = ("seed", "use_adversarial", "use_triplet", "use_label")
    overrides = {f.name: getattr(args, f.name) for f in fields(ACMRConfig)
                 if getattr(args, f.name, None) is not None and f.name not in own_flags}
    from .presets import preset_config

    cfg = preset_config(args.preset, **overrides, seed=args.seed, use_adversarial=not args.no_adversarial,
                        use_triplet=not args.no_triplet, use_label=not args.no_label).validate()   # flags override the preset
    if args.out:
        prepare_output_dir(args.out)          # before training: a bad --out must not lose a finished run
    warn_about_config(cfg)
    ds = load_from_args(args)
    bar = tqdm(total=1, desc="training", unit="step", disable=args.quiet)

    def on_event(e):
        if isinstance(e, StepEvent):
            bar.total = e.total_steps
            bar.update(1)
            if e.step == 1:
                bar.set_postfix(epoch=e.epoch, loss=f"{e.losses['total']:.3f}", d_acc=f"{e.disc_acc:.2f}")

    out = train_run(ds, cfg, name=args.name or "", dataset_label=ds.name, listeners=(on_event,))
    if out.result is not None and out.result.early_stopped:          # finished sooner than planned: end the bar full
        bar.total = bar.n
        bar.refresh()
    bar.close()
    if out.state == "failed":
        print(f"error: {out.message}", file=sys.stderr)
    if out.metrics is None:
        return 1
    m = out.metrics
    if args.out:
        save_model(args.out, out.result.model, cfg, ds, metrics=m, history=out.result.history, run_id=out.run.run_id)
    if not args.quiet:
        t = m["test"] or {}
        print(_table({k: t[k] for k in ("map_all", "map_at_50") if k in t},
                     f"test split of {ds.name}, best validation epoch {m['best_epoch']}"))
        if t:
            print(f"modality probe (held-out, balanced accuracy, 0.5 = invariant): {t['modality_probe']:.3f}; "
                  f"kNN modality mixing (1 = mixed): {t['knn_mixing']:.3f}")
        early = f" (stopped early: no validation gain for {cfg.patience} epochs)" if m["early_stopped"] else ""
        print(f"trained {m['epochs_run']} epochs{early} in {m['train_seconds']:.1f} s; run {out.run.run_id} in "
              f"{out.run.path}" + (f"; checkpoint and metrics.json also in {args.out}" if args.out else ""))
    return 1 if out.state == "failed" else 0


def cmd_runs(args) -> int:
    """One line per run, newest first: <id> <status> <epochs_done>/<epochs> <dataset>."""
    from .runs import list_runs

    for s in list_runs(args.dir):
        print(s.line())
    return 0


# the dataset the app starts with (app/services.DEFAULT_SPEC: tests/test_dashboard.py checks that they agree)
WARM_UP_DATASET: tuple[str, dict] = ("shapes", {})


def cmd_warm_up(args) -> int:
    """Once after an install (scripts/setup.sh runs it): compile umap-learn's code into numba's on-disk cache, and
    build the dataset the app starts with into the dataset cache, so the app's first start does neither (together
    about a minute of CPU on a 2-core laptop)."""
    import time

    from . import maps
    from .cache import cache_root
    from .data import DataError, load_dataset

    try:
        out = maps.precompile()
    except ImportError as e:
        print(f"error: umap-learn cannot be loaded ({e}); the maps fall back to PCA", file=sys.stderr)
        return 1
    print(f"UMAP's compiled code: {len(out['cached'])} functions in numba's disk cache, {len(out['uncached'])} not "
          f"cacheable, in {out['seconds']:.1f} s (later processes load it instead of compiling)")
    t = time.perf_counter()
    kind, opts = WARM_UP_DATASET
    try:
        ds = load_dataset(kind, progress=not args.quiet, **opts)
    except (DataError, OSError) as e:
        print(f"warning: the built-in {kind} dataset was not built ({e}); the app builds it at its first start",
              file=sys.stderr)
        return 0
    print(f"the built-in {kind} dataset: {ds.n} pairs ready in {time.perf_counter() - t:.1f} s, cached under "
          f"{cache_root()} (the app's first start reads it from there)")
    return 0


class SettingWarning(UserWarning):
    """A hyperparameter that is allowed but will almost surely not train."""


class OutputError(ValueError):
    """--out cannot be used (an existing file, or a folder that cannot be created or written)."""


def prepare_output_dir(path) -> Path:
    """Make sure `path` is a folder we can write a checkpoint into, creating it if needed. Raises OutputError."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: this is an existing file, not a folder; choose a folder name (it is "
                          "created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".acmr-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write there ({e.strerror or e}); choose a folder you can write to") \
            from None
    return out


def warn_about_config(cfg: ACMRConfig) -> None:
    """Settings that are allowed but will almost surely not train (a warning line each, not a refusal)."""
    for name in ("lr", "lr_disc"):
        v = getattr(cfg, name)
        if v > 1 or v < 1e-7:
            warnings.warn(f"--{name.replace('_', '-')} {v:g} is far outside the usual range (1e-5 to 1e-1); training "
                          "will probably diverge or not move", SettingWarning, stacklevel=2)


def _table(scores: dict, title: str) -> str:
    lines = [title, f"{'protocol':<22}{'Img2Txt':>9}{'Txt2Img':>9}{'Avg':>9}"]
    names = {"map_all": "mAP@all (cosine)", "map_at_50": "mAP@50 (cosine)"}
    for key, s in scores.items():
        lines.append(f"{names.get(key, key):<22}{s['img2txt']:>9.3f}{s['txt2img']:>9.3f}{s['avg']:>9.3f}")
    return "\n".join(lines)


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """The flags of a command that reads a checkpoint and the dataset it was trained on (evaluate, embed)."""
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", default=None, help="default: the dataset the checkpoint was trained on")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--image-encoder", default=None)
    p.add_argument("--text-encoder", default=None)


def checkpoint_and_data(args):
    """The checkpoint named by --checkpoint and its dataset: the one it was trained on, unless the command line
    names another (--dataset / --data-dir); refused when the feature sizes do not fit."""
    from .checkpoints import check_fits, load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    info = ckpt.meta.get("dataset", {})
    if args.dataset is None and args.data_dir is None and info.get("dataset"):
        from .data import load_dataset

        ds = load_dataset(info["dataset"], **info.get("options", {}))   # the data it was trained on
    else:
        args.dataset = args.dataset or info.get("dataset", "shapes")
        ds = load_from_args(args)
    check_fits(ckpt, ds.image_features.shape[1], ds.text_features.shape[1], ds.num_classes)
    return ckpt, ds


def cmd_evaluate(args) -> int:
    from .training import evaluate

    ckpt, ds = checkpoint_and_data(args)
    if args.protocol == "acmr-demo":
        from .metrics import acmr_demo_scores

        idx = ds.indices("test")
        s = acmr_demo_scores(ckpt.model.embed(ds.image_features[idx], "image"),
                             ckpt.model.embed(ds.text_features[idx], "text"), ds.labels[idx])
        print(_table({"map_all": evaluate(ckpt.model, ds, "test"), "acmr-demo (L2, @50)": s},
                     f"{ckpt.path.parent}: test split of {ds.name}; acmr-demo = the official ACMR demo's scoring "
                     f"(first {min(640, len(idx))} of {len(idx)} test pairs, L2 distance, mAP@50)"))
        return 0
    scores = {"map_all": evaluate(ckpt.model, ds, "test"), "map_at_50": evaluate(ckpt.model, ds, "test", k=50)}
    if args.metric == "l2":
        scores = {"map_all (L2)": evaluate(ckpt.model, ds, "test", metric="l2"),
                  "map_at_50 (L2)": evaluate(ckpt.model, ds, "test", k=50, metric="l2")}
    print(_table(scores, f"{ckpt.path.parent}: test split of {ds.name} ({int((ds.split == 'test').sum())} pairs)"))
    return 0


def cmd_embed(args) -> int:
    """A split's common-space embeddings: .npz (image, text, labels) or the Embedding Projector's two TSVs."""
    from .export import split_embeddings, write_npz, write_projector_tsv

    out = Path(args.out).expanduser()
    if args.format == "npz" and out.is_dir():
        raise OutputError(f"--out {out}: this is a folder; name the .npz file to write, e.g. {out / 'test.npz'}")
    if args.format == "tsv" and out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: with --format tsv, --out is the folder that receives vectors.tsv and "
                          "metadata.tsv; choose a folder name")
    prepare_output_dir(out.parent if args.format == "npz" else out)
    ckpt, ds = checkpoint_and_data(args)
    emb = split_embeddings(ckpt.model, ds, args.split, ckpt.config)
    written = ([write_npz(emb, out)] if args.format == "npz"
               else list(write_projector_tsv(emb, out, list(ds.class_names))))
    print(f"{args.split} split of {ds.name}: {len(emb['labels'])} pairs, {emb['image'].shape[1]}-d common space -> "
          + ", ".join(str(p) for p in written))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m acmr_core",
                                 description="Train and evaluate ACMR (Adversarial Cross-Modal Retrieval).")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model, save a checkpoint and metrics.json")
    _dataset_args(t)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="also save the checkpoint and metrics.json into this folder (the run's "
                                            "folder under runs/ always has them)")
    t.add_argument("--name", default=None, help="a name for the run (its id is made up of the time and a random part)")
    t.add_argument("--no-adversarial", action="store_true", help="ablation: no modality classifier / L_adv")
    t.add_argument("--no-triplet", action="store_true", help="ablation: no triplet loss L_imi")
    t.add_argument("--no-label", action="store_true", help="ablation: no label loss L_imd")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--preset", choices=["demo", "paper"], default=None,
                   help="start from a named setting (acmr_core/presets.py); flags given explicitly override it")
    _add_config_args(t)
    e = sub.add_parser("evaluate", help="print test mAP of a checkpoint in the paper's table form")
    _add_checkpoint_args(e)
    e.add_argument("--metric", choices=["cosine", "l2"], default="cosine")
    e.add_argument("--protocol", choices=["map-all", "acmr-demo"], default="map-all",
                   help="map-all (default): mAP@all and mAP@50 over every test item; acmr-demo: the official ACMR "
                        "demo's scoring (first 640 test pairs, L2 distance, mAP@50), for the paper's table")
    m = sub.add_parser("embed", help="write one split's common-space embeddings (.npz, or Embedding Projector TSVs)")
    _add_checkpoint_args(m)
    m.add_argument("--split", choices=["train", "val", "test"], default="test",
                   help="val = the validation part the run carved from the training split (or the dataset's own)")
    m.add_argument("--out", required=True, help="the .npz file; with --format tsv, a folder for vectors.tsv + metadata.tsv")
    m.add_argument("--format", choices=["npz", "tsv"], default="npz")
    r = sub.add_parser("runs", help="list the runs under runs/ ($ACMR_RUNS_DIR): id, status, epochs done/planned, dataset")
    r.add_argument("--dir", default=None, help="the runs folder (default: $ACMR_RUNS_DIR, else runs/ in the project)")
    w = sub.add_parser("warm-up", help="compile the maps' UMAP code into numba's disk cache and build the built-in "
                                       "shapes dataset into the dataset cache, so the app's first start does neither "
                                       "(once after an install; scripts/setup.sh runs it)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    return run_guarded(lambda: {"train": cmd_train, "runs": cmd_runs, "embed": cmd_embed,
                                "warm-up": cmd_warm_up}.get(args.command, cmd_evaluate)(args))


def _checkpoint_error() -> tuple:
    """CheckpointError, if this command loaded the checkpoint module (it imports torch, which `runs` does not need:
    that command took 5.2 s with it and 0.8 s without, on the 2-core machine)."""
    mod = sys.modules.get("acmr_core.checkpoints")
    return (mod.CheckpointError,) if mod else ()


def run_guarded(fn) -> int:
    """Run a command: warnings become 'warning: ...' lines, every error one 'error: ...' line and exit code 1,
    never a traceback (set ACMR_DEBUG=1 to get the traceback of an unexpected error). A closed output pipe
    (`python -m acmr_core runs | head`) ends the command quietly, as other command-line tools do."""
    from .data import DataError
    from .encoders import EncoderError

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        from .data import DataWarning

        for category in (DataWarning, SettingWarning):  # ours: every run shows them (the rest: Python's defaults)
            warnings.filterwarnings("always", category=category)
        warnings.showwarning = show
        try:
            return fn()
        except (ConfigError, DataError, EncoderError, OutputError, *_checkpoint_error()) as err:
            print(f"error: {err}", file=sys.stderr)
        except BrokenPipeError:
            sys.stdout = None       # nothing more can be written there; do not let the exit flush fail again
            return 0
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 - one line, never a traceback
            if os.environ.get("ACMR_DEBUG"):
                raise
            first = (str(err).strip().splitlines() or [""])[0][:300]
            print(f"error: {type(err).__name__}: {first} (unexpected; rerun with ACMR_DEBUG=1 to see where, and "
                  "report it if the input looks right)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
