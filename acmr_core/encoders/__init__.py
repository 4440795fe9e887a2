"""Encoders turn raw items (PIL images, caption strings) into feature vectors.

They are a registry, like open_clip's model factory: a module in this package decorates a class with
`@register_encoder("name", modality="image"|"text")`; `make_encoder("name", **params)` builds one.
An encoder's fitted state (e.g. a TF-IDF vocabulary) is JSON-safe (`state()` / `from_state()`), so it is
saved beside a checkpoint without pickling, and a query is encoded exactly as the gallery was.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Sequence

import numpy as np


class EncoderError(ValueError):
    """An encoder cannot be built or cannot encode its input; the message says what to do."""


class Encoder:
    """Base class. Subclasses set `name`, `modality`, and implement `encode` (and `fit` if they learn)."""

    name: str = "?"
    modality: str = "?"  # "image" or "text"

    def __init__(self, **params: Any) -> None:
        self.params = params

    def fit(self, items: Sequence) -> "Encoder":
        """Learn from training items (no-op for fixed encoders)."""
        return self

    def encode(self, items: Sequence) -> np.ndarray:
        """Return an (len(items), dim) float32 array of finite values."""
        raise NotImplementedError

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def identity(self) -> dict:
        """Name and parameters: what a feature cache is keyed on."""
        return {"name": self.name, "params": self.params}

    def state(self) -> dict:
        """JSON-safe fitted state (default: just identity)."""
        return self.identity()

    @classmethod
    def from_state(cls, state: dict) -> "Encoder":
        return cls(**state.get("params", {}))


ENCODERS: dict[str, type[Encoder]] = {}


def register_encoder(name: str, modality: str):
    def wrap(cls):
        cls.name, cls.modality = name, modality
        ENCODERS[name] = cls
        return cls

    return wrap


def _discover() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def available_encoders(modality: str | None = None) -> list[str]:
    _discover()
    return sorted(n for n, c in ENCODERS.items() if modality in (None, c.modality))


def best_offline_encoders() -> dict[str, str]:
    """The best encoders for real photos and captions that work offline here, by modality.

    image: 'efficientnet_lite0' (ImageNet-pretrained) when its weights package is installed, else 'hog_color';
    text: 'tfidf' (its analyzer 'auto' picks words or character n-grams from the captions' script)."""
    from .efficientnet import weights_installed

    return {"image": "efficientnet_lite0" if weights_installed() else "hog_color", "text": "tfidf"}


def make_encoder(name: str, **params: Any) -> Encoder:
    _discover()
    if name not in ENCODERS:
        raise EncoderError(f"unknown encoder '{name}'; available: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](**params)


def encoder_from_state(state: dict) -> Encoder:
    _discover()
    name = state.get("name")
    if name not in ENCODERS:
        raise EncoderError(f"checkpoint needs encoder '{name}', which is not registered; "
                           f"available: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name].from_state(state)
