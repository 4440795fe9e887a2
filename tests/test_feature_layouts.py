"""The `features` loader reads the layouts research code ships (.mat and .npz), with no converter."""
import numpy as np
import pytest
import scipy.io

from acmr_core.data import DataError, load_dataset
from acmr_core.datasets.feature_layouts import LayoutError

rng = np.random.default_rng(0)
N_TR, N_TE, DV, DT, C = 40, 20, 12, 8, 4


def split_arrays():
    y_tr, y_te = np.arange(N_TR) % C, np.arange(N_TE) % C
    return (rng.normal(size=(N_TR, DV)), rng.normal(size=(N_TR, DT)), y_tr,
            rng.normal(size=(N_TE, DV)), rng.normal(size=(N_TE, DT)), y_te)


def check(ds, v_tr, v_te, y_tr, y_te):
    assert ds.image_features.shape == (N_TR + N_TE, DV) and ds.text_features.shape[1] == DT
    np.testing.assert_allclose(ds.image_features[ds.split == "train"], v_tr, rtol=1e-6)
    np.testing.assert_allclose(ds.image_features[ds.split == "test"], v_te, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels[ds.split == "train"], y_tr)
    np.testing.assert_array_equal(ds.labels[ds.split == "test"], y_te)
    assert ds.num_classes == C


def test_wikipedia_style_names_in_mat_with_1_based_column_labels(tmp_path):
    v_tr, t_tr, y_tr, v_te, t_te, y_te = split_arrays()
    scipy.io.savemat(tmp_path / "f.mat", {"I_tr": v_tr, "T_tr": t_tr, "L_tr": (y_tr + 1)[:, None].astype(float),
                                          "I_te": v_te, "T_te": t_te, "L_te": (y_te + 1)[:, None].astype(float)})
    ds = load_dataset("features", path=tmp_path / "f.mat")
    check(ds, v_tr, v_te, y_tr, y_te)
    assert ds.info["layout"] == "split" and any("1-based" in n for n in ds.info["notes"])


def test_train_img_names_in_npz_with_0_based_labels_and_class_names(tmp_path):
    v_tr, t_tr, y_tr, v_te, t_te, y_te = split_arrays()
    np.savez(tmp_path / "f.npz", train_img=v_tr, train_txt=t_tr, train_lab=y_tr, test_img=v_te, test_txt=t_te,
             test_lab=y_te, categories=np.array(["art", "bio", "geo", "sport"]))
    ds = load_dataset("features", path=tmp_path / "f.npz")
    check(ds, v_tr, v_te, y_tr, y_te)
    assert ds.class_names == ["art", "bio", "geo", "sport"]


def test_column_major_features_and_one_hot_columns(tmp_path):
    v_tr, t_tr, y_tr, v_te, t_te, y_te = split_arrays()
    eye = np.eye(C, dtype=np.uint8)
    np.savez(tmp_path / "f.npz", image_train=v_tr.T, tag_train=t_tr.T, label_train=eye[y_tr].T,
             image_test=v_te.T, tag_test=t_te.T, label_test=eye[y_te].T)
    ds = load_dataset("features", path=tmp_path / "f.npz")
    check(ds, v_tr, v_te, y_tr, y_te)


def test_multi_hot_labels_stay_multi_label(tmp_path):
    v_tr, t_tr, _, v_te, t_te, _ = split_arrays()
    y_tr = (rng.random((N_TR, C)) < 0.4).astype(np.uint8)
    y_tr[:, 0] = 1
    y_te = (rng.random((N_TE, C)) < 0.4).astype(np.uint8)
    y_te[:, 1] = 1
    np.savez(tmp_path / "f.npz", I_tr=v_tr, T_tr=t_tr, L_tr=y_tr, I_te=v_te, T_te=t_te, L_te=y_te)
    ds = load_dataset("features", path=tmp_path / "f.npz")
    assert ds.multilabel and ds.labels.shape == (N_TR + N_TE, C)


