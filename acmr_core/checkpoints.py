"""Checkpoints: one safetensors file holding the weights, with the config, class names, dataset and encoder
identity (and fitted encoder state, e.g. a TF-IDF vocabulary) as JSON in its metadata.

Saving is atomic: the file is written beside the target and moved over it with os.replace, so a crash
mid-save leaves the previous checkpoint intact. A readable copy of the metadata is written to `acmr.json`.
Loading never unpickles anything, and refuses a checkpoint whose shapes do not fit with a clear message.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ACMRConfig, ConfigError
from .model import ACMR

FORMAT = "acmr-lab/1"
WEIGHTS = "acmr.safetensors"
META = "acmr.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit; the message says which and what to do."""


@dataclass
class Checkpoint:
    model: ACMR
    config: ACMRConfig
    meta: dict          # class_names, dims, dataset info, encoder states, metrics, ...
    path: Path

    @property
    def class_names(self) -> list[str]:
        return self.meta["class_names"]


def _weights_path(path: str | Path) -> Path:
    p = Path(path)
    return p / WEIGHTS if p.is_dir() or p.suffix != ".safetensors" else p


def save_checkpoint(path: str | Path, model: ACMR, config: ACMRConfig, class_names: list[str], *,
                    dataset_info: dict | None = None, encoders: dict | None = None, extra: dict | None = None) -> Path:
    """Write `path/acmr.safetensors` (+ `acmr.json`) atomically; `path` is a folder (created if needed)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "config": config.to_dict(),
        "class_names": list(class_names),
        "dims": {"image": model.d_v, "text": model.d_t, "classes": model.num_classes},
        "dataset": dataset_info or {},
        "encoders": {k: e.state() if hasattr(e, "state") else e for k, e in (encoders or {}).items()},
        **(extra or {}),
    }
    text = json.dumps(meta, default=_json_default)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    target = folder / WEIGHTS
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".acmr-", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"acmr": text})
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".acmr-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(meta, f, indent=2, default=_json_default)
    os.replace(tmp, folder / META)
    return target


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def read_meta(path: str | Path) -> dict:
    """The metadata of a checkpoint (folder or .safetensors file) without building the model."""
    wp = _weights_path(path)
    if not wp.is_file():
        raise CheckpointError(f"{wp}: no checkpoint there (expected a folder with {WEIGHTS}, or that file)")
    try:
        from safetensors import safe_open

        with safe_open(str(wp), framework="pt") as f:
            raw = (f.metadata() or {}).get("acmr")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{wp}: not a readable safetensors file ({e})") from None
    if raw is None:
        raise CheckpointError(f"{wp}: a safetensors file, but not an ACMR Lab checkpoint (no 'acmr' metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{wp}: its metadata is corrupt ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{wp}: checkpoint format {meta.get('format')!r}, this version reads {FORMAT!r}")
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model from a checkpoint; refuses missing, extra or mis-shaped tensors."""
    wp = _weights_path(path)
    meta = read_meta(wp)
    try:
        cfg = ACMRConfig.from_dict(meta["config"])
        dims = meta["dims"]
        model = ACMR(int(dims["image"]), int(dims["text"]), int(dims["classes"]), cfg)
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{wp}: its configuration cannot be used ({e})") from None
    try:
        tensors = load_file(str(wp))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{wp}: weights cannot be read ({e})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if missing or extra or wrong:
        parts = ([f"missing {', '.join(missing[:4])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:4])}"] if extra else []) + wrong[:4]
        raise CheckpointError(f"{wp}: the weights do not fit the model its config describes ({'; '.join(parts)}). "
                              "The file was changed or written by another program; retrain or pick another checkpoint.")
    model.load_state_dict(tensors)
    model.to(device).eval()
    return Checkpoint(model, cfg, meta, wp)


def check_fits(ckpt: Checkpoint, image_dim: int, text_dim: int, num_classes: int | None = None) -> None:
    """Refuse a checkpoint trained on features of other sizes than a dataset's."""
    d = ckpt.meta["dims"]
    problems = []
    if d["image"] != image_dim:
        problems.append(f"it expects {d['image']}-d image features, the data has {image_dim}-d")
    if d["text"] != text_dim:
        problems.append(f"it expects {d['text']}-d text features, the data has {text_dim}-d")
    if num_classes is not None and d["classes"] != num_classes:
        problems.append(f"it was trained on {d['classes']} classes, the data has {num_classes}")
    if problems:
        raise CheckpointError(f"{ckpt.path}: this checkpoint does not fit the data: {'; '.join(problems)}. "
                              "Load a checkpoint trained on this dataset with the same encoders, or train a new one.")


def latest_checkpoint(root: str | Path = "checkpoints") -> Path | None:
    """The most recently saved checkpoint folder under `root` (or None)."""
    found = sorted(Path(root).glob(f"**/{WEIGHTS}"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None
