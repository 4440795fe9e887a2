"""Hand-crafted image features: HOG (shape) + colour histograms (colour), via scikit-image.

Each image is converted to RGB and resized to `size` x `size` (bilinear; deterministic), then

  HOG      histograms of gradient orientations in 8x8-pixel cells, normalised over 2x2-cell blocks, on
           the grey image: edges and outlines, i.e. *shape* (1,764 numbers at 64 px).
  colour   a hue histogram weighted by saturation (which colours, ignoring greys) and a brightness
           histogram (16 numbers): *colour*, with no idea of shape.

Both parts are L2-normalised and concatenated (the colour part scaled by `color_weight`). No training,
no weights, no network: the offline counterpart of the paper's SIFT / VGG image features.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from . import Encoder, register_encoder


@register_encoder("hog_color", modality="image")
class HogColor(Encoder):
    def __init__(self, size: int = 64, orientations: int = 9, cell: int = 8, block: int = 2,
                 hue_bins: int = 12, value_bins: int = 4, color_weight: float = 1.0):
        super().__init__(size=int(size), orientations=int(orientations), cell=int(cell), block=int(block),
                         hue_bins=int(hue_bins), value_bins=int(value_bins), color_weight=float(color_weight))
        if self.params["size"] < self.params["cell"] * self.params["block"]:
            raise ValueError(f"hog_color: size {size} is smaller than one HOG block ({cell * block} px)")

    def prepare(self, image: Image.Image) -> np.ndarray:
        """Any PIL image -> (size, size, 3) float array in [0, 1]."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"hog_color expects PIL images, got {type(image).__name__}")
        if image.mode in ("I", "I;16", "F"):  # 16-bit / float greys: scale to 8 bits first
            a = np.asarray(image, dtype=np.float64)
            a = (a - a.min()) / max(a.max() - a.min(), 1e-9) * 255
            image = Image.fromarray(a.astype(np.uint8))
        s = self.params["size"]
        image = image.convert("RGB").resize((s, s), Image.BILINEAR)
        return np.asarray(image, dtype=np.float32) / 255.0

    def hog(self, rgb: np.ndarray) -> np.ndarray:
        from skimage.feature import hog

        grey = rgb @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
        p = self.params
        return hog(grey, orientations=p["orientations"], pixels_per_cell=(p["cell"], p["cell"]),
                   cells_per_block=(p["block"], p["block"]), block_norm="L2-Hys", feature_vector=True)

    def colour(self, rgb: np.ndarray) -> np.ndarray:
        from skimage.color import rgb2hsv

        hsv = rgb2hsv(rgb).reshape(-1, 3)
        hue, _ = np.histogram(hsv[:, 0], bins=self.params["hue_bins"], range=(0, 1), weights=hsv[:, 1] * hsv[:, 2])
        val, _ = np.histogram(hsv[:, 2], bins=self.params["value_bins"], range=(0, 1))
        return np.concatenate([hue / max(hue.sum(), 1e-9), val / len(hsv)])

    def encode(self, items) -> np.ndarray:
        rows = []
        for image in items:
            rgb = self.prepare(image)
            h, c = self.hog(rgb), self.colour(rgb)
            h = h / max(np.linalg.norm(h), 1e-9)
            c = self.params["color_weight"] * c / max(np.linalg.norm(c), 1e-9)
            rows.append(np.concatenate([h, c]))
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim)

    @property
    def dim(self) -> int:
        p = self.params
        cells = p["size"] // p["cell"]
        blocks = cells - p["block"] + 1
        return blocks * blocks * p["block"] ** 2 * p["orientations"] + p["hue_bins"] + p["value_bins"]
