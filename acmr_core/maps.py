"""2-D maps of the common space, for watching ACMR learn.

A *frame* is the common-space embedding of a fixed sample of validation pairs at one epoch: s image
embeddings and the s text embeddings of the same pairs (the trainer's `EpochEvent.snapshot`). A map
stacks them into 2s points (images first, then texts) and projects them to 2-D.

Two projections:
  PCA   milliseconds; refreshed live every epoch. `pca_frame` fits on one frame; `pca_frames` fits one
        PCA on all frames together (a shared axis system, so frames are comparable as they are).
  UMAP  seconds; computed at chosen epochs. `umap_frame` initialises each frame from the previous
        frame's layout.
Successive frames are aligned (orthogonal Procrustes: rotation/reflection, scale and shift) onto the
previous one, so points do not jump between frames merely because a projection's axes flipped.

umap-learn compiles with numba on first use (tens of seconds); `warm_up()` does that in a background
thread at start-up, `warm_status()` says how far it got, and `_umap()` keeps the compiled code in numba's
on-disk cache, so only the first process after an install pays it. Nothing here imports a UI library.
"""
from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np

MODALITIES = ("image", "text")
# precomputed distances are deliberate here (see umap_frame); inverse_transform is never used
warnings.filterwarnings("ignore", message="using precomputed metric; inverse_transform will be unavailable")

_numba_cache_on = False
_numba_cache_lock = threading.Lock()
NUMBA_PREFIXES = ("umap", "pynndescent")   # the libraries whose numba functions the maps run


def _dispatchers(prefixes: tuple[str, ...] = NUMBA_PREFIXES):
    """(qualified name, numba dispatcher) of every compiled-on-use function in the loaded modules named `prefixes`."""
    import sys

    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(prefixes):
            continue
        for fn_name, fn in list(vars(module).items()):
            if isinstance(fn, Dispatcher):
                yield f"{name}.{fn_name}", fn


def enable_numba_cache(prefixes: tuple[str, ...] = NUMBA_PREFIXES) -> int:
    """Switch numba's on-disk cache on for the compiled functions of the loaded modules named `prefixes`.

    umap-learn and pynndescent mark almost none of their ~250 numba functions `cache=True`, so each process
    compiled them again on its first fit: 16 s for 160 points on the 2-core test machine. With the cache on,
    later processes load the machine code instead (that fit: 0.2 s). Numba keeps the files in `__pycache__`
    beside the library, or in NUMBA_CACHE_DIR. A function that cannot be cached just compiles as before.
    Returns how many functions were switched on.

    Seen on the 2-core machine, cause not found: with umap's `parallel=True` functions loaded from the cache, the
    in-process demo run (bench/bench_app.py) took 8.1-8.4 s instead of 7.0-7.3 s for the same CPU time, though no
    frame was slower. Leaving those functions uncached kept 7.0 s but brought back ~15 s of compilation per process;
    served with Chromium watching, both took 11.8-12.3 s."""
    from numba.core.caching import NullCache

    n = 0
    for _, fn in _dispatchers(prefixes):
        if isinstance(fn._cache, NullCache):
            try:
                fn.enable_caching()
                n += 1
            except Exception:  # noqa: BLE001 - e.g. no writable cache folder: compiled per process, as before
                pass
    return n


def _umap():
    """umap-learn, with numba's on-disk cache switched on once per process (enable_numba_cache)."""
    global _numba_cache_on
    import umap

    with _numba_cache_lock:
        if not _numba_cache_on:
            _numba_cache_on = True
            try:
                enable_numba_cache()
            except Exception:  # noqa: BLE001 - another numba: umap still works, compiled per process
                pass
    return umap


