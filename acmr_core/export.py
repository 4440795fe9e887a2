"""A run's numbers as CSV: one row per epoch, or one row per training step."""
from __future__ import annotations

import csv
import io

import numpy as np


def history_csv(history: list[dict]) -> str:
    """The epoch history (epoch 0 = before training), every column any row has."""
    cols: list[str] = []
    for r in history:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in history:
        w.writerow([_fmt(r.get(c)) for c in cols])
    return buf.getvalue()


def steps_csv(steps: dict) -> str:
    """The step series (name -> array of equal length), one row per step."""
    cols = list(steps)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for row in zip(*(steps[c] for c in cols)):
        w.writerow([_fmt(x) for x in row])
    return buf.getvalue()


def _fmt(x):
    if x is None:
        return ""
    if isinstance(x, float):
        return "" if x != x else f"{x:.6g}"
    if isinstance(x, np.floating):
        return "" if not np.isfinite(x) else f"{float(x):.6g}"
    return x
