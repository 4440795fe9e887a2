"""Cross-modal search with a trained model: encode a query, project it into the common space, rank a gallery.

A `SearchIndex` holds the common-space embeddings of every item of a dataset; a search ranks the items of
the chosen splits (the test split by default; train may be added). A text query is ranked against
gallery images, an image query against gallery texts (cross-modal); the neighbours of the query's own
modality are offered too, to show the difference. Scores are cosine similarities in the common space S.

Query checking (empty or over-long text, unknown words, odd, corrupt or huge images, k out of range)
lives here, not in the UI: every problem raises `QueryError` with a message meant for the user.

    index = SearchIndex.from_checkpoint("checkpoints/shapes")      # model + its dataset + its encoders
    index.search_by_text("a small blue triangle in the corner", k=10).to_dict()
    index.search_by_image("star.png", k=10, splits=("test", "train"))
"""
from __future__ import annotations

import io
import json
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from .model import ACMR

MAX_TEXT_CHARS = 500           # longer queries are truncated (and the caller is told)
MAX_IMAGE_SIDE = 1024          # larger images are downscaled to this longest side
MAX_IMAGE_PIXELS = 50_000_000  # beyond this an image is refused outright
MAX_FILE_BYTES = 25_000_000    # an image file larger than this is refused before it is decoded
K_MAX = 50                     # most results one query may ask for (the Search tab's slider stops here too)


class QueryError(ValueError):
    """A query cannot be searched; the message says what was wrong and what to do."""


@dataclass
class Hit:
    rank: int
    index: int          # row in the dataset
    score: float        # cosine similarity in the common space
    label: int
    class_name: str
    caption: str | None
    modality: str       # modality of the returned item: "image" or "text"
    matches_prediction: bool
    split: str = "test"

    def to_dict(self) -> dict:
        return {"rank": self.rank, "id": self.index, "score": round(self.score, 4), "class": self.class_name,
                "label": self.label, "caption": self.caption, "modality": self.modality, "split": self.split,
                "matches_predicted_class": self.matches_prediction}


@dataclass
class SearchResult:
    query_modality: str
    predicted_class: str
    predicted_prob: float
    hits: list[Hit]             # cross-modal neighbours
    same_modality: list[Hit]    # neighbours of the query's own modality
    notes: list[str]            # e.g. "query truncated to 500 characters"
    gallery_size: int = 0
    splits: tuple = ("test",)
    seconds: float = 0.0        # server-side time: encode + project + rank
    query: str | None = None    # the (cleaned) text of a text query

    def to_dict(self) -> dict:
        return {"query_modality": self.query_modality, "query": self.query, "predicted_class": self.predicted_class,
                "predicted_probability": round(self.predicted_prob, 4), "notes": self.notes,
                "gallery": {"splits": list(self.splits), "size": self.gallery_size},
                "score": "cosine similarity in the learnt common space (1 = same direction, 0 = unrelated)",
                "seconds": round(self.seconds, 5),
                "results": [h.to_dict() for h in self.hits],
                "same_modality": [h.to_dict() for h in self.same_modality]}


# --- query checking ---------------------------------------------------------------------------------


