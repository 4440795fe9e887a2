"""A real-photo `folder` dataset built offline: scikit-image's and scikit-learn's sample photos, augmented,
with generated captions in Chinese and Japanese (languages written without spaces between words).

Not a registered dataset: `write_photo_folder(root, ...)` writes a folder in the layout the `folder` loader
reads (images + `captions.csv` with `image,caption,label,split`), so the benchmark and the tests go through
the same loader a user's own photos do.

  25 photos that ship with scikit-image (`skimage.data`, those that need no download) and 2 with
  scikit-learn (`load_sample_images`), grouped into 14 subjects (the classes: cat, coffee, person, ...).
  Each pair is a random crop (35-100% of the area), maybe flipped, tilted, recoloured or turned grey,
  of one photo, and a caption naming its subject with one of several synonyms, in Chinese or Japanese,
  inside a template with random time / place / style words, so that the same subject appears in many
  different runs of characters.

Two ways to choose the test split (`holdout`):

  "photo"  (default) subjects with several source photos keep their last photo out of training: all test
           items are crops of a photo never seen in training (subjects with a single photo,
           such as the cat of `chelsea`, only train, as distractors). This measures generalising to a new photo.
  "crop"   a stratified `test_fraction` of every subject's crops: test crops come from the same source photos
           as training crops, so this mostly measures recognising a photo across crops and colours (easy).

A fraction `vague` of the captions names no subject at all ("a blurry photo taken this morning"), as real
captions sometimes do. Deterministic under `seed`.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

# subject -> (photo loaders, Chinese names, Japanese names)
SUBJECTS = {
    "cat": (["chelsea"], ["猫", "小猫", "猫咪"], ["猫", "ねこ", "子猫"]),
    "coffee": (["coffee"], ["咖啡", "一杯咖啡", "咖啡杯"], ["コーヒー", "珈琲", "コーヒーカップ"]),
    "person": (["astronaut", "camera"], ["人物", "一个人", "男人"], ["人物", "ひと", "男性"]),
    "space": (["rocket", "hubble_deep_field", "moon"], ["火箭", "太空", "星空"], ["ロケット", "宇宙", "星空"]),
    "coins": (["coins"], ["硬币", "钱币", "古钱"], ["硬貨", "コイン", "古銭"]),
    "texture": (["brick", "grass", "gravel"], ["纹理", "砖墙", "地面"], ["模様", "レンガ", "地面"]),
    "document": (["page", "text"], ["文字", "文档", "书页"], ["文字", "文書", "ページ"]),
    "microscope": (["cell", "immunohistochemistry", "retina", "microaneurysms"],
                   ["细胞", "显微镜图像", "医学影像"], ["細胞", "顕微鏡画像", "医用画像"]),
    "motorcycle": (["motorcycle_left", "motorcycle_right"], ["摩托车", "机车", "摩托"], ["バイク", "オートバイ", "単車"]),
    "clock": (["clock"], ["时钟", "钟表", "挂钟"], ["時計", "掛け時計", "とけい"]),
    "flower": (["flower"], ["花", "花朵", "鲜花"], ["花", "はな", "草花"]),
    "building": (["china"], ["寺庙", "建筑", "古建筑"], ["寺", "建物", "古い建築"]),
    "horse": (["horse"], ["马", "骏马", "马的剪影"], ["馬", "うま", "馬のシルエット"]),
    "pattern": (["checkerboard", "colorwheel", "logo", "shepp_logan_phantom"],
                ["图案", "图形", "色轮"], ["図形", "パターン", "色相環"]),
}

ZH_TIME = ["早上", "傍晚", "昨天", "夜里", "中午", "周末", "去年夏天", "今天"]
ZH_PLACE = ["在家里", "在路上", "在实验室", "在公园", "在办公室", "在博物馆", "在窗边", ""]
ZH_STYLE = ["清晰的", "模糊的", "有点暗的", "很亮的", "彩色的", "放大的", "倾斜的", "普通的"]
ZH_VAGUE = ["{t}{p}拍的{s}照片", "一张{s}图片", "{t}随手拍的", "这张照片是{t}拍的"]
JA_VAGUE = ["{t}{p}撮った{s}写真", "{s}画像", "{t}なんとなく撮った", "この写真は{t}撮影した"]
ZH_TEMPLATES = ["{t}{p}拍的{s}{x}照片", "这是一张{s}{x}图片", "{t}拍到了{x}", "图片里能看到{x}{p}", "一张{s}{x}特写",
                "我{t}{p}看到的{x}", "{x}的照片{p}{t}拍摄"]
JA_TIME = ["朝", "夕方", "昨日", "夜", "昼", "週末", "去年の夏", "今日"]
JA_PLACE = ["家で", "道で", "研究室で", "公園で", "事務所で", "博物館で", "窓辺で", ""]
JA_STYLE = ["鮮明な", "ぼやけた", "少し暗い", "明るい", "カラーの", "拡大した", "傾いた", "ふつうの"]
JA_TEMPLATES = ["{t}{p}撮った{s}{x}の写真", "これは{s}{x}の画像です", "{t}{x}を撮影した", "{x}が写っている{s}写真",
                "{p}見つけた{x}", "{s}{x}のクローズアップ", "{x}の写真を{t}{p}撮りました"]


@lru_cache(maxsize=None)
def _photo(name: str) -> Image.Image:
    """One sample photo as an RGB PIL image (no download; read once per process, do not modify it)."""
    if name in ("flower", "china"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg"))
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        a = left if name.endswith("left") else right
    else:
        a = getattr(data, name)()
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = (255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-9)).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    return Image.fromarray(a).convert("RGB")


def augment(photo: Image.Image, rng: np.random.Generator, size: int) -> Image.Image:
    """A random view of a photo: crop, flip, tilt, colour change or grey, resized to fit `size` px."""
    w, h = photo.size
    area = rng.uniform(0.35, 1.0) * w * h
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw, ch = min(w, int(round(np.sqrt(area * ratio)))), min(h, int(round(np.sqrt(area / ratio))))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    im = photo.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        im = ImageOps.mirror(im)
    if rng.random() < 0.3:
        im = im.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        im = enhance(im).enhance(float(rng.uniform(0.7, 1.3)))
    if rng.random() < 0.15:
        im = ImageOps.grayscale(im).convert("RGB")
    im.thumbnail((size, size), Image.BILINEAR)
    return im


def caption(subject: str, lang: str, rng: np.random.Generator, vague: bool = False) -> str:
    """A generated caption naming `subject` (unless `vague`) in Chinese ('zh') or Japanese ('ja')."""
    _, zh, ja = SUBJECTS[subject]
    names, times, places, styles, templates = ((zh, ZH_TIME, ZH_PLACE, ZH_STYLE, ZH_TEMPLATES) if lang == "zh"
                                              else (ja, JA_TIME, JA_PLACE, JA_STYLE, JA_TEMPLATES))
    if vague:
        templates = ZH_VAGUE if lang == "zh" else JA_VAGUE
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    end = "。" if rng.random() < 0.5 else ""
    return pick(templates).format(t=pick(times), p=pick(places), s=pick(styles), x=pick(names)) + end


def write_photo_folder(root: str | Path, per_photo: int = 40, size: int = 256, holdout: str = "photo",
                       test_fraction: float = 0.25, vague: float = 0.15, subjects: list[str] | None = None,
                       languages=("zh", "ja"), seed: int = 0) -> Path:
    """Write `per_photo` augmented pairs of every photo of `subjects` (default: all 14) into `root`.

    Returns the CSV's path. `holdout` and `vague` are explained in the module doc."""
    if holdout not in ("photo", "crop"):
        raise ValueError(f"holdout must be 'photo' or 'crop', got {holdout!r}")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for subject in subjects or list(SUBJECTS):
        photos = SUBJECTS[subject][0]
        items = []
        for name in photos:
            photo = _photo(name)
            for j in range(per_photo):
                rel = f"images/{subject}_{name}_{j:03d}.jpg"
                augment(photo, rng, size).save(root / rel, quality=90)
                lang = languages[int(rng.integers(len(languages)))]
                items.append([rel, caption(subject, lang, rng, vague=rng.random() < vague), subject, name])
        if holdout == "photo":
            split = ["test" if len(photos) > 1 and it[3] == photos[-1] else "train" for it in items]
        else:
            test = set(rng.choice(len(items), size=max(1, int(round(len(items) * test_fraction))), replace=False).tolist())
            split = ["test" if i in test else "train" for i in range(len(items))]
        rows += [it[:3] + [s] for it, s in zip(items, split)]
    path = root / "captions.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption", "label", "split"])
        w.writerows(rows)
    return path
