"""Checkpoints: one safetensors file holding the weights, with the config, class names, dataset and encoder
identity (and fitted encoder state, e.g. a TF-IDF vocabulary) as JSON in its metadata.

Saving is atomic and durable: each file is written beside its target under a temporary name
(`.acmr-<pid>-*.tmp`), flushed to disk (fsync), moved over the target with os.replace, and the folder is
fsynced too; so a crash or power cut mid-save leaves the previous checkpoint intact. Temporaries left by a
process that died mid-save are removed on the next save into that folder (and by
`clean_stale_temporaries`, which the app calls at start). A readable copy of the metadata is written to
`acmr.json`.

Loading never unpickles anything. Before any model is built, the config's sizes are bounded and compared
with the shapes the file actually holds (read from its header, nothing allocated), so a forged config
(e.g. common_dim = 10**7) is refused with a clear message instead of an allocation of gigabytes. Weights
holding NaN or infinite values, and a class-name list that does not match the classifier, are refused.
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as save_bytes

from .config import ACMRConfig, ConfigError
from .model import ACMR

FORMAT = "acmr-lab/1"
WEIGHTS = "acmr.safetensors"
META = "acmr.json"

# bounds on what a checkpoint's config may ask for (far above any real ACMR model, far below an exhausted memory)
MAX_FEATURE_DIM = 1_000_000     # input feature dimensions d_v, d_t
MAX_WIDTH = 65_536              # a hidden layer or the common space
MAX_LAYERS = 32                 # hidden layers per network
MAX_CLASSES = 1_000_000
MAX_PARAMETERS = 1_000_000_000  # 4 GB of float32 weights
STALE_AFTER_S = 600             # a temporary without a live owner, or older than this, is stale
_TMP_PREFIX = ".acmr-"
_TMP_RE = re.compile(r"^\.acmr-(?:(\d+)-)?.+\.tmp$")


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
    clean_stale_temporaries(folder)
    target = folder / WEIGHTS
    _write_durably(target, save_bytes(tensors, metadata={"acmr": text}))
    _write_durably(folder / META, json.dumps(meta, indent=2, default=_json_default).encode())
    return target


def _write_durably(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically: a temporary beside it, fsync, os.replace, fsync of the folder."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_temporaries(root: str | Path, recursive: bool = False) -> list[Path]:
    """Delete checkpoint temporaries (`.acmr-<pid>-*.tmp`, this module's own naming only) left by a save that
    was killed: their process is gone, or they are older than STALE_AFTER_S. Returns what was deleted."""
    root = Path(root)
    if not root.is_dir():
        return []
    removed = []
    now = time.time()
    for p in (root.rglob(f"{_TMP_PREFIX}*.tmp") if recursive else root.glob(f"{_TMP_PREFIX}*.tmp")):
        m = _TMP_RE.match(p.name)
        if not m or not p.is_file():
            continue
        try:
            age = now - p.stat().st_mtime
        except OSError:
            continue
        pid = int(m.group(1)) if m.group(1) else None
        mine = pid == os.getpid()
        if (pid is not None and not mine and not _pid_alive(pid)) or age > STALE_AFTER_S:
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


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
    """Rebuild the model from a checkpoint; refuses absurd sizes, missing, extra or mis-shaped tensors,
    NaN/infinite weights and a class-name list that does not match the classifier."""
    wp = _weights_path(path)
    meta = read_meta(wp)
    try:
        cfg = ACMRConfig.from_dict(meta["config"])
        dims = meta["dims"]
        d_v, d_t, c = (_whole(dims[k], f"dims.{k}") for k in ("image", "text", "classes"))
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{wp}: its configuration cannot be used ({e}); retrain, or pick another "
                              "checkpoint.") from None
    problem = size_problem(d_v, d_t, c, cfg)
    if problem:
        raise CheckpointError(f"{wp}: its configuration asks for {problem}; the file was changed or written by "
                              "another program. Retrain, or pick another checkpoint.")
    check_class_names(meta, wp)
    with torch.device("meta"):                       # shapes only: nothing is allocated
        expected = {k: tuple(v.shape) for k, v in ACMR(d_v, d_t, c, cfg).state_dict().items()}
    try:
        from safetensors import safe_open

        with safe_open(str(wp), framework="pt") as f:
            in_file = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{wp}: weights cannot be read ({e})") from None
    missing = sorted(set(expected) - set(in_file))
    extra = sorted(set(in_file) - set(expected))
    wrong = [f"{k}: file {in_file[k]} vs model {v}" for k, v in expected.items() if k in in_file and in_file[k] != v]
    if missing or extra or wrong:
        parts = ([f"missing {', '.join(missing[:4])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:4])}"] if extra else []) + wrong[:4]
        raise CheckpointError(f"{wp}: the weights do not fit the model its config describes ({'; '.join(parts)}). "
                              "The file was changed or written by another program; retrain or pick another checkpoint.")
    try:
        tensors = load_file(str(wp))
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{wp}: weights cannot be read ({e})") from None
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{wp}: {len(bad)} of its {len(tensors)} weight tensors hold NaN or infinite values "
                              f"({', '.join(bad[:3])}); training diverged or the file was damaged. Retrain (e.g. with "
                              "a smaller --lr), or pick another checkpoint.")
    try:
        model = ACMR(d_v, d_t, c, cfg)
        model.load_state_dict(tensors)
        model.to(device).eval()
    except (RuntimeError, MemoryError) as e:
        raise CheckpointError(f"{wp}: the model cannot be built ({str(e).splitlines()[0][:200]})") from None
    return Checkpoint(model, cfg, meta, wp)


def _whole(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be a whole number, got {v!r}")
    return v


def size_problem(d_v: int, d_t: int, num_classes: int, cfg: ACMRConfig) -> str | None:
    """What is out of bounds in a model of these sizes (None if nothing); checked before anything is built."""
    checks = [("image feature dimension", d_v, MAX_FEATURE_DIM), ("text feature dimension", d_t, MAX_FEATURE_DIM),
              ("number of classes", num_classes, MAX_CLASSES), ("common_dim", cfg.common_dim, MAX_WIDTH)]
    for name in ("image_layers", "text_layers", "disc_layers"):
        layers = list(getattr(cfg, name))
        if len(layers) > MAX_LAYERS:
            return f"{len(layers)} {name} (at most {MAX_LAYERS})"
        checks += [(f"{name} size", x, MAX_WIDTH) for x in layers]
    for what, v, hi in checks:
        if not 1 <= v <= hi:
            return f"a {what} of {v:,} (allowed: 1 to {hi:,})"
    n = 0
    for sizes in ([d_v, *cfg.image_layers, cfg.common_dim], [d_t, *cfg.text_layers, cfg.common_dim],
                  [cfg.common_dim, num_classes], [cfg.common_dim, *cfg.disc_layers, 2]):
        n += sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if n > MAX_PARAMETERS:
        return f"{n:,} parameters ({math.ceil(n * 4 / 1e9)} GB; at most {MAX_PARAMETERS:,})"
    return None


def check_class_names(meta: dict, where) -> list[str]:
    """The one check of a checkpoint's class names (CLI and app): a list of strings, one per classifier output."""
    names = meta.get("class_names")
    c = (meta.get("dims") or {}).get("classes")
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise CheckpointError(f"{where}: its class names are not a list of texts; retrain or pick another checkpoint.")
    if len(names) != c:
        raise CheckpointError(f"{where}: it names {len(names)} classes but its classifier has {c} outputs; the file "
                              "was changed or written by another program. Retrain, or pick another checkpoint.")
    return names


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
