"""From raw items to feature matrices: batched encoding with a progress bar, and its cache.

  encode_images(encoder, images)   a list (or any indexable) of PIL images -> (n, d) float32
  encode_texts(encoder, texts)     a list of strings                      -> (n, d) float32
  fit_and_encode(...)              fit an encoder on the training items, encode all items, and cache
                                   both the features and the fitted encoder state

If an item cannot be encoded, the error names it (e.g. "row 17 (cat.png)"): a long run never dies
half-way through without saying which item broke.

Raw images are kept compactly: `ImageArray` wraps one uint8 array (n, h, w, 3), `ImageFiles` a list of
file paths opened on demand. Both give `images[i] -> PIL.Image` in RGB.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from .cache import cache_key, cache_root, load_entry, save_entry
from .encoders import Encoder, EncoderError, encoder_from_state


class ImageArray:
    """Images stored as one uint8 array (n, h, w, 3); `images[i]` is a PIL RGB image."""

    def __init__(self, pixels: np.ndarray):
        self.pixels = np.asarray(pixels, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ImageArray(self.pixels[i])
        return Image.fromarray(self.pixels[i], mode="RGB") if self.pixels.ndim == 4 else Image.fromarray(self.pixels[i])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class ImageFiles:
    """Images stored as files; `images[i]` opens file i and returns it as a PIL RGB image."""

    def __init__(self, paths: Sequence[str | Path]):
        self.paths = [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ImageFiles(self.paths[i])
        with Image.open(self.paths[i]) as im:
            return im.convert("RGB")

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _encode(encoder: Encoder, items, batch_size: int, progress: bool, desc: str,
            name_of: Callable[[int], str] | None) -> np.ndarray:
    """Encode items in batches; on failure, find and name the item that broke."""
    from tqdm.auto import tqdm

    name_of = name_of or (lambda i: f"item {i}")
    n = len(items)
    out = []
    with tqdm(total=n, desc=desc, unit="item", disable=not progress, leave=False) as bar:
        for start in range(0, n, batch_size):
            idx = range(start, min(n, start + batch_size))
            try:
                out.append(np.asarray(encoder.encode([items[i] for i in idx]), dtype=np.float32))
            except Exception as e:
                for i in idx:  # find the culprit
                    try:
                        encoder.encode([items[i]])
                    except Exception as e_item:
                        raise EncoderError(f"{desc}: encoder '{encoder.name}' failed on {name_of(i)}: {e_item}") from e_item
                raise EncoderError(f"{desc}: encoder '{encoder.name}' failed on items {start}..{idx[-1]}: {e}") from e
            bar.update(len(idx))
    feats = np.concatenate(out) if out else np.zeros((0, encoder.dim), np.float32)
    bad = ~np.isfinite(feats).all(axis=1)
    if bad.any():
        raise EncoderError(f"{desc}: encoder '{encoder.name}' produced NaN or infinite values for "
                           f"{name_of(int(np.flatnonzero(bad)[0]))}")
    return feats


def encode_images(encoder: Encoder, images, batch_size: int = 64, progress: bool = False,
                  name_of: Callable[[int], str] | None = None) -> np.ndarray:
    """Encode PIL images (any mode and size) with an image encoder -> (n, d) float32."""
    if encoder.modality != "image":
        raise EncoderError(f"'{encoder.name}' is a {encoder.modality} encoder; an image encoder is needed")
    return _encode(encoder, images, batch_size, progress, "encoding images", name_of)


def encode_texts(encoder: Encoder, texts: Sequence[str], batch_size: int = 256, progress: bool = False,
                 name_of: Callable[[int], str] | None = None) -> np.ndarray:
    """Encode strings with a text encoder -> (n, d) float32."""
    if encoder.modality != "text":
        raise EncoderError(f"'{encoder.name}' is a {encoder.modality} encoder; a text encoder is needed")
    return _encode(encoder, texts, batch_size, progress, "encoding texts", name_of)


def feature_path(encoder: Encoder, dataset_key: str, cache_dir=None) -> Path:
    """Where the features of `dataset_key` encoded by `encoder` are cached (without suffix)."""
    key = cache_key({"dataset": dataset_key, "encoder": encoder.identity(), "fit_on": "train"})
    return cache_root(cache_dir) / "features" / f"{encoder.modality}-{encoder.name}-{key}"


def is_cached(encoder: Encoder, dataset_key: str, cache_dir=None) -> bool:
    path = feature_path(encoder, dataset_key, cache_dir)
    return path.with_suffix(".npz").is_file() and path.with_suffix(".json").is_file()


def fit_and_encode(encoder: Encoder, items, train_index: np.ndarray, dataset_key: str,
                   cache_dir=None, progress: bool = True,
                   name_of: Callable[[int], str] | None = None) -> tuple[np.ndarray, Encoder]:
    """Fit `encoder` on the training items, encode all items; cached under dataset key + encoder identity.

    Returns (features, fitted encoder). On a cache hit nothing is encoded: the features are read from
    disk and the fitted encoder is rebuilt from its saved JSON state.
    """
    path = feature_path(encoder, dataset_key, cache_dir)
    hit = load_entry(path)
    if hit is not None:
        arrays, meta = hit
        try:
            feats, fitted = arrays["features"], encoder_from_state(meta["state"])
            if feats.shape == (len(items), fitted.dim) and feats.dtype == np.float32:
                return feats, fitted
        except (KeyError, TypeError, ValueError):
            pass  # an unusable entry: encode again and overwrite it
    encoder.fit([items[i] for i in train_index])
    encode = encode_images if encoder.modality == "image" else encode_texts
    feats = encode(encoder, items, progress=progress, name_of=name_of)
    save_entry(path, {"features": feats}, {"dataset": dataset_key, "identity": encoder.identity(),
                                           "state": encoder.state()})
    return feats, encoder
