"""open_clip encoders through open_clip's real loading path, with a tiny model config saved to a temp folder.

No mocking: a tiny architecture is registered with open_clip.add_model_config, its (random) weights are
saved as a file and as a 'local-dir' folder, and the encoders load them back like real CLIP weights.
"""
import json
import time

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow     # importing open_clip takes seconds (7 s in the quick loop here)

from acmr_core.encoders import EncoderError, encoder_from_state, make_encoder  # noqa: E402

TINY = {"embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def open_clip():
    """open_clip, imported by the tests that use it (importing it takes seconds: not at collection)."""
    return pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, open_clip):
    """Register two tiny architectures (acmr-tiny-test, and a wider one) and save weights of each."""
    d = tmp_path_factory.mktemp("clip")
    wide = json.loads(json.dumps(TINY))
    wide["vision_cfg"]["width"] = 96
    for name, cfg in (("acmr-tiny-test", TINY), ("acmr-tiny-wide-test", wide)):
        (d / f"{name}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(d / f"{name}.json")
    torch.manual_seed(0)
    model = open_clip.create_model("acmr-tiny-test")
    torch.save(model.state_dict(), d / "tiny.pt")
    torch.save(open_clip.create_model("acmr-tiny-wide-test").state_dict(), d / "wide.pt")
    folder = d / "tiny_folder"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY, "preprocess_cfg": {}}))
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(folder / "open_clip_model.safetensors"))
    return {"dir": d, "model": model.eval(), "file": d / "tiny.pt", "wide": d / "wide.pt", "folder": folder}


IMAGES = [Image.new("RGB", (80, 50), (200, 30, 30)), Image.new("L", (64, 64), 128),
          Image.new("RGB", (64, 64), (10, 200, 10))]
TEXTS = ["a red square", "a small blue circle", "a green star"]


def test_round_trip_from_a_local_file(tiny, open_clip):
    img = make_encoder("clip_image", model="acmr-tiny-test", pretrained=str(tiny["file"]))
    txt = make_encoder("clip_text", model="acmr-tiny-test", pretrained=str(tiny["file"]))
    v, t = img.encode(IMAGES), txt.encode(TEXTS)
    assert v.shape == (3, 64) == t.shape and img.dim == txt.dim == 64
    assert np.isfinite(v).all() and np.isfinite(t).all()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(v, img.encode(IMAGES))
    # the same numbers as the saved model itself computes
    _, _, preprocess = open_clip.create_model_and_transforms("acmr-tiny-test")
    tok = open_clip.get_tokenizer("acmr-tiny-test")
    with torch.no_grad():
        ref_v = tiny["model"].encode_image(torch.stack([preprocess(im.convert("RGB")) for im in IMAGES]))
        ref_t = tiny["model"].encode_text(tok(TEXTS))
    np.testing.assert_allclose(v, torch.nn.functional.normalize(ref_v, dim=-1).numpy(), atol=1e-5)
    np.testing.assert_allclose(t, torch.nn.functional.normalize(ref_t, dim=-1).numpy(), atol=1e-5)
    # a state (as saved with a checkpoint) rebuilds the same encoder
    again = encoder_from_state(json.loads(json.dumps(img.state())))
    np.testing.assert_array_equal(again.encode(IMAGES), v)


def test_round_trip_from_a_local_folder(tiny):
    from_file = make_encoder("clip_text", model="acmr-tiny-test", pretrained=str(tiny["file"]))
    from_dir = make_encoder("clip_text", pretrained=str(tiny["folder"]))
    np.testing.assert_allclose(from_dir.encode(TEXTS), from_file.encode(TEXTS), atol=1e-5)
    img = make_encoder("clip_image", pretrained=str(tiny["folder"]))
    assert img.encode(IMAGES[:1]).shape == (1, 64)
    assert "weights" in img.identity()  # the cache key follows the weight files


def test_wrong_architecture_is_refused(tiny):
    with pytest.raises(EncoderError, match="do not fit the architecture 'acmr-tiny-test'"):
        make_encoder("clip_image", model="acmr-tiny-test", pretrained=str(tiny["wide"]))


def test_no_weights_fails_fast_with_advice(monkeypatch, open_clip):  # imported first: only the refusal is timed
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(EncoderError) as e:
        make_encoder("clip_image", model="ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert time.perf_counter() - t0 < 5
    msg = str(e.value)
    assert "hog_color" in msg and "tfidf" in msg and "pretrained=" in msg


def test_bad_names_are_explained(tiny, tmp_path):
    with pytest.raises(EncoderError, match="not a pretrained tag"):
        make_encoder("clip_text", model="ViT-B-32", pretrained="no_such_tag")
    with pytest.raises(EncoderError, match="no such file"):
        make_encoder("clip_text", model="ViT-B-32", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(EncoderError, match="unknown CLIP architecture"):
        make_encoder("clip_text", model="ViT-Z-99", pretrained=str(tiny["file"]))
    with pytest.raises(EncoderError, match="open_clip_config.json"):
        make_encoder("clip_image", pretrained=str(tmp_path))


def test_clip_encoders_plug_into_a_dataset(tiny, tmp_path):
    from acmr_core.data import load_dataset

    weights = {"model": "acmr-tiny-test", "pretrained": str(tiny["file"])}
    ds = load_dataset("shapes", n_pairs=40, image_size=32, cache_dir=tmp_path, progress=False,
                      image_encoder="clip_image", text_encoder="clip_text", image_params=weights, text_params=weights)
    assert ds.image_features.shape == (40, 64) == ds.text_features.shape
    assert ds.info["image_encoder"]["params"]["pretrained"] == str(tiny["file"])
    np.testing.assert_allclose(ds.encoders["text"].encode([ds.captions[3]])[0], ds.text_features[3], atol=1e-5)