@dataclass
class MapFrame:
    """2-D coordinates of one frame: rows 0..s-1 are images, s..2s-1 the texts of the same pairs."""

    epoch: int
    coords: np.ndarray      # (2s, 2) float32
    labels: np.ndarray      # (2s,) class index (or (2s, c) multi-hot)
    modality: np.ndarray    # (2s,) "image" / "text"
    index: np.ndarray       # (2s,) dataset row of each point's pair
    method: str             # "pca" or "umap"
    seconds: float = 0.0    # time the projection took

    @property
    def n_pairs(self) -> int:
        return len(self.coords) // 2


def stack(snapshot: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(points, labels, modality, index) of a snapshot: images first, then texts."""
    img, txt = np.asarray(snapshot["image"], np.float32), np.asarray(snapshot["text"], np.float32)
    if img.shape != txt.shape or img.ndim != 2:
        raise ValueError(f"snapshot image {img.shape} and text {txt.shape} embeddings must be equal 2-D arrays")
    labels = np.asarray(snapshot["labels"])
    index = np.asarray(snapshot.get("index", np.arange(len(img))))
    s = len(img)
    return (np.concatenate([img, txt]), np.concatenate([labels, labels]),
            np.array(["image"] * s + ["text"] * s), np.concatenate([index, index]))


# --- PCA ---------------------------------------------------------------------------------------------

def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1, user_api="blas")
    except Exception:  # threadpoolctl missing: run as is
        import contextlib

        return contextlib.nullcontext()


def pca_fit(x: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the top principal axes (n_components, d) of x, with a deterministic sign."""
    x = np.asarray(x, np.float64)
    mean = x.mean(0)
    xc = x - mean
    with _one_blas_thread():       # tiny matrices: threads only add contention on a busy machine
        evals, evecs = np.linalg.eigh(xc.T @ xc)      # d x d covariance: cheaper than an SVD of n x d
    comps = evecs[:, ::-1][:, :n_components].T
    if comps.shape[0] < n_components:  # fewer dimensions than components: pad with zero axes
        comps = np.vstack([comps, np.zeros((n_components - comps.shape[0], x.shape[1]))])
    # sign convention: the largest-magnitude loading of each axis is positive
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(1)])
    signs[signs == 0] = 1
    return mean, comps * signs[:, None]


def pca_project(x: np.ndarray, mean: np.ndarray, comps: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, np.float64) - mean) @ comps.T).astype(np.float32)


def normalize(coords: np.ndarray) -> np.ndarray:
    """Centred, scaled to a root-mean-square radius of 1: every frame gets the same extent."""
    c = np.asarray(coords, np.float64)
    c = c - c.mean(0)
    r = np.sqrt((c ** 2).sum(1).mean())
    return (c / r if r > 0 else c).astype(np.float32)


def procrustes_align(y: np.ndarray, ref: np.ndarray, scale: bool = False) -> np.ndarray:
    """y moved onto ref by the best rotation/reflection and shift of y (and, with scale=True, a uniform
    scale): same points, same rows. The shape of y is unchanged, only its pose, so a frame does not spin or
    flip against the last. (The least-squares scale shrinks dissimilar frames, hence off by default.)"""
    y, ref = np.asarray(y, np.float64), np.asarray(ref, np.float64)
    if y.shape != ref.shape:
        raise ValueError(f"cannot align {y.shape} onto {ref.shape}: frames must hold the same points")
    my, mr = y.mean(0), ref.mean(0)
    a, b = y - my, ref - mr
    u, s, vt = np.linalg.svd(a.T @ b)
    r = u @ vt
    norm = (a ** 2).sum()
    k = (s.sum() / norm) if (scale and norm > 0) else 1.0
    return (k * a @ r + mr).astype(np.float32)


def pca_frame(snapshot: dict, epoch: int = 0, previous: np.ndarray | None = None) -> MapFrame:
    """PCA fitted on this frame alone, aligned onto the previous frame's coordinates if given."""
    t = time.perf_counter()
    x, labels, mod, index = stack(snapshot)
    coords = normalize(pca_project(x, *pca_fit(x)))
    if previous is not None and previous.shape == coords.shape:
        coords = procrustes_align(coords, previous)
    return MapFrame(epoch, coords, labels, mod, index, "pca", time.perf_counter() - t)


