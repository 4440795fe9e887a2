"""`folder`: bring your own images and captions.

A folder with image files and one CSV file, with a header row naming the columns:

    image,caption,label,split
    photos/cat1.jpg,A cat asleep on a sofa,cat,train
    photos/dog7.png,"A dog, running",dog,test

  image    path of the image, relative to the folder (or absolute)        (also accepted: path, file)
  caption  the text paired with the image                                 (also accepted: text)
  label    the class, any string                                          (also accepted: class)
  split    optional: train / val / test. Without this column, a stratified 20% of each class
           (deterministic under `seed`) becomes the test split.

Every row is checked before anything is encoded; all bad rows (missing or unreadable image, empty
caption or label, unknown split) are reported together in one DataError, with their row numbers
(row 1 = the first row after the header). Features are cached (see acmr_core/cache.py), keyed by the
CSV content, each image file's size and modification time, and the encoders.

    load_dataset("folder", data_dir="my_data")   # encoders: the best installed offline ones (below)
    load_dataset("folder", data_dir="my_data", image_encoder="hog_color", text_encoder="tfidf")

Without `image_encoder` / `text_encoder`, photos are encoded with `efficientnet_lite0` (ImageNet-pretrained,
when its weights package is installed; else `hog_color`) and captions with `tfidf`, whose analyzer `auto`
uses character n-grams for captions written without spaces (see acmr_core/encoders/tfidf.py).
"""
from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..cache import cache_key
from ..data import CrossModalDataset, DataError, register_dataset, require_dir
from ..encoders import best_offline_encoders, make_encoder
from ..features import ImageFiles, fit_and_encode, is_cached

COLUMNS = {"image": ("image", "image_path", "path", "file"), "caption": ("caption", "text"),
           "label": ("label", "class"), "split": ("split",)}
SPLIT_NAMES = ("train", "val", "test")


def find_csv(root: Path, csv_name: str | None) -> Path:
    if csv_name:
        path = (root / csv_name) if not Path(csv_name).is_absolute() else Path(csv_name)
        if not path.is_file():
            raise DataError(f"{path}: CSV file missing")
        return path
    found = sorted(root.glob("*.csv"))
    if not found:
        raise DataError(f"{root}: no CSV file (expected columns image, caption, label, optional split)")
    if len(found) > 1:
        raise DataError(f"{root}: several CSV files ({', '.join(p.name for p in found)}); choose one with csv=NAME")
    return found[0]