def clean_text(text) -> tuple[str, list[str]]:
    """Strip and bound a text query; raise QueryError for an empty one."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text is not None and not isinstance(text, str):
        raise QueryError(f"The text query must be text, got {type(text).__name__} {str(text)[:40]!r}; send a few "
                         "words, e.g. 'a red star in the corner'.")
    text = " ".join((text or "").split())
    if not text:
        raise QueryError("The text query is empty. Type a few words, e.g. 'a red star in the corner'.")
    notes = []
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS].rsplit(" ", 1)[0] or text[:MAX_TEXT_CHARS]
        notes.append(f"The query was longer than {MAX_TEXT_CHARS} characters; only its first "
                     f"{len(text)} characters were searched.")
    return text, notes


def load_image(source) -> tuple[Image.Image, list[str]]:
    """Open an image from a PIL image, numpy array, path or bytes, and make it a bounded RGB image.

    Animated images give their first frame; 16-bit, grayscale, palette and RGBA images are converted
    (transparency over white); images larger than MAX_IMAGE_SIDE are downscaled; beyond MAX_IMAGE_PIXELS,
    over MAX_FILE_BYTES, or not an image at all, raise QueryError."""
    notes: list[str] = []
    if source is None:
        raise QueryError("No image was given. Upload an image, draw one, or pick an example.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(source, Image.Image):
                img = source
            elif isinstance(source, np.ndarray):
                arr = source
                if arr.size == 0 or arr.ndim not in (2, 3):
                    raise QueryError(f"The image array has shape {arr.shape}; expected height x width (x channels).")
                if arr.dtype != np.uint8:
                    arr = np.nan_to_num(arr.astype(np.float64))
                    arr = (np.clip(arr, 0, 255) if arr.max() > 1 else arr * 255).astype(np.uint8)
                img = Image.fromarray(arr)
            else:
                if isinstance(source, (str, Path)):
                    p = Path(source)
                    if not p.is_file():
                        raise QueryError("The image file is missing (it may have expired); upload it again.")
                    if p.stat().st_size > MAX_FILE_BYTES:
                        raise QueryError(f"The file is {p.stat().st_size / 1e6:.0f} MB, over the limit of "
                                         f"{MAX_FILE_BYTES // 1_000_000} MB. Use a smaller image.")
                    data = p.read_bytes()
                else:
                    data = bytes(source)
                    if len(data) > MAX_FILE_BYTES:
                        raise QueryError(f"The file is {len(data) / 1e6:.0f} MB, over the limit of "
                                         f"{MAX_FILE_BYTES // 1_000_000} MB. Use a smaller image.")
                if not data:
                    raise QueryError("The file is empty. Upload a PNG, JPEG, GIF, BMP or WebP image.")
                img = Image.open(io.BytesIO(data))
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise QueryError(f"The image is {img.width}x{img.height} pixels, over the limit of "
                                 f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels. Use a smaller image.")
            if getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) > 1:
                img.seek(0)
                img = next(ImageSequence.Iterator(img)).copy()
                notes.append("The image is animated; its first frame was used.")
            if max(img.size) > 2 * MAX_IMAGE_SIDE and getattr(img, "format", None) == "JPEG":
                img.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))  # decode a large JPEG at reduced size
            img.load()
    except QueryError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise QueryError(f"The image is too large to decode safely (over {MAX_IMAGE_PIXELS // 1_000_000} "
                         "megapixels). Use a smaller image.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError, EOFError) as e:
        what = "is not an image" if isinstance(e, UnidentifiedImageError) else f"is corrupt or truncated ({type(e).__name__})"
        raise QueryError(f"This file {what} and could not be read. "
                         "Upload a PNG, JPEG, GIF, BMP or WebP image.") from None
    if min(img.size) < 1:
        raise QueryError("The image has no pixels.")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block is not worth refusing the image for
        pass
    try:
        if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
            a = np.asarray(img, dtype=np.float64)
            lo, hi = float(a.min()), float(a.max())
            img = Image.fromarray(((a - lo) / (hi - lo or 1) * 255).astype(np.uint8))
            notes.append("A 16-bit or floating-point image was scaled to 8 bits.")
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            if rgba.getchannel("A").getextrema()[0] < 255:
                notes.append("Transparent parts of the image were filled with white.")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(bg, rgba)
        elif img.mode in ("L", "1"):
            notes.append("A grayscale image was converted to colour (RGB).")
        img = img.convert("RGB")
    except (ValueError, OSError) as e:
        raise QueryError(f"The image's colour mode ({img.mode}) cannot be converted to RGB ({e}).") from None
    if max(img.size) > MAX_IMAGE_SIDE:
        w, h = img.size
        img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        notes.append(f"The image ({w}x{h}) was downscaled to {img.width}x{img.height}.")
    return img, notes


def check_k(k, n: int, k_max: int = K_MAX) -> int:
    """The one parser of k (how many results) for every search: the UI, both API endpoints, direct calls.

    Accepted: a whole number (an int, a float with no fraction such as 5.0, or digits as text such as '5') from
    1 to min(k_max, n). Refused with a QueryError that says so: a missing k, True/False, 2.5, 'five', NaN."""
    hi = max(1, min(k_max, n))
    want = f"a whole number from 1 to {hi} (how many results)"
    if k is None or (isinstance(k, str) and not k.strip()):
        raise QueryError(f"k must be given: {want}; it is missing.")
    if isinstance(k, (bool, np.bool_)):
        raise QueryError(f"k must be {want}, got {k!r}.")
    if isinstance(k, str):
        if not k.strip().isdigit() or not k.strip().isascii():
            raise QueryError(f"k must be {want}, got the text {k[:20]!r}.")
        k = int(k.strip())
    elif isinstance(k, (int, np.integer)):
        k = int(k)
    elif isinstance(k, (float, np.floating)):
        if not np.isfinite(k) or k != int(k):
            raise QueryError(f"k must be {want}, got {k!r}.")
        k = int(k)
    else:
        raise QueryError(f"k must be {want}, got {type(k).__name__}.")
    if not 1 <= k <= hi:
        limit = f"the gallery has {n} items" if n < k_max else f"at most {k_max} results per query"
        raise QueryError(f"k must lie between 1 and {hi} ({limit}), got {k}.")
    return k


def known_words(encoder, class_names=(), limit: int = 24) -> list[str]:
    """Some words a text encoder knows: the class names it knows first, then its most common other words."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    vocab = _vocabulary(encoder)
    if vocab is None:
        return list(class_names)[:limit]
    out = [c for c in class_names if c.lower() in vocab]
    shortest = 2 if getattr(encoder, "analyzer_used", None) == "char" else 3  # character bigrams, or real words
    singles = [t for t in vocab if " " not in t and t not in out and t not in ENGLISH_STOP_WORDS and len(t) >= shortest
               and t.isalnum()]
    idf = _idf(encoder)
    if idf is not None and len(idf) == len(vocab):
        singles.sort(key=lambda t: idf[vocab[t]])  # low idf = frequent
    return (out + singles)[:limit]