def pca_frames(snapshots: dict[int, dict]) -> dict[int, MapFrame]:
    """One PCA fitted on all frames together; each frame projected onto the same two axes."""
    t = time.perf_counter()
    stacked = {e: stack(s) for e, s in sorted(snapshots.items())}
    if not stacked:
        return {}
    mean, comps = pca_fit(np.concatenate([v[0] for v in stacked.values()]))
    coords = {e: pca_project(x, mean, comps) for e, (x, *_) in stacked.items()}
    allc = np.concatenate(list(coords.values()))
    r = np.sqrt(((allc - allc.mean(0)) ** 2).sum(1).mean()) or 1.0   # one scale for all: spreads stay comparable
    per = (time.perf_counter() - t) / len(stacked)
    return {e: MapFrame(e, ((coords[e] - allc.mean(0)) / r).astype(np.float32), y, m, i, "pca", per)
            for e, (x, y, m, i) in stacked.items()}


# --- UMAP --------------------------------------------------------------------------------------------

UMAP_EPOCHS = 200   # layout epochs per frame (umap's own default is 500 below 10k points): ~2x faster, same picture
UMAP_EPOCHS_FROM_PREVIOUS = 100   # a frame started from the previous layout is nearly in place: half the epochs
                                  # (the layout loop is ~85% of a frame's time; 800 points: 0.52 -> 0.29 s CPU)


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """(n, n) cosine distances 1 - cos(x_i, x_j), float32, zero diagonal."""
    x = np.asarray(x, np.float32)
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    with _one_blas_thread():
        d = 1.0 - u @ u.T
    np.clip(d, 0.0, 2.0, out=d)
    np.fill_diagonal(d, 0.0)
    return d


def _umap_kwargs(n: int, n_neighbors: int, min_dist: float, seed: int | None, n_jobs: int = 1,
                 metric: str = "cosine") -> dict:
    kw = dict(n_components=2, n_neighbors=max(2, min(n_neighbors, n - 1)), min_dist=min_dist, metric=metric)
    if seed is not None:
        kw["random_state"] = seed      # reproducible (umap then runs single-threaded anyway)
    else:
        kw["n_jobs"] = n_jobs          # 1 by default: on 2 cores that also train, threads were slower, not faster
    return kw


def _as_init(previous: np.ndarray) -> np.ndarray:
    """A previous layout rescaled to UMAP's usual extent (|coords| <= 10) for use as an initialisation."""
    p = np.asarray(previous, np.float64)
    p = p - p.mean(0)
    m = np.abs(p).max()
    return (p * (10.0 / m) if m > 0 else p).astype(np.float32)


def umap_frame(snapshot: dict, epoch: int = 0, previous: np.ndarray | None = None, n_neighbors: int = 15,
               min_dist: float = 0.1, n_epochs: int | None = None, seed: int | None = None,
               n_jobs: int = 1) -> MapFrame:
    """UMAP of one frame. With `previous` (coordinates of the same points in the last frame), the layout
    starts from there and is Procrustes-aligned onto it afterwards, so successive frames change smoothly."""
    umap = _umap()
    t = time.perf_counter()
    x, labels, mod, index = stack(snapshot)
    # cosine distances computed here and passed as "precomputed": umap-learn computes them for small data with a
    # Python-level loop over all pairs (5.7 s of 6.5 s for 2,000 points); numpy takes milliseconds
    kw = _umap_kwargs(len(x), n_neighbors, min_dist, seed, n_jobs, metric="precomputed")
    kw["n_epochs"] = n_epochs or UMAP_EPOCHS
    if previous is not None and np.shape(previous) == (len(x), 2):
        kw["init"] = _as_init(previous)
        kw["n_epochs"] = n_epochs or UMAP_EPOCHS_FROM_PREVIOUS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs / random_state, precomputed and spectral-init chatter
        coords = normalize(umap.UMAP(**kw).fit_transform(cosine_distances(x)))
    if previous is not None and np.shape(previous) == coords.shape:
        coords = procrustes_align(coords, previous)
    return MapFrame(epoch, coords, labels, mod, index, "umap", time.perf_counter() - t)


