"""Bring your own features: a `.npz` or MATLAB `.mat` file as research code ships it, no converter needed.

Recognised layouts (acmr_core/datasets/feature_layouts.py has every spelling):

  split arrays     image_train (n_tr, d_v), text_train (n_tr, d_t), label_train, image_test, text_test,
                   label_test [, image_val, text_val, label_val]; also I_tr / T_tr / L_tr, train_img /
                   train_txt / train_lab, image_train / tag_train, X_img_train, ...
  views + indices  two views of all n items, their labels and the indices of the training and test items
                   (optionally validation), at top level or inside a MATLAB struct: X1 (d_v x n), X2 (d_t x n),
                   Y (c x n one-hot), split.ind_train, split.ind_test; also view1/view2, img/txt, gnd, train_idx...

In both: features may be stored items x dims or dims x items (decided by matching the number of labels);
labels may be class indices (0- or 1-based: 1..c from MATLAB is shifted to 0..c-1), one-hot rows or columns,
or multi-hot (multi-label data); index arrays may be 0- or 1-based (1-based in .mat files unless a 0 occurs,
and whenever the largest index equals n) or boolean masks. Optional class names: a string array called
class_names / categories / names. Nothing is ever unpickled or executed.

Where the names are not recognised, `features_map` says which array is which (`--features-map` on the
command line; a dataset option in the dashboard):

    load_dataset("features", path="data.mat",
                 features_map="image=X1,text=X2,labels=Y,train=split.ind_train,test=split.ind_test")
    load_dataset("features", path="f.npz", features_map="image_train=a,text_train=b,label_train=c,"
                 "image_test=d,text_test=e,label_test=f")

A file it cannot read is refused with one line listing its arrays (names, dtypes, shapes) and the
nearest layout it knows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import CrossModalDataset, DataError, register_dataset
from .feature_layouts import describe, find_layout, parse_map, read_arrays

REQUIRED = ["image_train", "text_train", "label_train", "image_test", "text_test", "label_test"]


def read_mat(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """Read named arrays from a MATLAB v5 file (v7.3/HDF5 files are refused with a clear message)."""
    import scipy.io

    if not path.is_file():
        raise DataError(f"{path}: file missing")
    try:
        mat = scipy.io.loadmat(str(path), variable_names=names)
    except NotImplementedError:
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save with -v7 or use .npz") from None
    except Exception as e:  # scipy raises several types for corrupt files
        raise DataError(f"{path}: not a readable MATLAB file ({e})") from None
    missing = [n for n in names if n not in mat]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}")
    return {n: np.asarray(mat[n]) for n in names}


# --- labels, orientation, indices ------------------------------------------------------------------------


def _labels(y: np.ndarray, n: int | None, where: str) -> np.ndarray:
    """Labels of n items as given (indices, or multi-hot rows), in items-first order."""
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim == 2:
        if n is not None and y.shape[0] != n and y.shape[1] == n:
            y = y.T
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"{where}: a 2-D label array must be one-hot or multi-hot (0/1), found other values")
        y = y.astype(np.int64)
        if (y.sum(1) == 1).all():  # one-hot: class indices
            return y.argmax(1)
        return y
    if y.ndim != 1:
        raise DataError(f"{where}: labels must be a vector or a one-hot matrix, have shape {y.shape}")
    if y.dtype.kind not in "biuf" or not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
        raise DataError(f"{where}: labels must be whole numbers")
    return y.astype(np.int64)


def _items_first(x: np.ndarray, n: int, where: str) -> np.ndarray:
    """Features as (n, d): transposed if stored dims x items."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{where}: features must be 2-D (items x dims or dims x items), have shape {x.shape}")
    if x.shape[0] == n:
        return x.astype(np.float64)
    if x.shape[1] == n:
        return x.T.astype(np.float64)
    raise DataError(f"{where}: shape {x.shape} has no axis of {n} items (the number of labels)")


def _n_items(y: np.ndarray, views: list[np.ndarray]) -> int:
    """How many items: the labels' length, or for a 2-D label matrix the axis that the views share."""
    y = np.asarray(y)
    if y.ndim == 1 or (y.ndim == 2 and 1 in y.shape):
        return int(y.size)
    shared = {s for s in y.shape if all(s in v.shape for v in views)}
    if len(shared) == 1:
        return shared.pop()
    return y.shape[0] if y.shape[0] in shared or not shared else y.shape[1]


def _shift_classes(labels: np.ndarray, n_names: int | None) -> tuple[np.ndarray, str | None]:
    """1-based class indices (MATLAB's 1..c) -> 0..c-1."""
    if labels.ndim == 1 and labels.min() >= 1 and (n_names is None or labels.max() == n_names):
        return labels - 1, "class labels are 1-based; shifted to 0-based"
    return labels, None


def _indices(a: np.ndarray, n: int, one_based_default: bool, where: str) -> tuple[np.ndarray, bool]:
    """Index array or boolean mask -> 0-based item indices; also whether it was read as 1-based."""
    a = np.asarray(a).reshape(-1)
    if a.dtype == bool or (len(a) == n > 2 and a.dtype.kind in "biuf" and np.isin(a, (0, 1)).all()):
        return np.flatnonzero(a.astype(bool)), False  # a mask (an index array of n items cannot be all 0s and 1s)
    if a.dtype.kind not in "biuf" or not np.all(a == np.round(a)):
        raise DataError(f"{where}: index array must hold whole numbers")
    a = a.astype(np.int64)
    if len(a) == 0:
        raise DataError(f"{where}: index array is empty")
    one_based = a.max() == n or (a.min() >= 1 and one_based_default)
    if one_based:
        a = a - 1
    if a.min() < 0 or a.max() >= n:
        raise DataError(f"{where}: indices {int(a.min())}..{int(a.max())} fall outside the {n} items")
    if len(np.unique(a)) != len(a):
        raise DataError(f"{where}: index array repeats items")
    return a, one_based