def _vocabulary(encoder) -> dict | None:
    """{term: column} of a bag-of-words text encoder (one with a `terms` list), else None."""
    try:
        terms = getattr(encoder, "terms", None)
    except Exception:  # noqa: BLE001 - e.g. an unfitted encoder
        return None
    return {t: i for i, t in enumerate(terms)} if terms else None


def _idf(encoder):
    vec = getattr(encoder, "vectorizer", None)
    if vec is not None and getattr(vec, "idf_", None) is not None:
        return np.asarray(vec.idf_)
    try:
        idf = encoder.state().get("idf")
    except Exception:  # noqa: BLE001
        return None
    return np.asarray(idf) if idf is not None else None


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern


def _unknown_words(vocab: dict | None, text: str) -> list[str]:
    """Words of `text` missing from a text encoder's vocabulary (`_vocabulary`; empty if it has none)."""
    if vocab is None:
        return []
    seen, out = set(), []
    for t in _TOKEN.findall(text.lower()):
        if t not in vocab and t not in seen:
            seen.add(t)
            out.append(t)
    return out


# --- reloading what a checkpoint was trained on -------------------------------------------------


def dataset_from_info(info: dict, progress: bool = False):
    """Reload the dataset a checkpoint recorded (`ds.info`: its name and the loader's own keyword
    arguments under "options"). Raises DataError."""
    from .data import DataError, load_dataset

    info = dict(info or {})
    name = info.get("dataset")
    if not name:
        raise DataError("the checkpoint does not record which dataset it was trained on")
    if not isinstance(info.get("options"), dict):
        raise DataError(f"the checkpoint does not record how to reload dataset '{name}' (no loader options)")
    opts = dict(info["options"])
    if name in ("shapes", "folder", "wikipedia_raw"):
        opts.setdefault("progress", progress)
    try:
        return load_dataset(name, **opts)
    except TypeError as e:
        raise DataError(f"dataset '{name}' cannot be reloaded with the recorded options ({e})") from None


