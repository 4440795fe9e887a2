"""`wikipedia_raw`: the Wikipedia benchmark (Rasiwasia et al., 2010) from its raw images and texts.

The release's folder holds, beside the lists that `wikipedia` reads,

    categories.list                       10 category names, one a line (label order)
    trainset_txt_img_cat.list             text id <TAB> image id <TAB> category 1..10, one pair a line
    testset_txt_img_cat.list              the same for the test split
    images/<category>/<image id>.jpg      the photos (any of .jpg .jpeg .png .gif .bmp; any sub-folder)
    texts/<text id>.xml  or  .txt         the article sections

Each pair is encoded with real encoders (by default the best installed offline ones: `efficientnet_lite0` for
the photos, `tfidf` for the texts), so the paper's benchmark can be searched by typed text and uploaded photos.
A text file's words are the content of its `<text>` element (or the whole file without tags); it is never
parsed as XML, so entities cannot expand and malformed files (the release has some) still read.
Every missing or unreadable file is reported at once, by list and line. Features are cached, keyed by the
lists and each file's size and modification time.

    load_dataset("wikipedia_raw", data_dir="wikipedia")
"""
from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import numpy as np

from ..cache import cache_key
from ..data import CrossModalDataset, DataError, register_dataset, require_dir
from ..encoders import best_offline_encoders, make_encoder
from ..features import ImageFiles, fit_and_encode
from .wikipedia import list_pairs

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
LISTS = {"train": "trainset_txt_img_cat.list", "test": "testset_txt_img_cat.list"}
_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def has_raw_items(root: Path) -> bool:
    """True if `root` looks like the raw release: both lists, categories.list, images/ and texts/."""
    return (all((root / n).is_file() for n in [*LISTS.values(), "categories.list"])
            and (root / "images").is_dir() and (root / "texts").is_dir())


def read_text(path: Path) -> str:
    """The words of one article section: its <text> element's content (or the file without tags), unescaped."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    m = _TEXT.search(raw)
    body = m.group(1) if m else raw
    return " ".join(html.unescape(_TAG.sub(" ", body)).split())


def _image_index(root: Path) -> dict[str, Path]:
    """image id (file name without suffix) -> path, over images/ and its sub-folders."""
    index = {}
    for p in sorted((root / "images").rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            index.setdefault(p.stem, p)
    return index


@register_dataset("wikipedia_raw")
def load_wikipedia_raw(data_dir=None, image_encoder: str | None = None, text_encoder: str | None = None,
                       cache_dir=None, progress: bool = True, image_params: dict | None = None,
                       text_params: dict | None = None, **options) -> CrossModalDataset:
    """Load the raw Wikipedia release (images + texts + the two lists) with any registered encoders."""
    if options:
        raise DataError(f"dataset 'wikipedia_raw' has no option(s) {', '.join(sorted(options))}; its options are "
                        "data_dir, image_encoder, text_encoder, cache_dir, progress, image_params, text_params")
    root = require_dir(data_dir, "wikipedia_raw")
    if not has_raw_items(root):
        raise DataError(f"{root}: not the raw Wikipedia layout: need categories.list, {LISTS['train']}, {LISTS['test']}, "
                        f"images/<category>/<image id>.jpg and texts/<text id>.xml (or .txt)")
    best = best_offline_encoders()
    image_encoder, text_encoder = image_encoder or best["image"], text_encoder or best["text"]
    class_names = [c.strip() for c in (root / "categories.list").read_text(encoding="utf-8").splitlines() if c.strip()]
    images_by_id = _image_index(root)
    rows, problems = [], []
    for split, name in LISTS.items():
        for line, text_id, image_id, label in list_pairs(root / name, len(class_names)):
            where = f"{name} line {line}"
            img = images_by_id.get(image_id)
            txt = next((p for p in (root / "texts" / f"{text_id}.xml", root / "texts" / f"{text_id}.txt") if p.is_file()), None)
            why = ([] if img else [f"no image images/*/{image_id}.jpg"]) + ([] if txt else [f"no text texts/{text_id}.xml"])
            if why:
                problems.append(f"{where}: {'; '.join(why)}")
                continue
            rows.append({"split": split, "image": img, "text": txt, "label": label, "where": where})
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise DataError(f"{root}: {len(problems)} pair(s) without their files: {shown}")
    captions = []
    for r in rows:
        text = read_text(r["text"])
        if not text:
            problems.append(f"{r['where']}: {r['text'].name} holds no words")
        captions.append(text)
    if problems:
        raise DataError(f"{root}: {len(problems)} empty text(s): {'; '.join(problems[:10])}")
    h = hashlib.sha256()
    for name in [*LISTS.values(), "categories.list"]:
        h.update((root / name).read_bytes())
    for r in rows:
        for p in (r["image"], r["text"]):
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    key = cache_key({"dataset": "wikipedia_raw", "root": str(root.resolve()), "files": h.hexdigest()[:16]})
    img_enc = make_encoder(image_encoder, **(image_params or {}))
    txt_enc = make_encoder(text_encoder, **(text_params or {}))
    if img_enc.modality != "image" or txt_enc.modality != "text":
        raise DataError(f"wikipedia_raw: '{image_encoder}' must be an image encoder and '{text_encoder}' a text encoder")
    split = np.array([r["split"] for r in rows])
    train = np.flatnonzero(split == "train")
    images = ImageFiles([r["image"] for r in rows])

    def name_of(i: int) -> str:
        return f"{rows[i]['where']} ({rows[i]['image'].name})"

    v, img_enc = fit_and_encode(img_enc, images, train, key, cache_dir, progress, name_of)
    t, txt_enc = fit_and_encode(txt_enc, captions, train, key, cache_dir, progress, name_of)
    return CrossModalDataset(
        name="wikipedia_raw", image_features=v, text_features=t, labels=np.array([r["label"] for r in rows], np.int64),
        class_names=class_names, split=split, images=images, captions=captions,
        encoders={"image": img_enc, "text": txt_enc},
        info={"dataset": "wikipedia_raw", "source": str(root),
              "image_encoder": img_enc.identity(), "text_encoder": txt_enc.identity(),
              "options": {"data_dir": str(root.resolve()), "image_encoder": image_encoder, "text_encoder": text_encoder,
                          "image_params": dict(image_params or {}), "text_params": dict(text_params or {})}},
    )
