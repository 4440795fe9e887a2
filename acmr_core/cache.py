"""A small on-disk cache for generated data and encoded features.

Every entry is two files side by side:

  <name>.npz   plain numeric/string arrays, written with numpy and read with `allow_pickle=False`
  <name>.json  JSON metadata (what the entry is, fitted encoder state, ...)

Nothing in the cache is ever executed or unpickled: a tampered file can at worst fail to load, and a
file that fails to load is treated as a miss (it is recomputed and overwritten).

Entries are named by a key: a short hash of a JSON description of everything that made them (the
dataset, its parameters, the encoder and its parameters). Change any of these and the key changes, so
the entry is recomputed; keep them and the entry loads from disk.

The folder is `cache_dir=` if given, else the environment variable ACMR_CACHE_DIR, else
`~/.cache/acmr_lab`.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_DIR = "~/.cache/acmr_lab"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: `cache_dir`, else $ACMR_CACHE_DIR, else ~/.cache/acmr_lab (created if missing)."""
    root = Path(cache_dir or os.environ.get("ACMR_CACHE_DIR") or DEFAULT_DIR).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_key(description: dict) -> str:
    """A 16-hex-digit key for a JSON-safe description (same description -> same key)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_entry(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Store `arrays` in `path`.npz and `meta` in `path`.json (the JSON is written last: it marks completion)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"cache entry {path.name}: array '{name}' has dtype object, which would need pickle")
    _atomic_write(path.with_suffix(".npz"), lambda f: np.savez(f, **arrays))
    text = json.dumps(meta, indent=1, sort_keys=True).encode("utf-8")
    _atomic_write(path.with_suffix(".json"), lambda f: f.write(text))


def load_entry(path: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """Return (arrays, meta) of a complete entry, or None if it is missing or unreadable."""
    npz, js = path.with_suffix(".npz"), path.with_suffix(".json")
    if not (npz.is_file() and js.is_file()):
        return None
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    return arrays, meta


def clear_cache(cache_dir: str | Path | None = None) -> int:
    """Delete the generated data and encoded features in the cache folder; returns how many files went."""
    import shutil

    root = cache_root(cache_dir)
    n = 0
    for sub in ("shapes", "features"):
        if (root / sub).is_dir():
            n += sum(1 for p in (root / sub).rglob("*") if p.is_file())
            shutil.rmtree(root / sub)
    return n
