"""Cross-modal datasets: paired image features v_i, text features t_i and labels y_i.

A dataset is n pairs o_i = (v_i, t_i) with a label y_i (an integer class, or a multi-hot row for
multi-label data), each assigned to one split: "train", "val" or "test". The validation split is
carved from the training split (`carve_validation`), so that epochs and hyperparameters are chosen
without ever looking at test.

Datasets are a registry: a module in `acmr_core/datasets/` decorates a loader with
`@register_dataset("name")`, and `load_dataset("name", **options)` finds it.
"""
from __future__ import annotations

import importlib
import pkgutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

SPLITS = ("train", "val", "test")


MIN_SPLIT_PAIRS = 3   # train, validation and test need at least this many pairs (ranking, the modality probe)


class DataError(ValueError):
    """A data file or folder is unusable; the message names the file and the problem."""


class DataWarning(UserWarning):
    """The data can be used, but probably not as meant (e.g. constant features, classes without items);
    the command line prints it as one 'warning:' line."""


@dataclass
class CrossModalDataset:
    """Paired features, labels and splits; raw items are optional.

    image_features: (n, d_v) float32, the V of the paper (one row per item).
    text_features:  (n, d_t) float32, the T of the paper.
    labels:         (n,) int64 class indices, or (n, c) multi-hot {0,1} for multi-label data.
    split:          (n,) array of "train" / "val" / "test".
    images:         optional raw images, anything indexable giving a PIL image (for display and search).
    captions:       optional raw texts, one per item.
    info:           identity of the dataset and encoders (JSON-safe), recorded in checkpoints;
                    info["source"] (a file or folder) names the data in error messages.
    attributes:     optional per-item nuisance attributes, name -> array of n (not in checkpoints).
    """

    name: str
    image_features: np.ndarray
    text_features: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    split: np.ndarray
    images: Any = None
    captions: Sequence[str] | None = None
    info: dict = field(default_factory=dict)
    encoders: dict = field(default_factory=dict)  # {"image": Encoder, "text": Encoder} when raw items exist
    attributes: dict = field(default_factory=dict)  # optional per-item arrays (n,), e.g. shapes' "colour", for analysis

    def __post_init__(self) -> None:
        source = self.info.get("source", self.name)
        for what in ("image_features", "text_features"):
            try:
                setattr(self, what, np.ascontiguousarray(getattr(self, what), dtype=np.float32))
            except (ValueError, TypeError) as e:
                raise DataError(f"{source}: the {what.replace('_', ' ')} must be numbers only ({e}); "
                                "save plain numeric arrays") from None
        self.labels = np.asarray(self.labels)
        self.split = np.asarray(self.split).astype(str)
        validate(self, source=self.info.get("source", self.name))

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def n(self) -> int:
        return len(self.labels)

    def indices(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def validate(ds: CrossModalDataset, source: str) -> None:
    """Raise DataError naming `source` if the arrays disagree, hold NaNs or labels are out of range."""
    n_v, n_t, n_y, n_s = len(ds.image_features), len(ds.text_features), len(ds.labels), len(ds.split)
    if ds.image_features.ndim != 2 or ds.text_features.ndim != 2:
        raise DataError(f"{source}: image and text features must be 2-D arrays (items x dims), got shapes "
                        f"{ds.image_features.shape} and {ds.text_features.shape}")
    if not n_v == n_t == n_y == n_s:
        raise DataError(f"{source}: row counts disagree: {n_v} image rows, {n_t} text rows, {n_y} labels, {n_s} split entries")
    if n_v == 0:
        raise DataError(f"{source}: the dataset is empty")
    for what, arr in (("image features", ds.image_features), ("text features", ds.text_features)):
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DataError(f"{source}: {what} contain {int(bad.sum())} NaN or infinite values (first at row {row})")
    c = len(ds.class_names)
    if c < 2:
        raise DataError(f"{source}: need at least 2 classes, got {c}")
    if ds.labels.ndim == 1:
        if not np.issubdtype(ds.labels.dtype, np.integer):
            raise DataError(f"{source}: labels must be integers, got {ds.labels.dtype}")
        if ds.labels.min() < 0 or ds.labels.max() >= c:
            raise DataError(f"{source}: labels must lie in 0..{c - 1} for {c} classes, "
                            f"found {ds.labels.min()}..{ds.labels.max()}")
    elif ds.labels.ndim == 2:
        if ds.labels.shape[1] != c:
            raise DataError(f"{source}: multi-hot labels have {ds.labels.shape[1]} columns for {c} classes")
        if not np.isin(ds.labels, (0, 1)).all():
            raise DataError(f"{source}: multi-hot labels must be 0 or 1")
    else:
        raise DataError(f"{source}: labels must be 1-D class indices or a 2-D multi-hot matrix")
    unknown = set(np.unique(ds.split)) - set(SPLITS)
    if unknown:
        raise DataError(f"{source}: unknown split names {sorted(unknown)}; use {list(SPLITS)}")
    for s in ("train", "test"):
        if not (ds.split == s).any():
            raise DataError(f"{source}: the '{s}' split is empty")
    if ds.labels.ndim == 1:
        _check_label_use(ds, source)
    for what, arr in (("image features", ds.image_features), ("text features", ds.text_features)):
        if len(arr) > 1:
            const = np.ptp(arr, axis=0) == 0
            if const.all():  # refused by check_split_sizes before training
                warnings.warn(f"{source}: the {what} are the same for every item", DataWarning, stacklevel=3)
            elif const.mean() >= 0.5:
                warnings.warn(f"{source}: {int(const.sum())} of the {arr.shape[1]} {what} dimensions are constant "
                              f"(e.g. dimension {int(np.flatnonzero(const)[0])}) and carry no information",
                              DataWarning, stacklevel=3)


def _ranges(values) -> str:
    """'0..2, 99..101' for the sorted unique integers `values`."""
    values = [int(v) for v in values]
    out, start = [], values[0]
    for a, b in zip(values, values[1:] + [None]):
        if b != a + 1:
            out.append(str(start) if start == a else f"{start}..{a}")
            start = b
    return ", ".join(out[:6]) + (", ..." if len(out) > 6 else "")


def _check_label_use(ds: CrossModalDataset, source: str) -> None:
    """Refuse splits labelled with disjoint classes; warn about classes without items (labels are not remapped:
    renumbering them silently would hide a mistake in the file)."""
    c = len(ds.class_names)
    train = np.unique(ds.labels[ds.split == "train"])
    test = np.unique(ds.labels[ds.split == "test"])
    if not np.intersect1d(train, test).size:
        raise DataError(f"{source}: the training labels ({_ranges(train)}) and the test labels ({_ranges(test)}) "
                        "have no class in common, so nothing learnt can be measured. Labels must be class indices "
                        f"0..{c - 1}, numbered the same way in every split")
    used = np.unique(ds.labels)
    if len(used) < c:
        warnings.warn(f"{source}: {c - len(used)} of the {c} classes have no items (labels used: {_ranges(used)}); "
                      "if the labels are codes rather than indices, renumber them 0..k-1", DataWarning, stacklevel=4)
    unseen = np.setdiff1d(test, train)
    if unseen.size:
        warnings.warn(f"{source}: {unseen.size} test class(es) ({_ranges(unseen)}) never occur in training",
                      DataWarning, stacklevel=4)


def check_split_sizes(ds: CrossModalDataset, split: np.ndarray | None = None, minimum: int = MIN_SPLIT_PAIRS) -> None:
    """Before training: every split that is used needs at least `minimum` pairs (to rank, and for the modality
    probe, which needs several items of each modality), and neither modality may be constant over the training
    split (nothing could be learnt). `split` is the trainer's own split (default: the dataset's). Raises
    DataError naming the data and the problem."""
    source = ds.info.get("source", ds.name)
    split = ds.split if split is None else split
    train = split == "train"
    for what, arr in (("image features", ds.image_features), ("text features", ds.text_features)):
        if train.sum() > 1 and (np.ptp(arr[train], axis=0) == 0).all():
            raise DataError(f"{source}: the training {what} are the same for every item, so nothing can be learnt "
                            "from them; check that the right arrays were saved")
    for s in SPLITS:
        n = int((split == s).sum())
        if s == "val" and n == 0:
            continue  # no validation split: the training split stands in
        if n < minimum:
            hint = ("add pairs to it, or remove it so one is carved from the training split" if s == "val"
                    else "add pairs to it")
            raise DataError(f"{source}: the '{s}' split has {n} pair{'s' if n != 1 else ''}, at least {minimum} are "
                            f"needed to train and measure a model; {hint}")


def training_split(ds: CrossModalDataset, val_fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """The split a training run uses: the dataset's own, with a validation part carved from the training split
    when it has none (deterministic under `seed`). The dataset itself is left as it is."""
    if (ds.split == "val").any():
        return ds.split
    return carve_validation(ds.split, ds.labels, val_fraction, seed)


def carve_validation(split: np.ndarray, labels: np.ndarray, fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """Move a stratified `fraction` of the training items into a "val" split (deterministic under `seed`).

    The test split is never touched. Does nothing if a validation split already exists.
    """
    split = np.asarray(split).astype("<U5").copy()
    if (split == "val").any() or fraction <= 0:
        return split
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(split == "train")
    strata = labels[train] if labels.ndim == 1 else labels[train].argmax(1)
    for c in np.unique(strata):
        members = train[strata == c]
        take = int(round(len(members) * fraction))
        if take:
            split[rng.choice(members, size=take, replace=False)] = "val"
    n_val = int((split == "val").sum())
    rest = np.flatnonzero(split == "train")
    if 0 < n_val < MIN_SPLIT_PAIRS and len(rest) - (MIN_SPLIT_PAIRS - n_val) >= MIN_SPLIT_PAIRS:
        split[rng.choice(rest, size=MIN_SPLIT_PAIRS - n_val, replace=False)] = "val"  # too few to rank: top up
    elif 0 < n_val < MIN_SPLIT_PAIRS:
        split[split == "val"] = "train"  # too small to carve: the training split stands in for validation
    return split


# --- the registry -------------------------------------------------------------------------------

DATASETS: dict[str, Callable[..., CrossModalDataset]] = {}


def register_dataset(name: str):
    """Decorator: make a loader available as `load_dataset(name, **options)`."""

    def wrap(fn):
        DATASETS[name] = fn
        return fn

    return wrap


def _discover() -> None:
    from . import datasets as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")


def available_datasets() -> list[str]:
    _discover()
    return sorted(DATASETS)


def load_dataset(name: str, **options) -> CrossModalDataset:
    """Load a registered dataset, e.g. `load_dataset("wikipedia", data_dir="../shared/data/wikipedia")`."""
    _discover()
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; available: {', '.join(sorted(DATASETS))}")
    try:
        return DATASETS[name](**options)
    except (ValueError, TypeError) as e:  # e.g. arrays of strings: name the file, not only numpy's complaint
        if type(e) not in (ValueError, TypeError):  # DataError, EncoderError, ConfigError, ...: already clear
            raise
        if isinstance(e, TypeError) and "keyword argument" in str(e):
            raise DataError(f"dataset '{name}': {e}; see its options with --help") from None
        where = options.get("path") or options.get("data_dir") or f"dataset '{name}'"
        raise DataError(f"{where}: cannot be read as dataset '{name}' ({str(e).splitlines()[0][:200]}); "
                        "its arrays must hold plain numbers") from None


def require_dir(data_dir: str | Path | None, dataset: str) -> Path:
    if data_dir is None:
        raise DataError(f"dataset '{dataset}' needs a data folder (--data-dir DIR)")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: no such folder (dataset '{dataset}')")
    return path
