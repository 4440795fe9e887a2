"""Comparisons: the same seed, data and settings trained as several variants, one after the other.

`default_variants(config)` names the story the Compare tab tells: the adversary of the chosen game, no
adversary at all, and the paper's game when the chosen one is a different game. `ComparisonRun` trains
each variant as its own `live.TrainingRun` (so every variant has the live record, maps and all).
`variant_result(view)` reads what a finished (or running) variant measured, and `story(results)` turns
those numbers into sentences for people: the words follow the numbers, nothing is claimed in advance.
Nothing here imports a UI library.
"""
from __future__ import annotations

import threading

import numpy as np

from . import config as config_mod
from .config import ACMRConfig
from .live import ACTIVE, TrainingRun, _join

NO_ADV = "no adversary"
SAME = 0.02        # differences of mixing or probe below this are "about the same" in words
FOOLED = 0.60      # D's accuracy at or below this (over the last epoch's steps) counts as fooled


def games() -> dict:
    """The adversary games the config offers (name -> one-line help), or {} before there is a choice."""
    return dict(getattr(config_mod, "GAMES", {}) or {})


def game_of(cfg: ACMRConfig) -> str | None:
    return getattr(cfg, "game", None)


def default_game() -> str | None:
    return game_of(ACMRConfig())


def adversary_label(game: str | None) -> str:
    if game is None:
        return "with adversary"
    return "adversary · paper's game" if game == "paper" else f"adversary · {game}"


def default_variants(cfg: ACMRConfig) -> dict[str, dict]:
    """label -> config changes: the chosen game, no adversary, and the other of (default game, paper's game)."""
    chosen = game_of(cfg)
    out: dict[str, dict] = {adversary_label(chosen): {"use_adversarial": True}}
    out[NO_ADV] = {"use_adversarial": False}
    g = games()
    if chosen is not None:
        for other in (default_game(), "paper"):
            if other and other != chosen and other in g and adversary_label(other) not in out:
                out[adversary_label(other)] = {"use_adversarial": True, "game": other}
    return out


class ComparisonRun:
    """Variants of one config (same seed, same data), each a TrainingRun, trained one after the other."""

    def __init__(self, dataset, config: ACMRConfig | None = None, variants: dict[str, dict] | None = None,
                 **run_kwargs):
        """`variants`: label -> config changes (default: `default_variants(config)`). `run_kwargs` go to
        every TrainingRun (umap_epochs, dataset_label, ...)."""
        cfg = (config or ACMRConfig()).validate()
        self.config = cfg
        self.variants = dict(variants if variants is not None else default_variants(cfg))
        if not self.variants:
            raise ValueError("a comparison needs at least one variant")
        self.runs: dict[str, TrainingRun] = {
            label: TrainingRun(dataset, cfg.replace(**changes), name=label, **run_kwargs)
            for label, changes in self.variants.items()}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "ComparisonRun":
        self._thread = threading.Thread(target=self._run, daemon=True, name="acmr-comparison")
        self._thread.start()
        return self

    def _run(self) -> None:
        for run in self.runs.values():
            if self._stop.is_set():
                run.stop()
                continue
            run.start()
            run.join()

    def stop(self) -> None:
        self._stop.set()
        for run in self.runs.values():
            run.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every run to end; True if they have."""
        return _join(self._thread, timeout)

    @property
    def state(self) -> str:
        states = [r.state for r in self.runs.values()]
        if any(s in ACTIVE for s in states) or (self._thread is not None and self._thread.is_alive()):
            return "running"
        if all(s == "ready" for s in states):
            return "ready"
        if any(s == "failed" for s in states):
            return "failed"
        return "finished" if all(s == "finished" for s in states) else "stopped"

    def views(self) -> dict:
        return {label: run.view() for label, run in self.runs.items()}

    def results(self) -> dict[str, dict]:
        return {label: variant_result(v) for label, v in self.views().items()}


# --- what a variant measured ---------------------------------------------------------------------------------

def disc_acc_by_epoch(view) -> dict[int, float]:
    """Mean accuracy of the modality classifier D over each epoch's training steps (empty without D)."""
    s = view.steps
    ep, acc = np.asarray(s.get("epoch", [])), np.asarray(s.get("disc_acc", []), dtype=float)
    out = {}
    for e in np.unique(ep):
        a = acc[(ep == e) & np.isfinite(acc)]
        if len(a):
            out[int(e)] = float(a.mean())
    return out


def variant_result(view) -> dict:
    """The last epoch's validation numbers of one variant: mAP, probe, mixing, D accuracy (None if unmeasured)."""
    last = view.history[-1] if view.history else {}
    first = view.history[0] if view.history else {}
    d = disc_acc_by_epoch(view)
    cfg = view.config
    return {"epoch": last.get("epoch"), "map": last.get("val_avg"), "probe": last.get("probe"),
            "mixing": last.get("mixing"), "mixing_start": first.get("mixing"), "gap": last.get("gap"),
            "disc_acc": d[max(d)] if d else None, "adversary": bool(cfg.use_adversarial), "game": game_of(cfg),
            "state": view.state}


def _moved(a: float, b: float, up: str, down: str) -> str:
    if abs(b - a) < SAME:
        return f"stayed about the same ({a:.2f} → {b:.2f})"
    return f"{up if b > a else down} from {a:.2f} to {b:.2f}"


def story(results: dict[str, dict], baseline: str = NO_ADV) -> list[str]:
    """Sentences that say what the measured numbers show: each adversary against the no-adversary run,
    and, where it happened, the failure a class should see (D fooled, neighbours not mixed)."""
    base = results.get(baseline)
    if not base or base.get("map") is None:
        return []
    out = []
    for label, r in results.items():
        if label == baseline or r.get("map") is None or not r.get("adversary"):
            continue
        parts = []
        if r.get("mixing") is not None and base.get("mixing") is not None:
            parts.append("local mixing " + _moved(base["mixing"], r["mixing"], "rose", "fell"))
        if r.get("probe") is not None and base.get("probe") is not None:
            parts.append("the probe " + _moved(base["probe"], r["probe"], "rose", "fell"))
        parts.append(f"mAP {base['map']:.3f} → {r['map']:.3f}")
        line = f"**{label}** against no adversary: " + ", ".join(parts) + "."
        verdict = _verdict(r, base)
        out.append(line + (" " + verdict if verdict else ""))
    return out


def _verdict(r: dict, base: dict) -> str:
    mix, mix0, acc = r.get("mixing"), base.get("mixing"), r.get("disc_acc")
    probe, probe0 = r.get("probe"), base.get("probe")
    if mix is None or mix0 is None:
        return ""
    fooled = acc is not None and acc <= FOOLED
    if mix < mix0 - SAME and fooled:
        return (f"It fooled D (accuracy {acc:.0%}) but local mixing fell from {mix0:.2f} to {mix:.2f}: the "
                "projectors fooled D by rearranging the space into separate image and text sub-clumps, not by "
                "mixing the modalities. A fooled discriminator does not mean mixed modalities.")
    if mix < mix0 - SAME:
        acc_txt = f" (D's accuracy {acc:.0%})" if acc is not None else ""
        return f"The adversary made images and texts *more* segregated locally{acc_txt}."
    if mix > mix0 + SAME and (probe is None or probe0 is None or probe <= probe0 + SAME):
        return "Here the adversary did its job: images and texts are more mixed than without it."
    return "On these numbers the adversary made little difference to how mixed the modalities are."