# --- the two layouts -------------------------------------------------------------------------------------


def _from_splits(arrays: dict, roles: dict, src: str) -> tuple[dict, list[str]]:
    parts, notes = {}, []
    for s in ("train", "val", "test"):
        if f"image_{s}" not in roles:
            continue
        for kind in ("image", "text", "label"):
            if f"{kind}_{s}" not in roles:
                raise DataError(f"{src}: '{kind}_{s}' is missing although other '{s}' arrays are present")
        raw_y = arrays[roles[f"label_{s}"]]
        views = [arrays[roles[f"image_{s}"]], arrays[roles[f"text_{s}"]]]
        n = _n_items(raw_y, views)
        y = _labels(raw_y, n, f"{src}: {roles[f'label_{s}']}")
        if any(v.ndim == 2 and len(y) not in v.shape for v in views):
            raise DataError(f"{src}: row counts disagree in split '{s}': image {views[0].shape}, text {views[1].shape}, "
                            f"labels {len(y)}")
        parts[s] = (_items_first(views[0], len(y), f"{src}: {roles[f'image_{s}']}"),
                    _items_first(views[1], len(y), f"{src}: {roles[f'text_{s}']}"), y)
        if parts[s][0].shape[0] != views[0].shape[0]:
            notes.append(f"{roles[f'image_{s}']} and {roles[f'text_{s}']} are stored dims x items; transposed")
    return parts, notes


def _from_views(arrays: dict, roles: dict, src: str, one_based_default: bool) -> tuple[dict, list[str]]:
    views = [arrays[roles["image"]], arrays[roles["text"]]]
    raw_y = arrays[roles["labels"]]
    n = _n_items(raw_y, views)
    y = _labels(raw_y, n, f"{src}: {roles['labels']}")
    v = _items_first(views[0], len(y), f"{src}: {roles['image']}")
    t = _items_first(views[1], len(y), f"{src}: {roles['text']}")
    notes = [f"{roles['image']} / {roles['text']} are stored dims x items; transposed"] if v.shape[0] != views[0].shape[0] else []
    parts, used = {}, np.zeros(len(y), bool)
    for s in ("train", "val", "test"):
        if s not in roles:
            continue
        idx, one_based = _indices(arrays[roles[s]], len(y), one_based_default, f"{src}: {roles[s]}")
        if used[idx].any():
            raise DataError(f"{src}: {roles[s]} shares items with another split's indices")
        used[idx] = True
        if one_based:
            notes.append(f"{roles[s]} is 1-based; shifted")
        parts[s] = (v[idx], t[idx], y[idx])
    if not used.all():
        notes.append(f"{int((~used).sum())} items are in no split and were left out")
    return parts, notes


@register_dataset("features")
def load_features(path=None, data_dir=None, features_map=None, **options) -> CrossModalDataset:
    """Load a bring-your-own-features file (.npz or .mat) in any layout above (or one named by `features_map`)."""
    if options:
        raise DataError(f"dataset 'features' has no option(s) {', '.join(sorted(options))}; its options are path "
                        f"(or data_dir) and features_map")
    path = Path(path or data_dir or "")
    if not str(path) or path.is_dir():
        raise DataError(f"dataset 'features' needs a .npz or .mat file (got {str(path) or 'nothing'})")
    arrays, skipped = read_arrays(path)
    src = str(path)
    if features_map:
        layout, roles = parse_map(features_map, arrays, src)
    else:
        layout, roles = find_layout(arrays, skipped, src)
    if layout == "split":
        parts, notes = _from_splits(arrays, roles, src)
    else:
        parts, notes = _from_views(arrays, roles, src, one_based_default=path.suffix.lower() == ".mat")
    dims = {(p[0].shape[1], p[1].shape[1]) for p in parts.values()}
    if len(dims) != 1:
        raise DataError(f"{src}: feature dimensions differ between splits: {sorted(dims)}")
    ys = [p[2] for p in parts.values()]
    if len({y.ndim for y in ys}) != 1:
        raise DataError(f"{src}: some splits have class indices and others multi-hot labels")
    labels = np.concatenate(ys)
    names = None
    if "class_names" in roles:
        names = [str(x).strip() for x in np.asarray(arrays[roles["class_names"]]).reshape(-1)]
    if labels.ndim == 1:
        labels, note = _shift_classes(labels, len(names) if names else None)
        if note:
            notes.append(note)
        if labels.min() < 0:
            raise DataError(f"{src}: labels must be class indices >= 0, found {int(labels.min())}")
        c = int(labels.max()) + 1
    else:
        c = labels.shape[1]
    class_names = names or [f"class_{i}" for i in range(max(c, 2))]
    return CrossModalDataset(
        name=path.stem,
        image_features=np.concatenate([p[0] for p in parts.values()]),
        text_features=np.concatenate([p[1] for p in parts.values()]),
        labels=labels,
        class_names=class_names,
        split=np.concatenate([[s] * len(p[2]) for s, p in parts.items()]),
        info={"dataset": "features", "source": src, "layout": layout, "arrays": roles, "notes": notes,
              "contents": describe(arrays, skipped),
              "options": {"path": str(path.resolve()), **({"features_map": features_map} if features_map else {})}},
    )