def umap_frames(snapshots: dict[int, dict], **kw) -> dict[int, MapFrame]:
    """UMAP of several frames in epoch order, each initialised from the previous one."""
    out, prev = {}, None
    for e, snap in sorted(snapshots.items()):
        out[e] = umap_frame(snap, e, prev, **kw)
        prev = out[e].coords
    return out


# --- warm-up -----------------------------------------------------------------------------------------

_warm = {"state": "idle", "seconds": None, "error": None, "started": None}
_warm_lock = threading.Lock()
_warm_done = threading.Event()


def _warm_snapshot() -> dict:
    x = np.random.default_rng(0).normal(size=(120, 16)).astype(np.float32)
    return {"image": x[:60], "text": x[60:] + 1.0, "labels": np.arange(60) % 3, "index": np.arange(60)}


def _warm_fits() -> None:
    """The UMAP fits of the app's maps, on a tiny frame: what compiles their numba code."""
    snap = _warm_snapshot()
    first = umap_frame(snap, n_epochs=30)                              # spectral init path
    umap_frame(snap, 1, previous=first.coords, n_epochs=30)            # init-from-previous path


def precompile() -> dict:
    """Compile umap-learn's code for the app's maps (umap_frame's two paths, as `warm_up` does in the background),
    in this thread, and keep it in numba's on-disk cache (enable_numba_cache). `python -m acmr_core warm-up` runs
    it once after an install (scripts/setup.sh), so that no later process compiles: on the 2-core machine the
    app's start-up warm-up took 61 s in a fresh environment, and 2 s once cached.
    Returns {"seconds": ..., "cached": the compiled functions whose code is now on disk, "uncached": the rest}."""
    import os

    t = time.perf_counter()
    _warm_fits()
    cached, uncached = set(), set()
    for name, fn in _dispatchers():
        if fn.signatures:
            index = getattr(getattr(fn._cache, "_cache_file", None), "_index_path", None)
            (cached if index and os.path.exists(index) else uncached).add(name)
    return {"seconds": time.perf_counter() - t, "cached": sorted(cached), "uncached": sorted(uncached)}


def _warm_run() -> None:
    t = time.perf_counter()
    try:
        _warm_fits()
        with _warm_lock:
            _warm.update(state="ready", seconds=time.perf_counter() - t)
    except Exception as e:  # umap missing or broken: maps fall back to PCA, and say why
        with _warm_lock:
            _warm.update(state="failed", seconds=time.perf_counter() - t, error=f"{type(e).__name__}: {e}")
    finally:
        _warm_done.set()


def warm_up() -> threading.Thread | None:
    """Import umap-learn and compile its numba code in a daemon thread (once per process)."""
    with _warm_lock:
        if _warm["state"] != "idle":
            return None
        _warm.update(state="warming", started=time.time())
    try:  # see live._preimport: import pandas/sklearn here, not half-way in the thread while others need them
        import pandas  # noqa: F401
        import sklearn.utils  # noqa: F401
    except ImportError:
        pass
    th = threading.Thread(target=_warm_run, daemon=True, name="umap-warm-up")
    th.start()
    return th


def warm_status() -> dict:
    """{"state": idle|warming|ready|failed, "seconds": float|None, "error": str|None}."""
    with _warm_lock:
        return dict(_warm)


def wait_warm(timeout: float | None = None) -> bool:
    """Block until the warm-up finished (True) or the timeout passed (False)."""
    return _warm_done.wait(timeout)
