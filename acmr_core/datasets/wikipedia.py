"""The Wikipedia benchmark (Rasiwasia et al., 2010) with the paper's shallow features.

Standard layout of the folder: `raw_features.mat` (I_tr 2173x128 SIFT BoVW, T_tr 2173x10 LDA, I_te, T_te),
`trainset_txt_img_cat.list` / `testset_txt_img_cat.list` (text id, image id, category 1-10; same row
order as the features) and `categories.list` (10 names, label order).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import CrossModalDataset, DataError, register_dataset, require_dir
from .features import read_mat


def list_pairs(path: Path, n_classes: int) -> list[tuple[int, str, str, int]]:
    """(line number, text id, image id, 0-based class) per non-empty line of a `*_txt_img_cat.list` file."""
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split("\t")
        if len(parts) != 3:
            raise DataError(f"{path}: line {i} should be 'text id<TAB>image id<TAB>category', got {line[:80]!r}")
        try:
            c = int(parts[2])
        except ValueError:
            raise DataError(f"{path}: line {i}: category {parts[2]!r} is not a whole number") from None
        if not 1 <= c <= n_classes:
            raise DataError(f"{path}: line {i}: category {c} is out of range 1..{n_classes}")
        out.append((i, parts[0].strip(), parts[1].strip(), c - 1))
    return out


def _read_list(path: Path, n_rows: int, n_classes: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: file missing (expected the Wikipedia benchmark's standard layout)")
    labels = [c for *_, c in list_pairs(path, n_classes)]
    if len(labels) != n_rows:
        raise DataError(f"{path}: {len(labels)} lines, but the feature file has {n_rows} rows for this split")
    return np.array(labels, dtype=np.int64)


@register_dataset("wikipedia")
def load_wikipedia(data_dir=None, **options) -> CrossModalDataset:
    """Load the Wikipedia benchmark from `data_dir` (train 2173 / test 693 pairs, 10 classes)."""
    if options:
        raise DataError(f"dataset 'wikipedia' ships its own features; options {sorted(options)} do not apply")
    root = require_dir(data_dir, "wikipedia")
    cats = root / "categories.list"
    if not cats.is_file():
        raise DataError(f"{cats}: file missing (expected the Wikipedia benchmark's standard layout)")
    class_names = [c.strip() for c in cats.read_text(encoding="utf-8").splitlines() if c.strip()]
    if not (root / "raw_features.mat").is_file():
        from .wikipedia_raw import has_raw_items

        if has_raw_items(root):
            raise DataError(f"{root}: no raw_features.mat, but the raw images and texts are here: "
                            f"use the dataset 'wikipedia_raw' (--dataset wikipedia_raw)")
    arrays = read_mat(root / "raw_features.mat", ["I_tr", "I_te", "T_tr", "T_te"])
    for a, b in (("I_tr", "T_tr"), ("I_te", "T_te")):
        if len(arrays[a]) != len(arrays[b]):
            raise DataError(f"{root / 'raw_features.mat'}: {a} has {len(arrays[a])} rows but {b} has {len(arrays[b])}")
    y_tr = _read_list(root / "trainset_txt_img_cat.list", len(arrays["I_tr"]), len(class_names))
    y_te = _read_list(root / "testset_txt_img_cat.list", len(arrays["I_te"]), len(class_names))
    return CrossModalDataset(
        name="wikipedia",
        image_features=np.concatenate([arrays["I_tr"], arrays["I_te"]]),
        text_features=np.concatenate([arrays["T_tr"], arrays["T_te"]]),
        labels=np.concatenate([y_tr, y_te]),
        class_names=class_names,
        split=np.array(["train"] * len(y_tr) + ["test"] * len(y_te)),
        info={"dataset": "wikipedia", "source": str(root), "options": {"data_dir": str(root.resolve())},
              "image_features": "128-d SIFT bag of visual words", "text_features": "10-d LDA topics"},
    )