def struct_file(tmp_path, one_based=True):
    """A MATLAB struct `data` with X1 (d_v x n), X2 (d_t x n), Y (c x n one-hot) and split.ind_train / ind_test."""
    n = N_TR + N_TE
    y = np.arange(n) % C
    x1, x2 = rng.normal(size=(DV, n)), rng.normal(size=(DT, n))
    order = rng.permutation(n)
    tr, te = np.sort(order[:N_TR]), np.sort(order[N_TR:])
    off = 1 if one_based else 0
    data = {"X1": x1, "X2": x2, "Y": np.eye(C)[y].T,
            "split": {"ind_train": (tr + off).astype(float)[None, :], "ind_test": (te + off).astype(float)[None, :]}}
    scipy.io.savemat(tmp_path / "struct.mat", {"data": data})
    return tmp_path / "struct.mat", x1.T, y, tr, te


def test_a_struct_with_two_views_labels_and_1_based_split_indices(tmp_path):
    path, v, y, tr, te = struct_file(tmp_path)
    ds = load_dataset("features", path=path)
    assert ds.info["layout"] == "views"
    assert ds.info["arrays"]["train"] == "data.split.ind_train" and ds.info["arrays"]["image"] == "data.X1"
    assert ds.image_features.shape == (N_TR + N_TE, DV) and ds.text_features.shape[1] == DT
    np.testing.assert_allclose(ds.image_features[ds.split == "train"], v[tr], rtol=1e-6)
    np.testing.assert_allclose(ds.image_features[ds.split == "test"], v[te], rtol=1e-6)
    np.testing.assert_array_equal(ds.labels[ds.split == "test"], y[te])
    assert any("1-based" in n for n in ds.info["notes"]) and any("transposed" in n for n in ds.info["notes"])


def test_the_struct_file_trains_from_the_command_line(tmp_path):
    from acmr_core.__main__ import main

    path, *_ = struct_file(tmp_path)
    rc = main(["train", "--dataset", "features", "--data-dir", str(path), "--epochs", "2", "--quiet", "--image-layers", "16",
               "--text-layers", "16", "--common-dim", "8", "--probe-every", "0",
               "--out", str(tmp_path / "ck")])
    assert rc == 0 and (tmp_path / "ck" / "metrics.json").is_file()


def test_the_command_line_passes_features_map(tmp_path):
    import argparse

    from acmr_core.__main__ import _dataset_args, load_from_args

    n = N_TR + N_TE
    np.savez(tmp_path / "odd.npz", fa=rng.normal(size=(n, DV)), fb=rng.normal(size=(n, DT)), cls=np.arange(n) % C,
             first=np.arange(N_TR), second=np.arange(N_TR, n))
    parser = argparse.ArgumentParser()
    _dataset_args(parser)
    args = parser.parse_args(["--dataset", "features", "--data-dir", str(tmp_path / "odd.npz"),
                                      "--features-map", "image=fa,text=fb,labels=cls,train=first,test=second"])
    assert load_from_args(args).image_features.shape == (n, DV)


def test_zero_based_indices_and_boolean_masks_in_npz(tmp_path):
    n = N_TR + N_TE
    v, t, y = rng.normal(size=(n, DV)), rng.normal(size=(n, DT)), np.arange(n) % C
    train_mask = np.arange(n) < N_TR
    np.savez(tmp_path / "f.npz", img=v, txt=t, labels=y, train_idx=np.flatnonzero(train_mask),
             test_idx=np.flatnonzero(~train_mask))
    ds = load_dataset("features", path=tmp_path / "f.npz")
    np.testing.assert_allclose(ds.image_features[ds.split == "train"], v[:N_TR], rtol=1e-6)
    np.savez(tmp_path / "m.npz", img=v, txt=t, labels=y, train_idx=train_mask, test_idx=~train_mask)
    ds = load_dataset("features", path=tmp_path / "m.npz")
    np.testing.assert_allclose(ds.image_features[ds.split == "test"], v[N_TR:], rtol=1e-6)


