"""Command line: train and evaluate ACMR.

  python -m acmr_core train --dataset wikipedia --data-dir ../shared/data/wikipedia --seed 0 --out checkpoints/wiki
  python -m acmr_core train --dataset shapes --out checkpoints/shapes
  python -m acmr_core evaluate --checkpoint checkpoints/wiki --data-dir ../shared/data/wikipedia
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .config import ACMRConfig, ConfigError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hyperparameters (defaults: the paper's where it gives one)")
    for f in fields(ACMRConfig):
        if f.name in ("seed", "use_adversarial", "use_triplet", "use_label"):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not f.default_factory else None  # noqa: E721
        if isinstance(default, bool):
            g.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes", "on"), default=None,
                           help=f.metadata["help"])
        elif f.name.endswith("_layers"):
            g.add_argument(flag, type=int, nargs="+", default=None, help=f.metadata["help"])
        else:
            g.add_argument(flag, type=type(default), default=None, help=f.metadata["help"])


def _dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="shapes", help="registered dataset: wikipedia, shapes, folder, features")
    p.add_argument("--data-dir", default=None, help="folder (or file) the dataset is read from")
    p.add_argument("--image-encoder", default=None, help="image encoder for datasets with raw images (e.g. hog_color)")
    p.add_argument("--text-encoder", default=None, help="text encoder for datasets with raw captions (e.g. tfidf)")


def load_from_args(args):
    """The dataset named on the command line. Its own content is fixed; --seed varies training only."""
    from .data import load_dataset

    opts = {}
    if args.data_dir is not None:
        opts["data_dir"] = args.data_dir
    for name in ("image_encoder", "text_encoder"):
        if getattr(args, name, None):
            opts[name] = getattr(args, name)
    return load_dataset(args.dataset, **opts)


def cmd_train(args) -> int:
    from tqdm import tqdm

    from .checkpoints import save_checkpoint
    from .metrics import modality_probe
    from .training import StepEvent, Trainer, evaluate

    own_flags = ("seed", "use_adversarial", "use_triplet", "use_label")
    overrides = {f.name: getattr(args, f.name) for f in fields(ACMRConfig)
                 if getattr(args, f.name, None) is not None and f.name not in own_flags}
    from .presets import preset_config

    cfg = preset_config(args.preset, **overrides, seed=args.seed, use_adversarial=not args.no_adversarial,
                        use_triplet=not args.no_triplet, use_label=not args.no_label)   # flags override the preset
    ds = load_from_args(args)
    trainer = Trainer(ds, cfg)
    bar = tqdm(total=cfg.epochs * max(1, len(trainer.train_idx) // cfg.batch_size), desc="training", unit="step",
               disable=args.quiet)

    def on_event(e):
        if isinstance(e, StepEvent):
            bar.update(1)
            if e.step == 1:
                bar.set_postfix(epoch=e.epoch, loss=f"{e.losses['total']:.3f}", d_acc=f"{e.disc_acc:.2f}")

    trainer.add_listener(on_event)
    result = trainer.run()
    if result.early_stopped:          # finished sooner than planned: let the bar end full
        bar.total = bar.n
        bar.refresh()
    bar.close()
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
    test = {"map_all": evaluate(result.model, ds, "test"), "map_at_50": evaluate(result.model, ds, "test", k=50)}
    idx = ds.indices("test")
    probe = modality_probe(result.model.embed(ds.image_features[idx], "image"),
                           result.model.embed(ds.text_features[idx], "text"), seed=cfg.seed)
    metrics = {
        "dataset": ds.info.get("dataset", ds.name),
        "protocol": "cosine similarity; test items of one modality query all test items of the other",
        "test": {p: {d: v[d] for d in ("img2txt", "txt2img", "avg")} for p, v in test.items()},
        "validation_best": result.best_val, "best_epoch": result.best_epoch,
        "modality_probe": probe, "train_seconds": result.train_seconds, "epochs": result.epochs_run,
        "early_stopped": result.early_stopped,
        "config": cfg.to_dict(), "error": result.error,
    }
    out = Path(args.out)
    save_checkpoint(out, result.model, cfg, ds.class_names, dataset_info=ds.info, encoders=ds.encoders,
                    extra={"metrics": metrics, "history": result.history})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if not args.quiet:
        print(_table(test, f"test split of {ds.name}, best validation epoch {result.best_epoch}"))
        print(f"modality probe (balanced accuracy, 0.5 = invariant): {probe:.3f}")
        early = f" (stopped early: no validation gain for {cfg.patience} epochs)" if result.early_stopped else ""
        print(f"trained {result.epochs_run} epochs{early} in {result.train_seconds:.1f} s; "
              f"checkpoint and metrics.json in {out}")
    return 1 if result.error else 0


def _table(scores: dict, title: str) -> str:
    lines = [title, f"{'protocol':<22}{'Img2Txt':>9}{'Txt2Img':>9}{'Avg':>9}"]
    names = {"map_all": "mAP@all (cosine)", "map_at_50": "mAP@50 (cosine)"}
    for key, s in scores.items():
        lines.append(f"{names.get(key, key):<22}{s['img2txt']:>9.3f}{s['txt2img']:>9.3f}{s['avg']:>9.3f}")
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    from .checkpoints import check_fits, load_checkpoint
    from .training import evaluate

    ckpt = load_checkpoint(args.checkpoint)
    info = ckpt.meta.get("dataset", {})
    if args.dataset is None and args.data_dir is None and info.get("dataset"):
        from .data import load_dataset

        ds = load_dataset(info["dataset"], **info.get("options", {}))   # the data it was trained on
    else:
        args.dataset = args.dataset or info.get("dataset", "shapes")
        ds = load_from_args(args)
    check_fits(ckpt, ds.image_features.shape[1], ds.text_features.shape[1], ds.num_classes)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m acmr_core",
                                 description="Train and evaluate ACMR (Adversarial Cross-Modal Retrieval).")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model, save a checkpoint and metrics.json")
    _dataset_args(t)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="output folder for the checkpoint and metrics.json")
    t.add_argument("--no-adversarial", action="store_true", help="ablation: no modality classifier / L_adv")
    t.add_argument("--no-triplet", action="store_true", help="ablation: no triplet loss L_imi")
    t.add_argument("--no-label", action="store_true", help="ablation: no label loss L_imd")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--preset", choices=["demo", "paper"], default=None,
                   help="start from a named setting (acmr_core/presets.py); flags given explicitly override it")
    _add_config_args(t)
    e = sub.add_parser("evaluate", help="print test mAP of a checkpoint in the paper's table form")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--dataset", default=None, help="default: the dataset the checkpoint was trained on")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--image-encoder", default=None)
    e.add_argument("--text-encoder", default=None)
    e.add_argument("--metric", choices=["cosine", "l2"], default="cosine")
    e.add_argument("--protocol", choices=["map-all", "acmr-demo"], default="map-all",
                   help="map-all (default): mAP@all and mAP@50 over every test item; acmr-demo: the official ACMR "
                        "demo's scoring (first 640 test pairs, L2 distance, mAP@50), for the paper's table")
    args = ap.parse_args(argv)
    from .checkpoints import CheckpointError
    from .data import DataError
    from .encoders import EncoderError

    try:
        return cmd_train(args) if args.command == "train" else cmd_evaluate(args)
    except (ConfigError, DataError, CheckpointError, EncoderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
