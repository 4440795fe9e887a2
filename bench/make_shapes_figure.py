"""Draw assets/shapes_samples.png (sample pairs of the `shapes` dataset, one per class) and the example
query images in assets/examples/ (for the search tab).

    .venv/bin/python bench/make_shapes_figure.py

Everything comes from the generator itself (acmr_core/datasets/shapes.py), deterministically.
"""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from acmr_core.datasets import shapes  # noqa: E402

SCALE, WRAP, LINES = 3, 30, 6


def font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def samples_figure(path: Path, seed: int = 0) -> None:
    """One pair per class from the default ("normal") dataset: the picture, its label and its caption."""
    g = shapes.generate(200, 64, shapes.PRESETS["normal"], seed=seed)
    picks = [int(np.flatnonzero(g["true_labels"] == k)[0]) for k in range(len(shapes.CLASSES))]
    cell_w, img = 64 * SCALE + 24, 64 * SCALE
    cell_h = 26 + img + 8 + LINES * 17 + 10
    cols = 5
    rows = (len(picks) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h + 40), "white")
    d = ImageDraw.Draw(sheet)
    d.text((12, 10), "shapes: sample image-caption pairs (difficulty 'normal'; label above each picture)",
           fill="black", font=font(18))
    for n, i in enumerate(picks):
        x, y = (n % cols) * cell_w + 12, (n // cols) * cell_h + 40
        label = shapes.CLASSES[g["labels"][i]]
        d.text((x, y + 2), f"label: {label}", fill=(30, 30, 120), font=font(16))
        sheet.paste(Image.fromarray(g["pixels"][i]).resize((img, img), Image.NEAREST), (x, y + 26))
        lines = textwrap.wrap(str(g["captions"][i]), WRAP)[:LINES]
        for k, line in enumerate(lines):
            d.text((x, y + 26 + img + 8 + 17 * k), line, fill=(40, 40, 40), font=font(14))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    print(f"wrote {path} ({sheet.size[0]}x{sheet.size[1]})")


def example_queries(folder: Path, seed: int = 7) -> None:
    """Clean example query pictures (no distractor or occlusion) at 128 px, named after their shape."""
    d = shapes.resolve_difficulty("normal", distractors=0, occlusion=0)
    folder.mkdir(parents=True, exist_ok=True)
    for k, shape in enumerate(["star", "circle", "cross", "heart", "arrow", "triangle"]):
        for attempt in range(20):  # the first draw whose colour stands out well (brown is dim on dark grounds)
            pixels, caption, a = shapes.make_pair(shape, np.random.default_rng([seed, k, attempt]), 128, d)
            if a["colour"] != "brown" and a["background"] not in ("dark grey", "grey"):
                break
        out = folder / f"{shape}_{a['colour']}.png"
        Image.fromarray(pixels).save(out, optimize=True)
        print(f"wrote {out}: {caption}")


if __name__ == "__main__":
    for old in (ROOT / "assets" / "examples").glob("*.png"):
        old.unlink()
    samples_figure(ROOT / "assets" / "shapes_samples.png")
    example_queries(ROOT / "assets" / "examples")
