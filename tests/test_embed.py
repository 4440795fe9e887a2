"""`python -m acmr_core embed`: a split's common-space embeddings as .npz or Embedding Projector TSV files."""
import numpy as np
import pytest
from conftest import make_synthetic

from acmr_core.__main__ import main
from acmr_core.checkpoints import load_checkpoint
from acmr_core.data import load_dataset, training_split


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint (2 epochs, small model) trained on a features file without its own validation split."""
    tmp = tmp_path_factory.mktemp("embed")
    ds = make_synthetic()
    tr, te = ds.split == "train", ds.split == "test"
    np.savez(tmp / "f.npz", image_train=ds.image_features[tr], text_train=ds.text_features[tr], label_train=ds.labels[tr],
             image_test=ds.image_features[te], text_test=ds.text_features[te], label_test=ds.labels[te])
    code = main(["train", "--dataset", "features", "--data-dir", str(tmp / "f.npz"), "--out", str(tmp / "run"), "--quiet",
                 "--epochs", "2", "--image-layers", "16", "--text-layers", "16", "--common-dim", "8", "--seed", "3"])
    assert code == 0
    return tmp


def _data(trained):
    ckpt = load_checkpoint(trained / "run")
    return ckpt, load_dataset("features", data_dir=str(trained / "f.npz"))


def test_npz_round_trip_is_aligned_with_the_dataset(trained, capsys):
    out = trained / "test.npz"
    assert main(["embed", "--checkpoint", str(trained / "run"), "--split", "test", "--out", str(out)]) == 0
    assert "test.npz" in capsys.readouterr().out
    ckpt, ds = _data(trained)
    idx = ds.indices("test")
    with np.load(out, allow_pickle=False) as z:                  # plain arrays: no pickle needed
        assert sorted(z.files) == ["image", "labels", "text"]
        assert z["image"].shape == (len(idx), 8) == z["text"].shape
        np.testing.assert_array_equal(z["labels"], ds.labels[idx])
        np.testing.assert_allclose(z["image"], ckpt.model.embed(ds.image_features[idx], "image"), atol=1e-6)
        np.testing.assert_allclose(z["text"], ckpt.model.embed(ds.text_features[idx], "text"), atol=1e-6)


def test_val_is_the_part_the_run_carved_from_training(trained):
    out = trained / "val.npz"
    assert main(["embed", "--checkpoint", str(trained / "run"), "--split", "val", "--out", str(out)]) == 0
    ckpt, ds = _data(trained)
    val = np.flatnonzero(training_split(ds, ckpt.config.val_fraction, ckpt.config.seed) == "val")
    with np.load(out) as z:
        assert len(val) > 0 and len(z["labels"]) == len(val)
        np.testing.assert_allclose(z["image"], ckpt.model.embed(ds.image_features[val], "image"), atol=1e-6)


def test_tsv_files_load_in_the_embedding_projector_layout(trained):
    folder = trained / "projector"
    assert main(["embed", "--checkpoint", str(trained / "run"), "--split", "test", "--out", str(folder),
                 "--format", "tsv"]) == 0
    ckpt, ds = _data(trained)
    n = len(ds.indices("test"))
    vectors = (folder / "vectors.tsv").read_text().splitlines()
    meta = (folder / "metadata.tsv").read_text().splitlines()
    assert len(vectors) == 2 * n and all(len(r.split("\t")) == 8 for r in vectors)
    np.array([r.split("\t") for r in vectors], dtype=float)      # every cell a number
    assert meta[0] == "modality\tclass\tcaption" and len(meta) == 2 * n + 1
    assert [m.split("\t")[0] for m in meta[1:]] == ["image"] * n + ["text"] * n


def test_bad_out_is_one_line_before_any_work(trained, capsys):
    assert main(["embed", "--checkpoint", str(trained / "run"), "--out", str(trained)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "folder" in err and "Traceback" not in err
    assert main(["embed", "--checkpoint", str(trained / "nothing"), "--out", str(trained / "x.npz")]) == 1
    assert "Traceback" not in capsys.readouterr().err
