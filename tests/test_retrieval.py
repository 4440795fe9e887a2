"""acmr_core.retrieval: query checks (every bad input), ranking, galleries, and loading from a checkpoint."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from acmr_core import retrieval as R
from acmr_core.checkpoints import CheckpointError, save_checkpoint
from acmr_core.config import ACMRConfig
from acmr_core.data import load_dataset
from acmr_core.model import ACMR
from acmr_core.retrieval import QueryError, SearchIndex, check_k, clean_text, load_image


def png_bytes(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


# --- images ---------------------------------------------------------------------------------------


def test_plain_rgb_image_passes_unchanged():
    img, notes = load_image(Image.new("RGB", (40, 30), (10, 20, 30)))
    assert img.mode == "RGB" and img.size == (40, 30) and notes == []


def test_not_an_image_is_refused_with_a_clear_message(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, I am not a picture")
    with pytest.raises(QueryError, match="not an image"):
        load_image(str(p))
    with pytest.raises(QueryError, match="not an image"):
        load_image(b"%PDF-1.4 not an image either")


def test_empty_and_missing_files_are_refused(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(QueryError, match="empty"):
        load_image(str(p))
    with pytest.raises(QueryError, match="missing"):
        load_image(str(tmp_path / "gone.png"))
    with pytest.raises(QueryError, match="No image"):
        load_image(None)


def test_corrupt_image_is_refused():
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(QueryError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])
    broken = bytearray(data)
    broken[60:200] = b"\x00" * 140
    with pytest.raises(QueryError):
        load_image(bytes(broken))


def test_animated_image_gives_its_first_frame():
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img, notes = load_image(buf.getvalue())
    assert img.mode == "RGB" and img.getpixel((5, 5))[0] > 200  # red: the first frame
    assert any("animated" in n for n in notes)


def test_16bit_image_is_scaled_to_8_bits():
    a = (np.linspace(0, 65535, 48 * 48).reshape(48, 48)).astype(np.uint16)
    data = png_bytes(Image.fromarray(a))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    img, notes = load_image(data)
    assert img.mode == "RGB"
    px = np.asarray(img)
    assert px.min() == 0 and px.max() == 255
    assert any("16-bit" in n for n in notes)


def test_grayscale_is_converted_and_said():
    img, notes = load_image(png_bytes(Image.new("L", (20, 20), 128)))
    assert img.mode == "RGB" and any("grayscale" in n for n in notes)


def test_rgba_transparency_becomes_white():
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    img, notes = load_image(png_bytes(rgba))
    assert img.mode == "RGB"
    assert img.getpixel((10, 10)) == (255, 255, 255) and img.getpixel((0, 0)) == (255, 0, 0)
    assert any("Transparent" in n for n in notes)


def test_palette_and_cmyk_images_convert():
    p = Image.new("RGB", (16, 16), (0, 128, 255)).convert("P")
    assert load_image(png_bytes(p))[0].mode == "RGB"
    cmyk = Image.new("CMYK", (16, 16), (0, 100, 200, 0))
    assert load_image(png_bytes(cmyk, "JPEG"))[0].mode == "RGB"


def test_large_image_is_downscaled():
    img, notes = load_image(Image.new("RGB", (3000, 1500), (0, 0, 0)))
    assert max(img.size) == R.MAX_IMAGE_SIDE and img.size == (1024, 512)
    assert any("downscaled" in n for n in notes)


def test_image_beyond_the_pixel_limit_is_refused():
    # 8000 x 8000 = 64 megapixels, over the 50 MP limit; a 1-bit PNG of it is only a few kB
    data = png_bytes(Image.new("1", (8000, 8000), 0))
    assert len(data) < 100_000
    with pytest.raises(QueryError, match="megapixels"):
        load_image(data)


def test_file_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "MAX_FILE_BYTES", 1000)
    p = tmp_path / "big.png"
    p.write_bytes(png_bytes(Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))))
    with pytest.raises(QueryError, match="MB"):
        load_image(str(p))


def test_numpy_arrays_are_accepted():
    img, _ = load_image(np.zeros((10, 12, 3), np.float32))
    assert img.size == (12, 10) and img.mode == "RGB"
    with pytest.raises(QueryError):
        load_image(np.zeros((0, 3)))


# --- text and k -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t  \n"])
def test_empty_text_is_refused(text):
    with pytest.raises(QueryError, match="empty"):
        clean_text(text)


def test_long_text_is_truncated_and_said():
    text, notes = clean_text("star " * 400)
    assert len(text) <= R.MAX_TEXT_CHARS and text.startswith("star star")
    assert len(notes) == 1 and f"{R.MAX_TEXT_CHARS} characters" in notes[0]


def test_text_whitespace_is_normalised():
    assert clean_text("  a   red\nstar ")[0] == "a red star"


@pytest.mark.parametrize("k", [0, -3, 101, 1000, "ten", None, 2.5, float("nan"), True])
def test_k_out_of_range_is_refused(k):
    with pytest.raises(QueryError, match="k must"):
        check_k(k, 500)


def test_k_is_bounded_by_the_gallery():
    assert check_k(5, 500) == 5 and check_k("7", 500) == 7 and check_k(3.0, 10) == 3
    with pytest.raises(QueryError, match="between 1 and 8"):
        check_k(9, 8)


# --- an index on a small shapes dataset -----------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_small():
    return load_dataset("shapes", n_pairs=200, progress=False)


@pytest.fixture(scope="module")
def index(shapes_small):
    torch.manual_seed(0)
    cfg = ACMRConfig(image_layers=[64], text_layers=[32], common_dim=16)
    model = ACMR(shapes_small.image_features.shape[1], shapes_small.text_features.shape[1], 10, cfg)
    return SearchIndex(model, shapes_small)


def test_text_search_returns_ranked_images_of_the_test_split(index, shapes_small):
    res = index.search_by_text("a red star in the corner", k=7)
    assert res.query_modality == "text" and len(res.hits) == 7
    assert all(h.modality == "image" and h.split == "test" for h in res.hits)
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)
    assert res.predicted_class in shapes_small.class_names
    for h in res.hits:
        assert h.caption == shapes_small.captions[h.index]
        assert h.class_name == shapes_small.class_names[shapes_small.labels[h.index]]
        assert h.matches_prediction == (h.class_name == res.predicted_class)
    d = res.to_dict()
    json.dumps(d)
    assert {"id", "caption", "class", "score", "rank", "matches_predicted_class"} <= set(d["results"][0])


def test_scores_are_cosine_similarities_in_the_common_space(index, shapes_small):
    res = index.search_by_text("a blue circle", k=3)
    feats = index.encoders["text"].encode(["a blue circle"])
    q = index.model.embed(feats, "text")[0]
    g = index.model.embed(shapes_small.image_features[[h.index for h in res.hits]], "image")
    cos = g @ q / (np.linalg.norm(g, axis=1) * np.linalg.norm(q))
    assert np.allclose(cos, [h.score for h in res.hits], atol=1e-4)
    # and no test image scores higher than the first hit
    all_test = index.model.embed(shapes_small.image_features[index.rows], "image")
    all_cos = all_test @ q / (np.linalg.norm(all_test, axis=1) * np.linalg.norm(q))
    assert all_cos.max() <= res.hits[0].score + 1e-4


def test_image_search_returns_captions_and_same_modality(index, shapes_small):
    row = int(index.rows[0])
    res = index.search_by_image(shapes_small.images[row], k=5, same_modality=True)
    assert [h.modality for h in res.hits] == ["text"] * 5
    assert [h.modality for h in res.same_modality] == ["image"] * 5
    assert res.same_modality[0].index == row  # an image is its own nearest image


def test_gallery_may_add_the_training_split(index, shapes_small):
    n_test = int((shapes_small.split == "test").sum())
    res = index.search_by_text("a star", k=50, splits=("test", "train"))
    assert res.gallery_size == n_test + int((shapes_small.split == "train").sum())
    assert {h.split for h in res.hits} <= {"train", "test"}
    with pytest.raises(QueryError, match="unknown split"):
        index.search_by_text("a star", splits=("holdout",))


def test_unknown_words_say_which_words_are_known(index):
    with pytest.raises(QueryError) as e:
        index.search_by_text("xylophone quasar zebra")
    msg = str(e.value)
    assert "xylophone" in msg and "star" in msg and "triangle" in msg and "circle" in msg
    res = index.search_by_text("a zebra star")  # partly known: searched, the unknown word is named
    assert any("zebra" in n for n in res.notes)


def test_k_checked_before_encoding(index):
    with pytest.raises(QueryError, match="k must"):
        index.search_by_text("a star", k=0)
    with pytest.raises(QueryError, match="k must"):
        index.search_by_image(Image.new("RGB", (8, 8)), k=10_000)


def test_features_only_dataset_cannot_be_queried(synthetic):
    model = ACMR(synthetic.image_features.shape[1], synthetic.text_features.shape[1], 5,
                 ACMRConfig(image_layers=[8], text_layers=[8], common_dim=4))
    idx = SearchIndex(model, synthetic)
    with pytest.raises(QueryError, match="no text encoder"):
        idx.search_by_text("anything")


def test_from_checkpoint_restores_dataset_and_encoders(tmp_path, shapes_small, index):
    cfg = ACMRConfig(image_layers=[64], text_layers=[32], common_dim=16)
    save_checkpoint(tmp_path / "ck", index.model, cfg, shapes_small.class_names, dataset_info=shapes_small.info,
                    encoders=shapes_small.encoders)
    loaded = SearchIndex.from_checkpoint(tmp_path / "ck")
    a = index.search_by_text("a small green hexagon", k=5)
    b = loaded.search_by_text("a small green hexagon", k=5)
    assert [h.index for h in a.hits] == [h.index for h in b.hits]
    assert np.allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-5)
    assert loaded.meta["checkpoint_path"] == str(tmp_path / "ck")


def test_from_checkpoint_uses_the_checkpoint_encoder_state(tmp_path, shapes_small, index):
    """If the data's fitted text encoder differs from the checkpoint's, the gallery texts are re-encoded."""
    from acmr_core.encoders import make_encoder

    cfg = ACMRConfig(image_layers=[64], text_layers=[32], common_dim=16)
    other = make_encoder("tfidf", **shapes_small.encoders["text"].params)
    other.fit([shapes_small.captions[i] for i in np.flatnonzero(shapes_small.split == "train")])
    assert other.dim == shapes_small.text_features.shape[1]
    other.vectorizer.idf_ = other.vectorizer.idf_ * np.linspace(0.5, 2.0, len(other.vectorizer.idf_))
    save_checkpoint(tmp_path / "ck2", index.model, cfg, shapes_small.class_names, dataset_info=shapes_small.info,
                    encoders={"image": shapes_small.encoders["image"], "text": other})
    loaded = SearchIndex.from_checkpoint(tmp_path / "ck2")
    assert any("re-encoded" in n for n in loaded.meta["notes"])
    assert np.allclose(loaded.ds.text_features, other.encode(shapes_small.captions), atol=1e-6)


def test_from_checkpoint_refuses_one_that_does_not_fit(tmp_path, shapes_small):
    cfg = ACMRConfig(image_layers=[8], text_layers=[8], common_dim=4)
    wrong = ACMR(shapes_small.image_features.shape[1] + 1, shapes_small.text_features.shape[1], 10, cfg)
    save_checkpoint(tmp_path / "bad", wrong, cfg, shapes_small.class_names, dataset_info=shapes_small.info,
                    encoders=shapes_small.encoders)
    with pytest.raises(CheckpointError, match="does not fit"):
        SearchIndex.from_checkpoint(tmp_path / "bad")
    with pytest.raises(CheckpointError):
        SearchIndex.from_checkpoint(tmp_path / "nothing-here")


def test_from_checkpoint_reports_an_unloadable_dataset(tmp_path, shapes_small, index):
    cfg = ACMRConfig(image_layers=[64], text_layers=[32], common_dim=16)
    info = {"dataset": "wikipedia", "data_dir": str(tmp_path / "missing")}
    save_checkpoint(tmp_path / "ck3", index.model, cfg, shapes_small.class_names, dataset_info=info)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        SearchIndex.from_checkpoint(tmp_path / "ck3")


def test_known_words_puts_class_names_first(index):
    words = index.known_words()
    assert words[:3] == ["circle", "square", "triangle"]
    assert "the" not in words


def test_dataset_from_info_uses_recorded_loader_options(tmp_path, monkeypatch):
    from acmr_core import data as D

    seen = {}

    def fake(**kw):
        seen.update(kw)
        raise D.DataError("stop here")

    monkeypatch.setitem(D.DATASETS, "fake", fake)
    monkeypatch.setattr(D, "_discover", lambda: None)
    with pytest.raises(D.DataError, match="stop here"):
        R.dataset_from_info({"dataset": "fake", "options": {"data_dir": "/x", "seed": 3}})
    assert seen == {"data_dir": "/x", "seed": 3}
    with pytest.raises(D.DataError, match="does not record"):
        R.dataset_from_info({})


def test_dataset_from_info_reloads_shapes_identically(shapes_small):
    again = R.dataset_from_info(shapes_small.info)
    assert np.array_equal(again.labels, shapes_small.labels)
    assert np.allclose(again.image_features, shapes_small.image_features)
    assert list(again.captions) == list(shapes_small.captions)