def read_rows(path: Path) -> tuple[list[dict], dict[str, str]]:
    """Read the CSV: (rows with 'row' numbers and fields, the column mapping actually found)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the CSV as UTF-8 text ({e})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = {(h or "").strip().lower(): h for h in (reader.fieldnames or [])}
    cols = {}
    for want, aliases in COLUMNS.items():
        found = next((header[a] for a in aliases if a in header), None)
        if found is not None:
            cols[want] = found
        elif want != "split":
            raise DataError(f"{path}: no '{want}' column (header: {', '.join(reader.fieldnames or []) or 'empty'}); "
                            f"expected columns image, caption, label and optionally split")
    rows = []
    for i, rec in enumerate(reader, 1):
        rows.append({"row": i, **{k: (rec.get(c) or "").strip() for k, c in cols.items()}})
    if not rows:
        raise DataError(f"{path}: the CSV has a header but no rows")
    return rows, cols


def check_rows(root: Path, rows: list[dict], has_split: bool, decode: bool, progress: bool = False) -> list[str]:
    """Problems, one per bad row ("row 3 (cat.png): image file missing"). `decode` also opens every image."""
    from tqdm.auto import tqdm

    problems = []
    for r in tqdm(rows, desc="checking images", unit="row", disable=not (decode and progress), leave=False):
        where = f"row {r['row']}" + (f" ({r['image']})" if r["image"] else "")
        why = []
        if not r["image"]:
            why.append("no image path")
        else:
            p = Path(r["image"]) if Path(r["image"]).is_absolute() else root / r["image"]
            r["path"] = str(p)
            if not p.is_file():
                why.append("image file missing")
            elif decode:
                try:
                    with Image.open(p) as im:
                        im.load()
                except Exception as e:
                    why.append(f"unreadable image ({type(e).__name__}: {str(e)[:80]})")
        if not r["caption"]:
            why.append("empty caption")
        if not r["label"]:
            why.append("empty label")
        if has_split and r["split"].lower() not in SPLIT_NAMES:
            why.append(f"unknown split '{r['split']}' (use train, val or test)")
        if why:
            problems.append(f"{where}: {'; '.join(why)}")
    return problems


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """A deterministic stratified test split: round(fraction * n_c) items of each class with >= 2 items."""
    rng = np.random.default_rng(seed)
    split = np.full(len(labels), "train", dtype="<U5")
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) >= 2:
            take = min(len(members) - 1, max(1, int(round(len(members) * test_fraction))))
            split[rng.choice(members, size=take, replace=False)] = "test"
    return split


def fingerprint(csv_path: Path, rows: list[dict]) -> str:
    """What the features depend on: the CSV bytes and each image file's size and modification time."""
    h = hashlib.sha256(csv_path.read_bytes())
    for r in rows:
        st = Path(r["path"]).stat()
        h.update(f"{r['path']}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@register_dataset("folder")
def load_folder(data_dir=None, image_encoder: str | None = None, text_encoder: str | None = None, csv_name: str | None = None,
                test_fraction: float = 0.2, seed: int = 0, cache_dir=None, progress: bool = True,
                image_params: dict | None = None, text_params: dict | None = None, **options) -> CrossModalDataset:
    """Load a folder of images + a CSV of captions and labels, encoded with any registered encoders."""
    if options:
        raise DataError(f"dataset 'folder' has no option(s) {', '.join(sorted(options))}; its options are data_dir, "
                        "image_encoder, text_encoder, csv_name, test_fraction, seed, cache_dir, progress, "
                        "image_params, text_params")
    root = require_dir(data_dir, "folder")
    best = best_offline_encoders()
    image_encoder, text_encoder = image_encoder or best["image"], text_encoder or best["text"]
    csv_path = find_csv(root, csv_name)
    rows, cols = read_rows(csv_path)
    has_split = "split" in cols
    img_enc = make_encoder(image_encoder, **(image_params or {}))
    txt_enc = make_encoder(text_encoder, **(text_params or {}))
    if img_enc.modality != "image" or txt_enc.modality != "text":
        raise DataError(f"folder: '{image_encoder}' must be an image encoder and '{text_encoder}' a text encoder")

    # Cheap checks first (files exist, fields filled). Then, unless everything is cached, open every
    # image too, so that all bad rows are reported at once, before a long encoding starts.
    problems = check_rows(root, rows, has_split, decode=False)
    key = None
    if not problems:
        key = cache_key({"dataset": "folder", "root": str(root.resolve()), "files": fingerprint(csv_path, rows),
                         "test_fraction": None if has_split else float(test_fraction), "seed": int(seed)})
    if problems or not (is_cached(img_enc, key, cache_dir) and is_cached(txt_enc, key, cache_dir)):
        problems = check_rows(root, rows, has_split, decode=True, progress=progress)
    if problems:
        shown = "\n  ".join(problems[:50]) + (f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else "")
        raise DataError(f"{csv_path}: {len(problems)} bad row(s) of {len(rows)}:\n  {shown}")

    class_names = sorted({r["label"] for r in rows})
    labels = np.array([class_names.index(r["label"]) for r in rows], dtype=np.int64)
    split = (np.array([r["split"].lower() for r in rows], dtype="<U5") if has_split
             else stratified_split(labels, float(test_fraction), int(seed)))
    if not (split == "train").any() or not (split == "test").any():
        raise DataError(f"{csv_path}: need at least one 'train' and one 'test' row "
                        f"(have {int((split == 'train').sum())} train, {int((split == 'test').sum())} test)")
    images, captions = ImageFiles([r["path"] for r in rows]), [r["caption"] for r in rows]
    train = np.flatnonzero(split == "train")

    def name_of(i: int) -> str:
        return f"row {rows[i]['row']} ({rows[i]['image']})"

    v, img_enc = fit_and_encode(img_enc, images, train, key, cache_dir, progress, name_of)
    t, txt_enc = fit_and_encode(txt_enc, captions, train, key, cache_dir, progress, name_of)
    return CrossModalDataset(
        name=root.name, image_features=v, text_features=t, labels=labels, class_names=class_names, split=split,
        images=images, captions=captions, encoders={"image": img_enc, "text": txt_enc},
        info={"dataset": "folder", "params": {"data_dir": str(root.resolve()), "csv": csv_path.name,
                                              "split_column": has_split, "test_fraction": float(test_fraction),
                                              "seed": int(seed)},
              "image_encoder": img_enc.identity(), "text_encoder": txt_enc.identity(),
              # the keyword arguments that rebuild exactly this dataset: load_dataset("folder", **options)
              "options": {"data_dir": str(root.resolve()), "image_encoder": image_encoder, "text_encoder": text_encoder,
                          "csv_name": csv_path.name, "test_fraction": float(test_fraction), "seed": int(seed),
                          "image_params": dict(image_params or {}), "text_params": dict(text_params or {})}},
    )
