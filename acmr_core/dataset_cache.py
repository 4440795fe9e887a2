"""Loaded datasets, shared read-only by every run of the process (the trainer never changes its dataset)."""
from __future__ import annotations

import json
import threading

from .data import CrossModalDataset


class DatasetCache:
    """Datasets keyed by loader name and options.

    `get` loads once (other callers for the same key wait for that load) and re-raises a failed load's
    error to every caller; a failed load is not cached, so fixing the folder and retrying works."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}

    @staticmethod
    def key(name: str, options: dict) -> str:
        return json.dumps([name, options], sort_keys=True, default=str)

    def get(self, name: str, **options) -> CrossModalDataset:
        from .data import load_dataset

        k = self.key(name, options)
        with self._lock:
            entry = self._entries.setdefault(k, {"lock": threading.Lock(), "ds": None})
        with entry["lock"]:
            if entry["ds"] is None:
                entry["ds"] = load_dataset(name, **options)
            return entry["ds"]

    def peek(self, name: str, **options) -> CrossModalDataset | None:
        with self._lock:
            entry = self._entries.get(self.key(name, options))
        return entry["ds"] if entry else None

    def prefetch(self, name: str, **options) -> threading.Thread:
        """Load in a daemon thread (errors are swallowed here; `get` will raise them to whoever asks)."""
        def go():
            try:
                self.get(name, **options)
            except Exception:  # noqa: BLE001 - reported when someone actually asks for it
                pass

        th = threading.Thread(target=go, daemon=True, name=f"acmr-prefetch-{name}")
        th.start()
        return th


DATASETS = DatasetCache()
