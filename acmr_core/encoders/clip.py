"""open_clip encoders: "clip_image" and "clip_text" (pretrained CLIP embeddings, unit length).

    make_encoder("clip_image", model="ViT-B-32", pretrained="laion2b_s34b_b79k")   # a tag: hub download
    make_encoder("clip_text", model="ViT-B-32", pretrained="/path/to/weights.safetensors")  # a local file
    make_encoder("clip_image", pretrained="/path/to/folder")  # open_clip_config.json + weights in a folder

Everything goes through open_clip's own API (`create_model_and_transforms`, `get_tokenizer`,
'local-dir:' folders). Weights of a pretrained *tag* come from the Hugging Face hub; if they are not in
the local hub cache and the hub is unreachable (or HF_HUB_OFFLINE=1), building the encoder fails at
once with an EncoderError that says how to get weights, instead of retrying for a minute.
A checkpoint of the wrong architecture is refused with an EncoderError.

Both encoders of one (model, pretrained) share one loaded model. open_clip (and torch) are imported
only when a CLIP encoder is built, so the offline encoders stay light.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from . import Encoder, EncoderError, register_encoder

HUB_URL = "https://huggingface.co"
OFFLINE_HINT = ("Either download the weights where the hub is reachable (they land in the Hugging Face cache, "
                "~/.cache/huggingface) or pass a local file/folder: pretrained=/path/to/open_clip_model.safetensors "
                "(with the matching model=...) or a folder holding open_clip_config.json + open_clip_model.safetensors. "
                "Without any weights, use the offline encoders: image 'hog_color', text 'tfidf'.")

_MODELS: dict[tuple, tuple] = {}  # (model, pretrained) -> (model, preprocess, tokenizer)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """True if the Hugging Face hub answers within `timeout` seconds (False at once if HF_HUB_OFFLINE=1)."""
    if _truthy("HF_HUB_OFFLINE"):
        return False
    try:
        urllib.request.urlopen(urllib.request.Request(HUB_URL, method="HEAD"), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except Exception:
        return False


def _cached_hub_file(cfg: dict) -> str | None:
    """Path of a tag's weights if they are already in the local Hugging Face cache, else None."""
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repo, filename = os.path.split(hub)
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    for name in names:
        found = try_to_load_from_cache(repo_id=repo, filename=name)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def load_clip(model: str, pretrained: str):
    """Load (model, preprocess, tokenizer) through open_clip, or raise EncoderError saying what to do."""
    key = (model, pretrained)
    if key in _MODELS:
        return _MODELS[key]
    try:
        import open_clip
    except Exception as e:  # e.g. a torchvision built for another torch
        raise EncoderError(f"open_clip cannot be imported ({e}); install open-clip-torch with a matching "
                           f"torch/torchvision, or use the offline encoders 'hog_color' and 'tfidf'") from None

    name, kwargs = model, {"pretrained": pretrained}
    path = Path(pretrained).expanduser()
    if path.is_dir():  # a folder: open_clip_config.json + weights
        if not (path / "open_clip_config.json").is_file():
            raise EncoderError(f"{path}: a CLIP weights folder needs open_clip_config.json (and open_clip_model.safetensors)")
        name, kwargs = f"local-dir:{path}", {}
    elif model.startswith("hf-hub:"):
        if not hub_reachable():
            raise EncoderError(f"CLIP model '{model}' must come from the Hugging Face hub, which is not reachable "
                               f"(or HF_HUB_OFFLINE=1). {OFFLINE_HINT}")
        kwargs = {}
    elif model not in open_clip.list_models():
        raise EncoderError(f"unknown CLIP architecture '{model}'; e.g. ViT-B-32, ViT-B-16 "
                           f"(open_clip.list_models() lists all)")
    elif path.is_file():
        kwargs = {"pretrained": str(path)}
    else:
        cfg = open_clip.get_pretrained_cfg(model, pretrained)
        if not cfg:
            looks_like_path = any(ch in pretrained for ch in "/\\.") or pretrained.startswith("~")
            if looks_like_path:
                raise EncoderError(f"CLIP weights '{pretrained}': no such file or folder")
            tags = open_clip.list_pretrained_tags_by_model(model)
            raise EncoderError(f"'{pretrained}' is not a pretrained tag of {model} (tags: {', '.join(tags) or 'none'}) "
                               f"nor an existing file or folder")
        cached = _cached_hub_file(cfg)
        if cached:  # already downloaded: load the file with the tag's preprocessing, without any network
            kwargs = {"pretrained": cached, "force_preprocess_cfg": {
                k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode", "fill_color") if k in cfg}}
        elif not hub_reachable():
            raise EncoderError(f"the weights of {model} '{pretrained}' are not in the local cache and the Hugging Face hub "
                               f"is not reachable (or HF_HUB_OFFLINE=1). {OFFLINE_HINT}")
    try:
        clip, _, preprocess = open_clip.create_model_and_transforms(name, device="cpu", **kwargs)
        tokenizer = open_clip.get_tokenizer(name)
    except RuntimeError as e:
        msg = str(e)
        if "size mismatch" in msg or "Missing key" in msg or "Unexpected key" in msg:
            first = next((ln.strip() for ln in msg.splitlines() if "size mismatch" in ln or "key" in ln), msg[:200])
            raise EncoderError(f"CLIP weights '{pretrained}' do not fit the architecture '{model}' ({first[:300]}); "
                               f"pass the model name the checkpoint was trained with") from None
        raise EncoderError(f"cannot load CLIP {name} / '{pretrained}': {msg[:400]}. {OFFLINE_HINT}") from None
    except (OSError, ValueError) as e:
        raise EncoderError(f"cannot load CLIP {name} / '{pretrained}': {e}. {OFFLINE_HINT}") from None
    clip.eval()
    _MODELS[key] = (clip, preprocess, tokenizer)
    return _MODELS[key]


class _Clip(Encoder):
    def __init__(self, model: str = "ViT-B-32", pretrained: str = "laion2b_s34b_b79k"):
        super().__init__(model=str(model), pretrained=str(pretrained))
        self.clip, self.preprocess, self.tokenizer = load_clip(self.params["model"], self.params["pretrained"])
        self._dim = None

    def identity(self) -> dict:
        """Name and parameters, plus size and time of a local weights file (so replacing it re-encodes)."""
        ident = super().identity()
        p = Path(self.params["pretrained"]).expanduser()
        if p.exists():
            files = [p] if p.is_file() else sorted(q for q in p.iterdir() if q.is_file())
            ident["weights"] = [[q.name, q.stat().st_size, int(q.stat().st_mtime)] for q in files]
        return ident

    def state(self) -> dict:
        return {"name": self.name, "params": self.params}

    def _embed(self, items):
        raise NotImplementedError

    def encode(self, items) -> np.ndarray:
        import torch

        with torch.no_grad():
            z = self._embed(list(items)).float()
            z = torch.nn.functional.normalize(z, dim=-1)
        return z.cpu().numpy().astype(np.float32)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.encode([self._probe()]).shape[1])
        return self._dim


@register_encoder("clip_image", modality="image")
class ClipImage(_Clip):
    def _embed(self, items):
        import torch
        from PIL import Image

        bad = [type(x).__name__ for x in items if not isinstance(x, Image.Image)]
        if bad:
            raise TypeError(f"clip_image expects PIL images, got {bad[0]}")
        batch = torch.stack([self.preprocess(im.convert("RGB")) for im in items])
        return self.clip.encode_image(batch)

    def _probe(self):
        from PIL import Image

        return Image.new("RGB", (32, 32))


@register_encoder("clip_text", modality="text")
class ClipText(_Clip):
    def _embed(self, items):
        return self.clip.encode_text(self.tokenizer([str(t) for t in items]))

    def _probe(self):
        return "a"
