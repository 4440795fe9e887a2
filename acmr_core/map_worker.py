"""The maps of a live run: a PCA frame every epoch (in the training thread: milliseconds), UMAP frames at chosen
epochs in a worker thread of their own (seconds each), each frame aligned onto its neighbour. Every frame is
saved into the run folder (frames/*.npz) and logged, then handed to the recorder that a page draws from."""
from __future__ import annotations

import queue
import threading
import time


def default_umap_epochs(epochs: int, n: int = 5) -> list[int]:
    """Epoch 0 (before training) and n roughly even epochs up to the last one."""
    if epochs <= 0:
        return [0]
    picks = {0, epochs} | {int(round(epochs * k / n)) for k in range(1, n)}
    return sorted(e for e in picks if 0 <= e <= epochs)


class MapWorker:
    """Listens to EpochEvents (their `snapshot`), keeps the snapshots, makes the frames."""

    def __init__(self, recorder, umap_epochs, umap_options: dict | None = None, save=None, name: str = "run"):
        """`save(frame)` stores a frame (returns its file name, logged as a "frame" event) or is None."""
        self.recorder = recorder
        self.umap_epochs = set(umap_epochs or [])
        self._options = dict(umap_options or {})
        self.save = save
        self._name = name
        self._lock = threading.Lock()
        self._snapshots: dict[int, dict] = {}
        self.pending: list[int] = []
        self.error: str | None = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    # --- the training thread's side ---------------------------------------------------------------------
    def on_epoch(self, epoch: int, snapshot: dict | None) -> None:
        from . import maps

        if snapshot is None:
            return
        prev = self.recorder.last_frame("pca")
        frame = maps.pca_frame(snapshot, epoch, None if prev is None else prev.coords)
        with self._lock:
            self._snapshots[epoch] = snapshot
        self._store(frame)
        if epoch in self.umap_epochs:
            self.request(epoch)

    def _store(self, frame) -> None:
        if self.save is not None:
            try:
                self.save(frame)
            except OSError as e:       # a full disk costs the saved copy of a frame, never the live map
                self.error = f"could not save the {frame.method.upper()} frame of epoch {frame.epoch}: {e}"
        self.recorder.add_frame(frame)

    # --- requests (any thread) ----------------------------------------------------------------------------
    def snapshots(self) -> dict[int, dict]:
        with self._lock:
            return dict(self._snapshots)

    def request(self, epoch: int) -> bool:
        """Queue a UMAP frame of `epoch` (if its snapshot exists and it is neither done nor queued)."""
        with self._lock:
            done = epoch in self.recorder.view_frames("umap")
            if epoch not in self._snapshots or done or epoch in self.pending:
                return False
            self.pending.append(epoch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, daemon=True, name=f"acmr-umap-{self._name}")
                self._thread.start()
        self.recorder.bump()
        self._queue.put(epoch)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued UMAP frame is computed; True if none is pending."""
        t_end = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if not self.pending:
                    return True
            if t_end is not None and time.monotonic() > t_end:
                return False
            time.sleep(0.05)

    # --- the UMAP thread --------------------------------------------------------------------------------
    def _work(self) -> None:
        from . import maps

        while True:
            try:
                epoch = self._queue.get(timeout=2.0)
            except queue.Empty:
                with self._lock:
                    if not self.pending:
                        self._thread = None
                        return
                continue
            frames = self.recorder.view_frames("umap")
            with self._lock:
                snap = self._snapshots.get(epoch)
            earlier = [e for e in frames if e < epoch]
            later = [e for e in frames if e > epoch]
            ref = frames[max(earlier)] if earlier else (frames[min(later)] if later else None)
            try:
                self._store(maps.umap_frame(snap, epoch, None if ref is None else ref.coords, **self._options))
            except Exception as e:  # umap missing or failing: PCA maps still work; say why
                self.error = f"UMAP failed for epoch {epoch}: {type(e).__name__}: {e}"
            finally:
                with self._lock:
                    if epoch in self.pending:
                        self.pending.remove(epoch)
                self.recorder.bump()
