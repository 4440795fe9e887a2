"""Bring-your-own-data: a folder of images + a CSV, bad rows reported with row numbers, cached features."""
import csv
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from acmr_core.data import DataError, load_dataset
from acmr_core.encoders import Encoder, EncoderError, register_encoder


@register_encoder("fragile_text_test", modality="text")
class FragileText(Encoder):
    """Counts encoded captions and breaks on the word BOOM (to check that failures name the row)."""

    calls = 0

    def encode(self, items):
        FragileText.calls += len(items)
        if any("BOOM" in t for t in items):
            raise ValueError("cannot encode BOOM")
        return np.array([[len(t), t.count(" ")] for t in items], np.float32)

    @property
    def dim(self):
        return 2


def draw(path, kind, colour, size=(40, 30)):
    im = Image.new("RGB", size, (250, 250, 250))
    d = ImageDraw.Draw(im)
    box = [8, 5, 32, 25]
    (d.ellipse if kind == "circle" else d.rectangle)(box, fill=colour)
    im.save(path)


def make_folder(root, n_per_class=6, split=False, extra_rows=()):
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in ("circle", "square"):
        for i in range(n_per_class):
            name = f"img/{kind}{i}.png"
            draw(root / name, kind, (200, 40 * i, 40))
            row = {"image": name, "caption": f"a {kind} number {i}", "label": kind}
            if split:
                row["split"] = "test" if i < 2 else "train"
            rows.append(row)
    rows.extend(extra_rows)
    with open(root / "pairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def load(root, **kw):
    opts = dict(data_dir=root, cache_dir=root / "cache", progress=False)
    opts.update(kw)
    return load_dataset("folder", **opts)


@pytest.mark.slow
def test_good_folder_without_split_column(tmp_path):
    make_folder(tmp_path)
    ds = load(tmp_path)
    assert ds.class_names == ["circle", "square"]
    assert ds.image_features.shape[0] == ds.text_features.shape[0] == 12
    # deterministic stratified test split: 20% of each class (at least one)
    for k in range(2):
        assert (ds.split[ds.labels == k] == "test").sum() == 1
    np.testing.assert_array_equal(ds.split, load(tmp_path, cache_dir=tmp_path / "other").split)
    assert ds.images[3].mode == "RGB" and ds.images[3].size == (40, 30)
    assert ds.captions[0] == "a circle number 0"
    assert ds.info["dataset"] == "folder" and ds.encoders["text"].name == "tfidf"
    again = load_dataset("folder", cache_dir=tmp_path / "cache", progress=False, **ds.info["options"])
    np.testing.assert_array_equal(again.split, ds.split)
    np.testing.assert_array_equal(again.image_features, ds.image_features)


@pytest.mark.slow
def test_split_column_is_used(tmp_path):
    make_folder(tmp_path, split=True)
    ds = load(tmp_path)
    assert (ds.split == "test").sum() == 4 and (ds.split == "train").sum() == 8
    train_words = set(ds.encoders["text"].terms)
    assert "circle" in train_words


def test_bad_rows_are_all_reported_with_row_numbers(tmp_path):
    make_folder(tmp_path, split=True, extra_rows=[
        {"image": "img/missing.png", "caption": "gone", "label": "circle", "split": "train"},       # row 13
        {"image": "img/corrupt.png", "caption": "broken", "label": "square", "split": "train"},     # row 14
        {"image": "img/circle0.png", "caption": "   ", "label": "circle", "split": "train"},       # row 15
        {"image": "img/square1.png", "caption": "fine", "label": "square", "split": "holdout"},    # row 16
    ])
    (tmp_path / "img" / "corrupt.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError) as e:
        load(tmp_path)
    msg = str(e.value)
    assert "4 bad row(s)" in msg
    assert "row 13 (img/missing.png): image file missing" in msg
    assert "row 14 (img/corrupt.png): unreadable image" in msg
    assert "row 15 (img/circle0.png): empty caption" in msg
    assert "row 16 (img/square1.png): unknown split 'holdout'" in msg
    assert "row 12" not in msg


def test_missing_columns_files_and_options(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load(tmp_path / "nope")
    with pytest.raises(DataError, match="no CSV"):
        load(tmp_path)
    (tmp_path / "a.csv").write_text("picture,caption,label\nx.png,hello,a\n")
    with pytest.raises(DataError, match="no 'image' column"):
        load(tmp_path)
    make_folder(tmp_path)
    with pytest.raises(DataError, match="several CSV"):
        load(tmp_path)
    (tmp_path / "a.csv").unlink()
    with pytest.raises(DataError, match="shuffle"):
        load(tmp_path, shuffle=True)


def test_encoding_failure_names_the_row(tmp_path):
    rows = make_folder(tmp_path)
    rows[4]["caption"] = "BOOM goes the caption"
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(EncoderError, match=r"row 5 \(img/circle4.png\).*BOOM"):   # (HOG: no photo model to load)
        load(tmp_path, image_encoder="hog_color", text_encoder="fragile_text_test")


def test_features_are_cached_and_refreshed_when_an_image_changes(tmp_path):
    make_folder(tmp_path)
    FragileText.calls = 0
    hog = dict(image_encoder="hog_color", text_encoder="fragile_text_test")   # (the default photo model: slow tests)
    a = load(tmp_path, **hog)
    assert FragileText.calls == 12
    b = load(tmp_path, **hog)
    assert FragileText.calls == 12  # from the cache
    np.testing.assert_array_equal(a.image_features, b.image_features)
    draw(tmp_path / "img" / "square2.png", "circle", (0, 0, 255))
    os.utime(tmp_path / "img" / "square2.png", ns=(1, 1))  # a different modification time
    c = load(tmp_path, **hog)
    assert FragileText.calls == 24  # re-encoded
    assert not np.array_equal(a.image_features, c.image_features)
