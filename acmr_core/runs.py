"""A run is a folder on disk, like TensorBoard's: anyone (a second viewer, a later process) can read it back.

    runs/<id>/
      config.json      the run's ACMRConfig, its name, dataset label and when it was created
      events.jsonl     append-only, one JSON object a line, written as training goes:
                         {"kind": "owner", pid, boot_id, started}  the process that trains it
                         {"kind": "dataset", name, class_names, info, total_steps}
                         {"kind": "step", global_step, epoch, losses, disc_acc, grl}
                         {"kind": "epoch", epoch, val_img2txt, ..., loss_*, disc_acc}
                         {"kind": "frame", method, epoch, file}     a map frame was saved under frames/
                         {"kind": "status", state, message}
      frames/          map frames (pca-0003.npz, umap-0003.npz: plain arrays, never pickles)
      metrics.json     the one metrics layout (acmr_core.pipeline.report), written when training ends
      checkpoint/      the model (acmr_core.checkpoints: safetensors + JSON)
      lock             held (fcntl.flock) by the process training the run, for as long as it lives

The folder root is runs/ in the project, or $ACMR_RUNS_DIR. A run's status is the last status it recorded,
except that a run still marked running or paused whose lock nobody holds is `interrupted`: its process died
(killed, crashed, machine off). That is decided by the reader, without the dead process's help: the kernel
drops a flock when its holder dies. Everything the run recorded before that stays readable.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STATES = ("running", "paused", "finished", "stopped", "failed", "interrupted")
OPEN_STATES = ("ready", "running", "paused")     # a run in one of these is alive only while its lock is held
CONFIG, EVENTS, METRICS, LOCK, FRAMES, CHECKPOINT = "config.json", "events.jsonl", "metrics.json", "lock", "frames", \
    "checkpoint"


def runs_root() -> Path:
    """Where runs live: $ACMR_RUNS_DIR, else runs/ in the project."""
    return Path(os.environ.get("ACMR_RUNS_DIR") or ROOT / "runs")


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _clean(x):
    """NaN and infinities as null (JSON has none)."""
    if isinstance(x, float) and x != x or isinstance(x, float) and x in (float("inf"), float("-inf")):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.floating):
        return _clean(float(x))
    return x


def dumps(obj) -> str:
    return json.dumps(_clean(obj), default=_json_default, allow_nan=False)


class RunDir:
    """One run's folder. `create` makes a new one and holds its lock; `open` reads an existing one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fd: int | None = None          # events.jsonl, opened O_APPEND by the owner
        self._lock_fd: int | None = None
        self._closed = False                 # was open for writing here, and closed

    @property
    def run_id(self) -> str:
        return self.path.name

    # --- writing (the owner) ------------------------------------------------------------------------------
    @classmethod
    def create(cls, config: dict, *, name: str = "", dataset: str = "", root: str | Path | None = None,
               run_id: str | None = None, **info) -> "RunDir":
        """A new run folder under `root` (default runs_root()), locked by this process, its owner recorded."""
        root = Path(root) if root is not None else runs_root()
        root.mkdir(parents=True, exist_ok=True)
        rid = run_id or new_run_id()
        while True:
            try:
                (root / rid).mkdir()
                break
            except FileExistsError:
                rid = new_run_id()
        run = cls(root / rid)
        created = time.time()
        (run.path / CONFIG).write_text(json.dumps(_clean({"id": rid, "name": name or rid, "dataset": dataset,
                                                          "created": created, "config": config, **info}),
                                                  indent=2, default=_json_default))
        run._lock_fd = os.open(run.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(run._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(run._lock_fd, str(os.getpid()).encode())
        run._fd = os.open(run.path / EVENTS, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        run.append({"kind": "owner", "pid": os.getpid(), "boot_id": boot_id(), "started": created})
        return run

    def append(self, event: dict) -> None:
        """One event, one line, one write(2): on disk (in the kernel's cache) before this returns, so a killed
        process loses nothing it appended; concurrent appends never interleave within a line."""
        line = (dumps({"t": round(time.time(), 3), **event}) + "\n").encode()
        if self._fd is not None:
            os.write(self._fd, line)
            return
        if not self._closed:
            raise RuntimeError(f"run {self.run_id} is not open for writing here")
        fd = os.open(self.path / EVENTS, os.O_WRONLY | os.O_APPEND)   # a late note (a map frame, a saved copy)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def save_frame(self, frame) -> str:
        """A maps.MapFrame as frames/<method>-<epoch>.npz (plain arrays); returns its path relative to the run."""
        (self.path / FRAMES).mkdir(exist_ok=True)
        rel = f"{FRAMES}/{frame.method}-{frame.epoch:04d}.npz"
        tmp = self.path / f"{rel}.tmp.npz"
        labels = np.asarray(frame.labels)
        np.savez(tmp, coords=np.asarray(frame.coords, np.float32), labels=labels,
                 modality=np.asarray(frame.modality).astype("U5"), index=np.asarray(frame.index),
                 epoch=np.int64(frame.epoch), seconds=np.float64(frame.seconds))
        os.replace(tmp, self.path / rel)
        return rel

    def write_metrics(self, metrics: dict) -> Path:
        p = self.path / METRICS
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(_clean(metrics), indent=2, default=_json_default))
        os.replace(tmp, p)
        return p

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT

    def close(self) -> None:
        """Stop writing and let go of the lock (the run's last status should be recorded before)."""
        for name in ("_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                try:
                    os.close(fd)          # closing the descriptor drops the flock
                except OSError:
                    pass
                setattr(self, name, None)
                self._closed = True

    # --- reading (anyone) -------------------------------------------------------------------------------
    def config(self) -> dict:
        try:
            return json.loads((self.path / CONFIG).read_text())
        except (OSError, ValueError):
            return {"id": self.run_id, "config": {}}

    def events(self) -> list[dict]:
        """Every complete event line (a torn last line, from a process killed mid-write, is skipped)."""
        try:
            raw = (self.path / EVENTS).read_bytes()
        except OSError:
            return []
        out = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def metrics(self) -> dict | None:
        try:
            return json.loads((self.path / METRICS).read_text())
        except (OSError, ValueError):
            return None

    def load_frame(self, rel: str):
        from .maps import MapFrame

        with np.load(self.path / rel, allow_pickle=False) as z:
            method = "umap" if Path(rel).name.startswith("umap") else "pca"
            return MapFrame(int(z["epoch"]), z["coords"], z["labels"], z["modality"], z["index"], method,
                            float(z["seconds"]))

    def owner_alive(self) -> bool:
        """Is the process that trains this run alive? True while someone holds its lock (flock is dropped by the
        kernel when the holder dies, so a killed process cannot leave it held)."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self.path / LOCK, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True                     # held by its owner
        finally:
            os.close(fd)                    # (drops the shared lock we may just have taken)
        return False

    def summary(self) -> "RunSummary":
        cfg = self.config()
        ev = self.events()
        return summarise(self, cfg, ev)


@dataclass
class RunSummary:
    run_id: str
    name: str
    status: str
    epochs_done: int
    epochs: int
    dataset: str
    created: float
    message: str = ""
    path: Path = field(default_factory=Path)

    def line(self) -> str:
        return f"{self.run_id} {self.status} {self.epochs_done}/{self.epochs} {self.dataset}"


def recorded_state(run: RunDir, events: list[dict]) -> tuple[str, str]:
    """(status, message) of a run from its events, `interrupted` if it is open but its owner is gone."""
    state, message = "ready", ""
    for e in events:
        if e.get("kind") == "status":
            state, message = e.get("state", state), e.get("message", "")
    if state in OPEN_STATES and not run.owner_alive():
        done = sum(1 for e in events if e.get("kind") == "epoch" and e.get("epoch", 0) > 0)
        return "interrupted", (f"the process training this run ended without finishing it (killed or crashed); "
                               f"{done} epoch{'s' if done != 1 else ''} recorded")
    return state, message


def summarise(run: RunDir, cfg: dict, events: list[dict]) -> RunSummary:
    state, message = recorded_state(run, events)
    epochs = [e["epoch"] for e in events if e.get("kind") == "epoch"]
    ds = next((e.get("name") for e in events if e.get("kind") == "dataset"), None) or cfg.get("dataset") or "?"
    return RunSummary(run.run_id, cfg.get("name", run.run_id), state, max(epochs) if epochs else 0,
                      int((cfg.get("config") or {}).get("epochs", 0)), str(ds).replace(" ", "_"),
                      float(cfg.get("created", 0.0)), message, run.path)


def list_runs(root: str | Path | None = None) -> list[RunSummary]:
    """Every run folder under `root` (default runs_root()), newest first."""
    root = Path(root) if root is not None else runs_root()
    if not root.is_dir():
        return []
    found = [_summary(p) for p in root.iterdir() if p.is_dir() and (p / CONFIG).is_file()]
    return sorted(found, key=lambda s: (s.created, s.run_id), reverse=True)


_SUMMARIES: dict[str, tuple] = {}


def _summary(path: Path) -> RunSummary:
    """A run's summary, re-read only when its event log changed (or, while it is open, to see if its owner died)."""
    try:
        st = (path / EVENTS).stat()
        key = (st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    hit = _SUMMARIES.get(str(path))
    if hit is not None and hit[0] == key and key is not None and hit[1].status not in OPEN_STATES:
        return hit[1]
    summary = RunDir(path).summary()
    _SUMMARIES[str(path)] = (key, summary)
    return summary


def find_run(run_id: str, root: str | Path | None = None) -> RunDir | None:
    """The run folder of `run_id` (None if there is none; ids are folder names, nothing else is accepted)."""
    root = Path(root) if root is not None else runs_root()
    if not run_id or "/" in run_id or run_id.startswith(".") or run_id != Path(run_id).name:
        return None
    p = root / run_id
    return RunDir(p) if (p / CONFIG).is_file() else None
