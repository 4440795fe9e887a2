"""Config validation and the data loaders' handling of bad files."""
import numpy as np
import pytest
import scipy.io

from acmr_core.config import ACMRConfig, ConfigError
from acmr_core.data import CrossModalDataset, DataError, available_datasets, carve_validation, load_dataset


@pytest.mark.parametrize("field,value", [
    ("lr", -1e-3), ("lr", 0), ("batch_size", 0), ("batch_size", 1), ("epochs", 0), ("alpha", -0.1),
    ("image_layers", []), ("text_layers", [0]), ("grl_schedule", "cosine"), ("triplet_sampler", "nope"),
    ("dropout", 1.5), ("k", 0), ("mu", float("nan")), ("device", "tpu"),
])
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        ACMRConfig(**{field: value})


def test_config_defaults_follow_the_paper_and_round_trip():
    c = ACMRConfig()
    assert (c.batch_size, c.lam, c.common_dim) == (64, 0.05, 200)
    assert "k = 5" in ACMRConfig.help("k")   # the paper's value is named where the default departs from it
    assert c.image_layers == [2000] and c.text_layers == [500] and c.disc_layers == [50]
    assert ACMRConfig.from_dict(c.to_dict()) == c
    assert "λ" in ACMRConfig.help("lam")
    with pytest.raises(ConfigError, match="unknown"):
        c.replace(gamma=3)


def _ds(**over):
    kw = dict(name="t", image_features=np.ones((4, 3)), text_features=np.ones((4, 2)), labels=np.array([0, 1, 0, 1]),
              class_names=["a", "b"], split=np.array(["train", "train", "test", "test"]))
    kw.update(over)
    return CrossModalDataset(**kw)


@pytest.mark.parametrize("over,msg", [
    (dict(text_features=np.ones((3, 2))), "row counts disagree"),
    (dict(labels=np.array([0, 1, 2, 1])), "labels must lie in 0..1"),
    (dict(labels=np.array([0, -1, 0, 1])), "labels must lie"),
    (dict(image_features=np.array([[1, 2, np.nan]] * 4)), "NaN"),
    (dict(split=np.array(["train", "train", "test", "dev"])), "unknown split"),
    (dict(split=np.array(["train"] * 4)), "'test' split is empty"),
])
def test_dataset_validation(over, msg):
    with pytest.raises(DataError, match=msg):
        _ds(**over)


def test_carve_validation_is_stratified_deterministic_and_spares_test():
    y = np.repeat(np.arange(4), 50)
    split = np.array(["train"] * 150 + ["test"] * 50)
    a, b = carve_validation(split, y, 0.2, seed=1), carve_validation(split, y, 0.2, seed=1)
    assert (a == b).all() and (a[150:] == "test").all()
    assert (a == "val").sum() == 30
    assert len(set(y[a == "val"])) == 3


def test_registry_lists_builtins_and_refuses_unknown():
    assert {"wikipedia", "features"} <= set(available_datasets())
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_dataset("nope")


def test_wikipedia_loads(wiki_dir):
    ds = load_dataset("wikipedia", data_dir=wiki_dir)
    assert ds.image_features.shape == (2866, 128) and ds.text_features.shape == (2866, 10)
    assert (ds.split == "test").sum() == 693 and ds.num_classes == 10 and ds.class_names[0] == "art"
    assert np.bincount(ds.labels[ds.split == "test"]).tolist() == [34, 88, 96, 85, 65, 58, 51, 41, 71, 104]


def test_wikipedia_bad_folder(tmp_path, wiki_dir):
    with pytest.raises(DataError, match="no such folder"):
        load_dataset("wikipedia", data_dir=tmp_path / "missing")
    (tmp_path / "categories.list").write_text((wiki_dir / "categories.list").read_text())
    with pytest.raises(DataError, match="raw_features.mat: file missing"):
        load_dataset("wikipedia", data_dir=tmp_path)
    scipy.io.savemat(tmp_path / "raw_features.mat", {"I_tr": np.ones((3, 4)), "T_tr": np.ones((3, 2)), "I_te": np.ones((2, 4))})
    with pytest.raises(DataError, match="missing array"):
        load_dataset("wikipedia", data_dir=tmp_path)
    scipy.io.savemat(tmp_path / "raw_features.mat", {"I_tr": np.ones((3, 4)), "T_tr": np.ones((3, 2)),
                                                      "I_te": np.ones((2, 4)), "T_te": np.ones((2, 2))})
    (tmp_path / "trainset_txt_img_cat.list").write_text("a\tb\t1\na\tb\t11\na\tb\t2\n")
    (tmp_path / "testset_txt_img_cat.list").write_text("a\tb\t1\na\tb\t2\n")
    with pytest.raises(DataError, match="line 2: category 11 is out of range"):
        load_dataset("wikipedia", data_dir=tmp_path)
    (tmp_path / "raw_features.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="not a readable MATLAB file"):
        load_dataset("wikipedia", data_dir=tmp_path)


def _arrays(n_tr=6, n_te=4):
    rng = np.random.default_rng(0)
    return {"image_train": rng.normal(size=(n_tr, 5)), "text_train": rng.normal(size=(n_tr, 3)),
            "label_train": np.arange(n_tr) % 3, "image_test": rng.normal(size=(n_te, 5)),
            "text_test": rng.normal(size=(n_te, 3)), "label_test": np.arange(n_te) % 3,
            "class_names": np.array(["x", "y", "z"])}


@pytest.mark.parametrize("suffix", [".npz", ".mat"])
def test_features_file_round_trip(tmp_path, suffix):
    path = tmp_path / f"mine{suffix}"
    if suffix == ".npz":
        np.savez(path, **_arrays())
    else:
        scipy.io.savemat(path, _arrays())
    ds = load_dataset("features", path=path)
    assert ds.n == 10 and ds.class_names == ["x", "y", "z"] and (ds.split == "test").sum() == 4


@pytest.mark.parametrize("change,msg", [
    (lambda a: a.pop("text_test"), "missing array"),
    (lambda a: a.update(label_train=np.arange(5) % 3), "row counts disagree"),
    (lambda a: a.update(label_test=np.array([0, 1, 7, 1])), "labels must lie in 0..2"),
    (lambda a: a["image_train"].__setitem__((0, 0), np.nan), "NaN"),
    (lambda a: a.update(text_test=np.ones((4, 4))), "feature dimensions differ"),
])
def test_features_file_bad_inputs(tmp_path, change, msg):
    a = _arrays()
    change(a)
    np.savez(tmp_path / "bad.npz", **a)
    with pytest.raises(DataError, match=msg) as e:
        load_dataset("features", path=tmp_path / "bad.npz")
    assert "bad.npz" in str(e.value)


def test_features_file_refuses_pickles(tmp_path):
    a = _arrays()
    a["class_names"] = np.array([{"evil": 1}, 2, 3], dtype=object)
    np.savez(tmp_path / "pickled.npz", **a)
    with pytest.raises(DataError, match="pickled"):
        load_dataset("features", path=tmp_path / "pickled.npz")