def test_an_explicit_mapping_says_which_array_is_which(tmp_path):
    n = N_TR + N_TE
    feats_a, feats_b, cls = rng.normal(size=(n, DV)), rng.normal(size=(n, DT)), np.arange(n) % C
    scipy.io.savemat(tmp_path / "odd.mat", {"fa": feats_a, "fb": feats_b, "cls": cls + 1,
                                            "part": {"first": np.arange(1, N_TR + 1), "second": np.arange(N_TR + 1, n + 1)}})
    with pytest.raises(LayoutError):
        load_dataset("features", path=tmp_path / "odd.mat")
    mapping = "image=fa,text=fb,labels=cls,train=part.first,test=second"
    ds = load_dataset("features", path=tmp_path / "odd.mat", features_map=mapping)
    np.testing.assert_allclose(ds.image_features[ds.split == "train"], feats_a[:N_TR], rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, cls)
    assert ds.info["options"]["features_map"] == mapping        # a checkpoint can reload it
    swapped = load_dataset("features", path=tmp_path / "odd.mat",
                           features_map={"image": "fb", "text": "fa", "labels": "cls", "train": "first", "test": "second"})
    assert swapped.image_features.shape[1] == DT
    with pytest.raises(DataError, match="'nope' is not in the file"):
        load_dataset("features", path=tmp_path / "odd.mat", features_map="image=nope,text=fb,labels=cls,train=first,test=second")
    with pytest.raises(DataError, match="unknown role"):
        load_dataset("features", path=tmp_path / "odd.mat", features_map="picture=fa")
    with pytest.raises(DataError, match="missing train, test"):
        load_dataset("features", path=tmp_path / "odd.mat", features_map="image=fa,text=fb,labels=cls")


def test_a_refused_file_lists_its_contents_and_the_nearest_layout(tmp_path):
    v_tr, t_tr, y_tr, *_ = split_arrays()
    scipy.io.savemat(tmp_path / "half.mat", {"I_tr": v_tr, "T_tr": t_tr, "L_tr": y_tr, "extra": np.zeros((3, 5), np.int32)})
    with pytest.raises(LayoutError) as e:
        load_dataset("features", path=tmp_path / "half.mat")
    msg = str(e.value)
    assert "\n" not in msg
    assert f"I_tr float64 ({N_TR}, {DV})" in msg and "extra int32 (3, 5)" in msg
    assert "nearest known layout: one image, text and label array per split" in msg
    assert "missing array(s) image_test, text_test, label_test" in msg and "--features-map" in msg
    n = N_TR + N_TE
    np.savez(tmp_path / "views.npz", X1=rng.normal(size=(n, DV)), X2=rng.normal(size=(n, DT)), Y=np.arange(n) % C)
    with pytest.raises(LayoutError, match=r"two views \+ labels \+ train/test index arrays .*missing array\(s\) train, test"):
        load_dataset("features", path=tmp_path / "views.npz")


def test_bad_index_arrays_and_pickles_are_refused(tmp_path):
    n = N_TR + N_TE
    v, t, y = rng.normal(size=(n, DV)), rng.normal(size=(n, DT)), np.arange(n) % C
    np.savez(tmp_path / "overlap.npz", img=v, txt=t, labels=y, train_idx=np.arange(0, 45), test_idx=np.arange(40, n))
    with pytest.raises(DataError, match="shares items"):
        load_dataset("features", path=tmp_path / "overlap.npz")
    np.savez(tmp_path / "range.npz", img=v, txt=t, labels=y, train_idx=np.arange(0, 40), test_idx=np.arange(40, n + 5))
    with pytest.raises(DataError, match="outside the"):
        load_dataset("features", path=tmp_path / "range.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "pickled.npz", I_tr=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        load_dataset("features", path=tmp_path / "pickled.npz")


def test_the_dashboard_spec_carries_the_mapping(tmp_path):
    from app.services import dataset_spec

    spec = dataset_spec("features", str(tmp_path / "odd.mat"), features_map=" image=fa,text=fb ")
    assert spec.opts == {"path": str(tmp_path / "odd.mat"), "features_map": "image=fa,text=fb"}
    assert "features_map" not in dataset_spec("features", "f.npz").opts
