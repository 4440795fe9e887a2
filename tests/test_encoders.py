"""The offline encoders (hog_color, tfidf), the registry and the batched encoding helpers."""
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from acmr_core.encoders import EncoderError, available_encoders, encoder_from_state, make_encoder
from acmr_core.features import ImageArray, ImageFiles, encode_images, encode_texts


def picture(colour=(200, 30, 30), size=(64, 64), shape="square", mode="RGB"):
    im = Image.new("RGB", size, (240, 240, 240))
    d = ImageDraw.Draw(im)
    w, h = size
    box = [w * 0.25, h * 0.25, w * 0.75, h * 0.75]
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=colour)
    return im.convert(mode)


CAPTIONS = ["a red square in the middle", "a small blue circle at the top", "a green star on a black background",
            "the red circle is large", "a blue square, tilted"]


def test_registry_lists_the_offline_and_clip_encoders():
    assert {"hog_color", "clip_image"} <= set(available_encoders("image"))
    assert {"tfidf", "clip_text"} <= set(available_encoders("text"))
    with pytest.raises(EncoderError, match="unknown encoder 'nope'"):
        make_encoder("nope")


def test_hog_color_fixed_size_finite_and_deterministic():
    enc = make_encoder("hog_color")
    ims = [picture(), picture((30, 30, 200), shape="circle"), picture(size=(200, 90))]
    a, b = enc.encode(ims), enc.encode(ims)
    assert a.shape == (3, enc.dim) and a.dtype == np.float32
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "1"])
def test_hog_color_accepts_any_mode_and_size(mode):
    enc = make_encoder("hog_color", size=48)
    im = picture(size=(123, 77)).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        im = Image.fromarray((np.asarray(im, dtype=np.uint16) * 200).astype(np.uint16))
    v = enc.encode([im])
    assert v.shape == (1, enc.dim) and np.isfinite(v).all()
    np.testing.assert_array_equal(v, enc.encode([im.copy()]))


def test_hog_color_separates_shape_from_colour():
    """Same shape in two colours: HOG part nearly equal, colour part different; and the reverse."""
    enc = make_encoder("hog_color")
    n_hog = enc.dim - 16
    red_sq, blue_sq, red_ci = enc.encode([picture((200, 30, 30)), picture((30, 30, 200)), picture((200, 30, 30), shape="circle")])
    assert np.abs(red_sq[n_hog:] - blue_sq[n_hog:]).sum() > 0.5
    assert np.abs(red_sq[:n_hog] - blue_sq[:n_hog]).sum() < np.abs(red_sq[:n_hog] - red_ci[:n_hog]).sum()
    assert np.abs(red_sq[n_hog:] - red_ci[n_hog:]).sum() < 0.3


def test_hog_color_state_round_trip():
    enc = make_encoder("hog_color", size=32, color_weight=2.0)
    state = json.loads(json.dumps(enc.state()))
    again = encoder_from_state(state)
    np.testing.assert_array_equal(enc.encode([picture()]), again.encode([picture()]))


def test_tfidf_fit_encode_and_json_state():
    enc = make_encoder("tfidf", min_df=1)
    with pytest.raises(EncoderError, match="not fitted"):
        enc.encode(["a red square"])
    enc.fit(CAPTIONS)
    v = enc.encode(CAPTIONS)
    assert v.shape == (len(CAPTIONS), enc.dim) and np.isfinite(v).all()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert "red" in enc.terms and "square" in enc.terms
    np.testing.assert_array_equal(enc.encode(["zebra xylophone"]), 0)  # words never seen in training

    state = json.loads(json.dumps(enc.state()))  # JSON-safe: no pickle anywhere
    assert state["name"] == "tfidf" and len(state["vocabulary"]) == len(state["idf"]) == enc.dim
    again = encoder_from_state(state)
    assert again.dim == enc.dim
    np.testing.assert_allclose(again.encode(CAPTIONS), v, atol=1e-6)
    np.testing.assert_array_equal(again.encode(["a red square"]), again.encode(["a red square"]))


def test_tfidf_vocabulary_comes_from_the_fitting_captions_only():
    enc = make_encoder("tfidf", min_df=1).fit(CAPTIONS[:2])
    assert "green" not in enc.terms and "star" not in enc.terms
    assert "blue" in enc.terms


def test_encode_helpers_check_modality_and_name_the_broken_item(tmp_path):
    img, txt = make_encoder("hog_color"), make_encoder("tfidf", min_df=1).fit(CAPTIONS)
    with pytest.raises(EncoderError, match="image encoder"):
        encode_images(txt, [picture()])
    with pytest.raises(EncoderError, match="text encoder"):
        encode_texts(img, CAPTIONS)
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"im{i}.png")
        picture().save(paths[-1])
    paths[3].write_bytes(b"this is not a png")
    with pytest.raises(EncoderError, match=r"item 3"):
        encode_images(img, ImageFiles(paths), batch_size=2)
    feats = encode_images(img, ImageFiles(paths[:3]), batch_size=2)
    assert feats.shape == (3, img.dim)


def test_image_array_gives_rgb_pil_images():
    pixels = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    arr = ImageArray(pixels)
    assert len(arr) == 4 and arr[2].mode == "RGB" and arr[2].size == (16, 16)
    np.testing.assert_array_equal(np.asarray(arr[2]), pixels[2])
    assert len(arr[1:3]) == 2
