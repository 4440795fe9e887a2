"""Bring your own features: a `.npz` or MATLAB `.mat` file with these arrays

  image_train (n_tr, d_v), text_train (n_tr, d_t), label_train (n_tr,)   -- required
  image_test  (n_te, d_v), text_test  (n_te, d_t), label_test  (n_te,)   -- required
  image_val, text_val, label_val                                          -- optional
  class_names (c,) strings                                                -- optional (default class_0..)

Labels are class indices 0..c-1, or multi-hot rows (n, c) for multi-label data. Nothing is unpickled.
Use: `load_dataset("features", path="my.npz")` or `--dataset features --data-dir my.npz`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import CrossModalDataset, DataError, register_dataset

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


def read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: file missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        raise DataError(f"{path}: holds pickled objects or is not a valid .npz ({e}); save plain numeric arrays") from None
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None


@register_dataset("features")
def load_features(path=None, data_dir=None, **options) -> CrossModalDataset:
    """Load a bring-your-own-features file (.npz or .mat) with the array names above."""
    if options:
        raise DataError(f"dataset 'features' has no options {sorted(options)}")
    path = Path(path or data_dir or "")
    if not str(path) or path.is_dir():
        raise DataError(f"dataset 'features' needs a .npz or .mat file (got {str(path) or 'nothing'})")
    if path.suffix == ".mat":
        import scipy.io

        try:
            present = {name for name, *_ in scipy.io.whosmat(str(path))}
        except Exception as e:
            raise DataError(f"{path}: not a readable MATLAB file ({e})") from None
        wanted = REQUIRED + [n for n in ("image_val", "text_val", "label_val", "class_names") if n in present]
        arrays = read_mat(path, [n for n in wanted if n in present] or REQUIRED)
    elif path.suffix == ".npz":
        arrays = read_npz(path)
    else:
        raise DataError(f"{path}: unknown file type '{path.suffix}'; use .npz or .mat")
    missing = [n for n in REQUIRED if n not in arrays]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)} (see the array names in acmr_core/datasets/features.py)")
    splits = [s for s in ("train", "val", "test") if f"image_{s}" in arrays]
    parts = {}
    for s in splits:
        for kind in ("image", "text", "label"):
            if f"{kind}_{s}" not in arrays:
                raise DataError(f"{path}: '{kind}_{s}' is missing although other '{s}' arrays are present")
        y = np.asarray(arrays[f"label_{s}"])
        if y.ndim == 2 and 1 in y.shape and not (y.shape[1] > 1 and y.shape[0] > 1):
            y = y.reshape(-1)  # MATLAB stores vectors as (n, 1) or (1, n)
        parts[s] = (np.asarray(arrays[f"image_{s}"], dtype=np.float64), np.asarray(arrays[f"text_{s}"], dtype=np.float64), y)
        for kind, arr in (("image", parts[s][0]), ("text", parts[s][1])):
            if arr.ndim != 2:
                raise DataError(f"{path}: '{kind}_{s}' must be 2-D (items x dims), has shape {arr.shape}")
        if len({len(parts[s][0]), len(parts[s][1]), len(y)}) != 1:
            raise DataError(f"{path}: row counts disagree in split '{s}': image {len(parts[s][0])}, "
                            f"text {len(parts[s][1])}, labels {len(y)}")
    dims = {(p[0].shape[1], p[1].shape[1]) for p in parts.values()}
    if len(dims) != 1:
        raise DataError(f"{path}: feature dimensions differ between splits: {sorted(dims)}")
    labels = np.concatenate([p[2] for p in parts.values()])
    if labels.ndim == 1:
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise DataError(f"{path}: labels must be whole numbers")
        labels = labels.astype(np.int64)
        c = int(labels.max()) + 1
    else:
        c = labels.shape[1]
    if "class_names" in arrays:
        class_names = [str(x).strip() for x in np.asarray(arrays["class_names"]).reshape(-1)]
    else:
        class_names = [f"class_{i}" for i in range(max(c, 2))]
    return CrossModalDataset(
        name=path.stem,
        image_features=np.concatenate([p[0] for p in parts.values()]),
        text_features=np.concatenate([p[1] for p in parts.values()]),
        labels=labels,
        class_names=class_names,
        split=np.concatenate([[s] * len(p[2]) for s, p in parts.items()]),
        info={"dataset": "features", "source": str(path), "options": {"path": str(path.resolve())}},
    )
