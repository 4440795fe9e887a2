"""The raw Wikipedia layout (images/<category>/<id>.jpg, texts/<id>.xml or .txt, the two lists) loads and searches."""
import hashlib

import numpy as np
import pytest
from PIL import Image

from acmr_core.config import ACMRConfig
from acmr_core.data import DataError, load_dataset
from acmr_core.datasets.sample_photos import _photo, augment
from acmr_core.datasets.wikipedia_raw import read_text
from acmr_core.retrieval import SearchIndex
from acmr_core.training import train

CATS = {"biology": ("chelsea", "The cat is a small domesticated carnivorous mammal; animals, species and fur."),
        "food": ("coffee", "Coffee is a brewed drink prepared from roasted coffee beans; espresso and caffeine."),
        "space": ("rocket", "A rocket launch carries a spacecraft into orbit; space flight and engines.")}


def hid(*parts) -> str:
    return hashlib.md5("-".join(map(str, parts)).encode()).hexdigest()


def make_release(root, n_train=6, n_test=3, xml=True):
    """A small folder in the release's layout, with md5-like ids as in the real lists."""
    rng = np.random.default_rng(0)
    (root / "texts").mkdir(parents=True)
    (root / "categories.list").write_text("\n".join(CATS) + "\n")
    for split, n in (("trainset", n_train), ("testset", n_test)):
        lines = []
        for c, (cat, (photo, words)) in enumerate(CATS.items(), 1):
            (root / "images" / cat).mkdir(parents=True, exist_ok=True)
            for j in range(n):
                img_id, txt_id = hid(split, cat, j), hid(split, cat, j, "t") + f"-{j}"
                augment(_photo(photo), rng, 96).save(root / "images" / cat / f"{img_id}.jpg")
                body = f"{words} Section {j} &amp; more &lt;notes&gt;."
                if xml and j % 2 == 0:
                    (root / "texts" / f"{txt_id}.xml").write_text(
                        f'<?xml version="1.0" encoding="UTF-8"?>\n<document><docno>{txt_id}</docno>\n<text>{body}</text>'
                        f"</document>\n", encoding="utf-8")
                else:
                    (root / "texts" / f"{txt_id}.txt").write_text(body, encoding="utf-8")
                lines.append(f"{txt_id}\t{img_id}\t{c}")
        (root / f"{split}_txt_img_cat.list").write_text("\n".join(lines) + "\n")
    return root


def test_read_text_takes_the_text_element_and_never_expands_entities(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text('<!DOCTYPE d [<!ENTITY x "boom">]><document><docno>1</docno><text>Cats &amp; dogs &x;</text></document>')
    assert read_text(p) == "Cats & dogs &x;"
    q = tmp_path / "b.txt"
    q.write_text("plain  words\nhere")
    assert read_text(q) == "plain words here"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_release(tmp_path_factory.mktemp("wiki"))


@pytest.mark.slow          # builds EfficientNet-Lite0 with its weights (10 s here), as test_efficientnet.py does
def test_the_raw_release_loads_with_the_default_encoders(release, tmp_path):
    ds = load_dataset("wikipedia_raw", data_dir=release, cache_dir=tmp_path, progress=False)
    assert ds.n == 27 and (ds.split == "test").sum() == 9 and ds.class_names == list(CATS)
    assert ds.encoders["image"].name == "efficientnet_lite0" and ds.encoders["text"].name == "tfidf"
    assert ds.encoders["text"].analyzer_used == "word"
    assert ds.image_features.shape == (27, 1280)
    assert "coffee" in ds.captions[ds.labels.tolist().index(1)] and "&amp;" not in ds.captions[0]
    assert ds.info["options"]["image_encoder"] == "efficientnet_lite0"
    again = load_dataset("wikipedia_raw", cache_dir=tmp_path, progress=False, **ds.info["options"])
    np.testing.assert_array_equal(again.image_features, ds.image_features)


@pytest.mark.slow
def test_the_raw_release_searches_by_text_and_by_photo(release, tmp_path):
    ds = load_dataset("wikipedia_raw", data_dir=release, cache_dir=tmp_path, progress=False)
    cfg = ACMRConfig(epochs=15, patience=0, probe_every=0, seed=0)
    index = SearchIndex(train(ds, cfg).model, ds)
    by_text = index.search_by_text("coffee beans and espresso", k=3)
    assert [h.class_name for h in by_text.hits].count("food") >= 2
    photo = augment(_photo("chelsea"), np.random.default_rng(5), 128)
    by_photo = index.search_by_image(photo, k=3)
    assert by_photo.predicted_class == "biology"
    assert by_photo.hits[0].caption and by_photo.seconds < 5


def test_missing_files_are_all_reported_by_list_and_line(tmp_path):
    root = make_release(tmp_path / "w", n_train=2, n_test=1, xml=False)
    victim = next((root / "images" / "food").glob("*.jpg"))
    victim.unlink()
    next((root / "texts").glob("*.txt")).unlink()
    with pytest.raises(DataError, match=r"2 pair\(s\) without their files: .*_txt_img_cat.list line \d+: no image"):
        load_dataset("wikipedia_raw", data_dir=root, cache_dir=tmp_path, progress=False)


def test_the_shallow_wikipedia_loader_points_at_the_raw_one(tmp_path):
    root = make_release(tmp_path / "w", n_train=1, n_test=1)
    with pytest.raises(DataError, match="use the dataset 'wikipedia_raw'"):
        load_dataset("wikipedia", data_dir=root)
    (root / "texts").rename(root / "elsewhere")
    with pytest.raises(DataError, match="not the raw Wikipedia layout"):
        load_dataset("wikipedia_raw", data_dir=root)


def test_an_image_that_is_not_a_photo_is_named(tmp_path):
    root = make_release(tmp_path / "w", n_train=2, n_test=1)
    bad = next((root / "images" / "space").glob("*.jpg"))
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(Exception, match=bad.name):
        load_dataset("wikipedia_raw", data_dir=root, image_encoder="hog_color", cache_dir=tmp_path, progress=False)
    assert Image  # PIL is what reads the photos