def _same_state(a, b) -> bool:
    try:
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    except TypeError:
        return False


# --- the index ----------------------------------------------------------------------------------------


class SearchIndex:
    """Gallery embeddings of a dataset under a trained model, and the encoders that built its features.

    `splits` is the default gallery; each search may name other splits (e.g. ("test", "train")).
    Read-only after construction, so one index serves many threads at once.
    """

    def __init__(self, model: ACMR, dataset, encoders: dict | None = None, splits=("test",),
                 source: str = "", meta: dict | None = None):
        self.model = model.eval()
        self.ds = dataset
        self.encoders = encoders if encoders is not None else getattr(dataset, "encoders", {}) or {}
        self.source = source or f"a model trained on '{getattr(dataset, 'name', '?')}'"
        self.meta = meta or {}
        self.class_names = list(dataset.class_names)
        self.default_splits = tuple(splits)
        self._all_img = self._unit(model.embed(dataset.image_features, "image"))
        self._all_txt = self._unit(model.embed(dataset.text_features, "text"))
        self._labels_all = np.asarray(dataset.labels)
        self._split_all = np.asarray(dataset.split).astype(str)
        self._text_vocab = _vocabulary(self.encoders.get("text"))   # once, not per query
        self._galleries: dict[tuple, tuple] = {}
        self._lock = threading.Lock()
        rows, img, txt, labels = self.gallery(self.default_splits)
        self.rows, self.img, self.txt, self.labels = rows, img, txt, labels  # the default gallery

    @classmethod
    def from_checkpoint(cls, path, splits=("test",), dataset=None, progress: bool = False) -> "SearchIndex":
        """Load a checkpoint, reload its dataset from the recorded info (unless given) and restore the
        encoders from the checkpoint's saved states, so queries are encoded exactly as in training.

        Raises CheckpointError if the checkpoint is unusable or does not fit its data."""
        from .checkpoints import CheckpointError, check_fits, load_checkpoint
        from .data import DataError
        from .encoders import EncoderError, encoder_from_state

        ckpt = load_checkpoint(path)
        info = ckpt.meta.get("dataset") or {}
        if dataset is None:
            try:
                dataset = dataset_from_info(info, progress=progress)
            except (DataError, EncoderError, OSError) as e:
                raise CheckpointError(f"{ckpt.path.parent}: the dataset it was trained on "
                                      f"({info.get('dataset', 'unknown')}) cannot be loaded: {e}") from None
        check_fits(ckpt, dataset.image_features.shape[1], dataset.text_features.shape[1], dataset.num_classes)
        if list(ckpt.class_names) != list(dataset.class_names):
            raise CheckpointError(f"{ckpt.path.parent}: its classes ({', '.join(ckpt.class_names[:5])}, ...) differ "
                                  f"from the data's ({', '.join(dataset.class_names[:5])}, ...)")
        encoders = {}
        notes = []
        for mod, state in (ckpt.meta.get("encoders") or {}).items():
            try:
                enc = encoder_from_state(state)
            except (EncoderError, KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"{ckpt.path.parent}: its {mod} encoder cannot be restored ({e})") from None
            d = ckpt.meta["dims"]["image" if mod == "image" else "text"]
            try:
                dim = enc.dim
            except Exception:
                dim = d
            if dim != d:
                raise CheckpointError(f"{ckpt.path.parent}: its {mod} encoder gives {dim}-d features but the model "
                                      f"expects {d}-d; the checkpoint is inconsistent. Retrain it.")
            encoders[mod] = enc
            # the gallery must be encoded like the queries: re-encode if the dataset's encoder differs
            ds_enc = (getattr(dataset, "encoders", {}) or {}).get(mod)
            if ds_enc is not None and not _same_state(ds_enc.state(), enc.state()):
                items = dataset.captions if mod == "text" else dataset.images
                if items is None:
                    raise CheckpointError(f"{ckpt.path.parent}: its {mod} encoder differs from the data's and the "
                                          f"raw {mod}s are not available to re-encode")
                from .features import encode_images, encode_texts

                feats = (encode_texts if mod == "text" else encode_images)(enc, items)
                if mod == "text":
                    dataset.text_features = feats
                else:
                    dataset.image_features = feats
                notes.append(f"The data's {mod} encoder differs from the one this model was trained with (the data was "
                             f"regenerated or changed), so the gallery's {mod}s were re-encoded with the model's own.")
        for mod in ("image", "text"):  # a checkpoint without saved state: fall back to the dataset's encoders
            if mod not in encoders and (getattr(dataset, "encoders", {}) or {}).get(mod) is not None:
                encoders[mod] = dataset.encoders[mod]
        src = f"checkpoint {ckpt.path.parent}"
        meta = dict(ckpt.meta)
        meta["notes"] = notes
        meta["checkpoint_path"] = str(ckpt.path.parent)
        return cls(ckpt.model, dataset, encoders, splits, source=src, meta=meta)

    @staticmethod
    def _unit(a: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.as_tensor(np.asarray(a), dtype=torch.float32), dim=1)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def available_splits(self) -> list[str]:
        return [s for s in ("train", "val", "test") if (self._split_all == s).any()]

    def gallery(self, splits=None) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, np.ndarray]:
        """(rows, image embeddings, text embeddings, labels) of the items in `splits` (cached)."""
        key = tuple(sorted(set(splits or self.default_splits)))
        with self._lock:
            hit = self._galleries.get(key)
        if hit is not None:
            return hit
        unknown = set(key) - {"train", "val", "test"}
        if unknown:
            raise QueryError(f"unknown split(s) {', '.join(sorted(unknown))}; choose from train, val, test")
        rows = np.flatnonzero(np.isin(self._split_all, list(key)))
        if len(rows) == 0:
            raise QueryError(f"the gallery is empty: no items in split(s) {', '.join(key)}")
        idx = torch.as_tensor(rows)
        hit = (rows, self._all_img[idx].contiguous(), self._all_txt[idx].contiguous(), self._labels_all[rows])
        with self._lock:
            self._galleries[key] = hit
        return hit

    def gallery_size(self, splits=None) -> int:
        return len(self.gallery(splits)[0])

    # raw items ----------------------------------------------------------------------------------------
    def image_of(self, row: int) -> Image.Image | None:
        images = getattr(self.ds, "images", None)
        return images[int(row)] if images is not None else None

    def caption_of(self, row: int) -> str | None:
        captions = getattr(self.ds, "captions", None)
        return str(captions[int(row)]) if captions is not None else None

    def can_search(self, modality: str) -> bool:
        return self.encoders.get(modality) is not None

    def known_words(self, limit: int = 24) -> list[str]:
        enc = self.encoders.get("text")
        return known_words(enc, self.class_names, limit) if enc is not None else []

    # encoding ---------------------------------------------------------------------------------------
    def _encoder(self, modality: str):
        enc = self.encoders.get(modality)
        if enc is None:
            raise QueryError(f"This model has no {modality} encoder (its dataset ships features only), "
                             f"so it cannot search by {modality}. Train on 'shapes' or your own folder of images.")
        return enc

    def encode_text(self, text: str) -> tuple[np.ndarray, list[str], str]:
        original = text
        text, notes = clean_text(text)
        enc = self._encoder("text")
        feats = np.asarray(enc.encode([text]), dtype=np.float32)
        if not np.any(feats):
            words = self.known_words()
            hint = f" Words it knows include: {', '.join(words)}." if words else ""
            shown = text if len(text) <= 80 else text[:77] + "..."
            if len(" ".join(str(original).split())) > MAX_TEXT_CHARS:
                raise QueryError(f"The query is longer than {MAX_TEXT_CHARS} characters, so only its first "
                                 f"{len(text)} were searched, and none of the words there is known to the text "
                                 f"encoder. Put the words that matter first, or shorten the query.{hint}")
            raise QueryError(f"None of the words in '{shown}' is known to the text encoder "
                             f"(it learnt its vocabulary from the training captions); try other words.{hint}")
        own = getattr(enc, "unknown_words", None)  # tfidf knows its own analyzer (words, or characters)
        unknown = own(text) if callable(own) else _unknown_words(self._text_vocab, text)
        if unknown:
            notes.append(f"Words the text encoder does not know were ignored: {', '.join(unknown[:12])}"
                         f"{' ...' if len(unknown) > 12 else ''}.")
        return feats, notes, text

    def encode_image(self, image) -> tuple[np.ndarray, list[str]]:
        img, notes = load_image(image)
        feats = np.asarray(self._encoder("image").encode([img]), dtype=np.float32)
        if not np.isfinite(feats).all():
            raise QueryError("The image encoder produced invalid values for this image; try another image.")
        return feats, notes

    # ranking ---------------------------------------------------------------------------------------
    def _hits(self, q: torch.Tensor, gallery: torch.Tensor, rows: np.ndarray, labels: np.ndarray,
              modality: str, k: int, pred: int) -> list[Hit]:
        scores = gallery @ q
        top = torch.topk(scores, min(k, len(scores)))
        out = []
        for r, (s, j) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
            row = int(rows[j])
            if labels.ndim == 1:
                lab = int(labels[j])
                match = lab == pred
            else:
                lab = int(np.argmax(labels[j]))
                match = bool(labels[j][pred])
            out.append(Hit(r, row, float(s), lab, self.class_names[lab], self.caption_of(row), modality, match,
                           str(self._split_all[row])))
        return out

    def _search(self, feats: np.ndarray, modality: str, k, notes: list[str], same: bool, splits,
                t0: float, query: str | None = None) -> SearchResult:
        rows, img, txt, labels = self.gallery(splits)
        k = check_k(k, len(rows))
        with torch.no_grad():
            x = torch.as_tensor(feats, dtype=torch.float32)
            s = self.model.project_image(x) if modality == "image" else self.model.project_text(x)
            probs = torch.softmax(self.model.label_clf(s), 1)[0]
            q = torch.nn.functional.normalize(s, dim=1)[0]
            pred = int(probs.argmax())
            other, own = (("image", img), ("text", txt)) if modality == "text" else (("text", txt), ("image", img))
            hits = self._hits(q, other[1], rows, labels, other[0], k, pred)
            same_hits = self._hits(q, own[1], rows, labels, own[0], k, pred) if same else []
        used = tuple(sorted(set(splits or self.default_splits)))
        return SearchResult(modality, self.class_names[pred], float(probs[pred]), hits, same_hits, notes,
                            len(rows), used, time.perf_counter() - t0, query)

    def search_by_text(self, text: str, k: int = 10, same_modality: bool = False, splits=None) -> SearchResult:
        """Rank the gallery's images (and, if asked, its texts) for a text query."""
        t0 = time.perf_counter()
        check_k(k, self.gallery_size(splits))  # report a bad split or k before encoding anything
        feats, notes, text = self.encode_text(text)
        return self._search(feats, "text", k, notes, same_modality, splits, t0, text)

    def search_by_image(self, image, k: int = 10, same_modality: bool = False, splits=None) -> SearchResult:
        """Rank the gallery's texts (and, if asked, its images) for an image query."""
        t0 = time.perf_counter()
        check_k(k, self.gallery_size(splits))
        feats, notes = self.encode_image(image)
        return self._search(feats, "image", k, notes, same_modality, splits, t0)


__all__ = ["Hit", "K_MAX", "MAX_FILE_BYTES", "MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE", "MAX_TEXT_CHARS", "QueryError",
           "SearchIndex", "SearchResult", "check_k", "clean_text", "dataset_from_info", "known_words", "load_image"]
