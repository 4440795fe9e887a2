"""What leaves the app as files: a run's numbers as CSV, and a split's common-space embeddings.

`history_csv` (one row per epoch) and `steps_csv` (one row per training step) are a run's curves.
The embeddings: a `.npz` for your own analysis, or the two TSV files that
TensorFlow's Embedding Projector (projector.tensorflow.org) loads ("Load" → vectors, then metadata).

`split_embeddings(model, dataset, split)` embeds the split's aligned pairs in dataset order;
`write_npz` writes arrays `image`, `text` (row i of each is pair i) and `labels`;
`write_projector_tsv` writes one row per point (the images first, then the texts) and a metadata table
with the columns modality, class and caption, so the Projector can colour the points by modality or class.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


def split_embeddings(model, dataset, split: str, config=None) -> dict:
    """{"image": (n, m), "text": (n, m), "labels": (n,) or (n, c), "captions": list[str] | None} of `split`.

    With the run's `config`, "val" is the validation part that run carved from the training split (and "train"
    the rest), as the trainer saw them; without it, the dataset's own split."""
    from .data import training_split

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    assignment = training_split(dataset, config.val_fraction, config.seed) if config is not None else dataset.split
    idx = np.flatnonzero(assignment == split)
    if not len(idx):
        raise ValueError(f"the dataset has no '{split}' pairs")
    caps = getattr(dataset, "captions", None)
    return {"image": model.embed(dataset.image_features[idx], "image"),
            "text": model.embed(dataset.text_features[idx], "text"),
            "labels": np.asarray(dataset.labels)[idx],
            "captions": [str(caps[i]) for i in idx] if caps is not None else None}


def write_npz(emb: dict, path) -> Path:
    """Arrays image, text (aligned pairs) and labels, compressed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:          # a file object: numpy would otherwise append ".npz" to other names
        np.savez_compressed(f, image=np.asarray(emb["image"], np.float32), text=np.asarray(emb["text"], np.float32),
                            labels=np.asarray(emb["labels"]))
    return path


def _cell(s) -> str:
    """One TSV cell: no tabs or line breaks inside."""
    return " ".join(str(s).split())


def class_text(label, class_names) -> str:
    """A label as words: its class name, or the names joined by '|' for a multi-hot label."""
    lab = np.asarray(label)
    if lab.ndim == 0:
        i = int(lab)
        return class_names[i] if 0 <= i < len(class_names) else str(i)
    return "|".join(class_names[j] if j < len(class_names) else str(j) for j in np.flatnonzero(lab)) or "none"


def write_projector_tsv(emb: dict, folder, class_names) -> tuple[Path, Path]:
    """vectors.tsv (one point per row, tab-separated, no header) and metadata.tsv (header row, then
    modality, class and caption per point, in the same order); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vec_path, meta_path = folder / "vectors.tsv", folder / "metadata.tsv"
    img, txt = np.asarray(emb["image"], np.float32), np.asarray(emb["text"], np.float32)
    labels = np.asarray(emb["labels"])
    caps = emb.get("captions")
    with open(vec_path, "w", encoding="utf-8", newline="\n") as f:
        for block in (img, txt):
            for row in block:
                f.write("\t".join(f"{x:.6g}" for x in row) + "\n")
    with open(meta_path, "w", encoding="utf-8", newline="\n") as f:
        f.write("modality\tclass\tcaption\n")
        for modality in ("image", "text"):
            for i in range(len(labels)):
                cap = _cell(caps[i]) if caps is not None else ""
                f.write(f"{modality}\t{_cell(class_text(labels[i], class_names))}\t{cap}\n")
    return vec_path, meta_path


def history_csv(history: list[dict]) -> str:
    """The epoch history (epoch 0 = before training), every column any row has."""
    cols: list[str] = []
    for r in history:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in history:
        w.writerow([_fmt(r.get(c)) for c in cols])
    return buf.getvalue()


def steps_csv(steps: dict) -> str:
    """The step series (name -> array of equal length), one row per step."""
    cols = list(steps)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for row in zip(*(steps[c] for c in cols)):
        w.writerow([_fmt(x) for x in row])
    return buf.getvalue()


def _fmt(x):
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if x != x else f"{x:.6g}"
    if isinstance(x, np.floating):
        return "" if not np.isfinite(x) else f"{float(x):.6g}"
    return x
