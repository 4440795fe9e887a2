"""Hostile data files, output folders and forged checkpoints through the command line (in-process `main()`, as a
user runs it, with one real subprocess), `load_checkpoint`, and the app's checkpoint loaders; and saves that are
killed. Each case: exit code 1 and ONE 'error:' line that names the file or field and says what to do, no
traceback, nothing lost (a previous checkpoint still loads, a run is not thrown away)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import ROOT, make_synthetic

from acmr_core import checkpoints as C
from acmr_core.__main__ import main
from acmr_core.config import ACMRConfig
from acmr_core.model import ACMR

TINY = ["--epochs", "2", "--image-layers", "16", "--text-layers", "16", "--common-dim", "8", "--disc-layers", "4",
        "--probe-every", "0", "--quiet"]
CFG = ACMRConfig(image_layers=[16], text_layers=[16], common_dim=8, disc_layers=[4], epochs=2, probe_every=0)


def synth(n=90, classes=3, d_v=8, d_t=6) -> dict:
    """Arrays of a features file: the first 70 % of n synthetic pairs train (63 of 90), the rest test (27)."""
    ds = make_synthetic(n=n, classes=classes, d_v=d_v, d_t=d_t, seed=1)
    cut = n * 7 // 10
    return dict(image_train=ds.image_features[:cut], text_train=ds.text_features[:cut], label_train=ds.labels[:cut],
                image_test=ds.image_features[cut:], text_test=ds.text_features[cut:], label_test=ds.labels[cut:])


def features_file(path, n=90, **arrays):
    """A features .npz (train/test, optionally val) built from synthetic pairs; `arrays` replace or add arrays."""
    base = synth(n)
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def one_error_line(err: str, *needles) -> str:
    assert "Traceback" not in err and 'File "' not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


def train_args(data, out):
    return ["train", "--dataset", "features", "--data-dir", data, "--out", out, *TINY]


# --- data files ------------------------------------------------------------------------------------------

S = np.array([["a", "b"], ["c", "d"]])


@pytest.mark.parametrize("arrays,needles", [
    (dict(image_train=np.array([["x"] * 8] * 63)), ["f.npz", "numbers"]),                          # strings
    (dict(label_train=99 + np.arange(63) % 3, label_test=np.arange(27) % 3), ["(99..101)", "(0..2)", "0..101"]),
    (dict(label_train=np.full(63, 0.5)), ["f.npz", "whole numbers"]),
    (dict(label_test=np.full(27, -1)), ["labels must be class indices >= 0"]),
    (dict(image_train=np.full((63, 8), np.nan)), ["NaN"]),
    (dict(image_train=np.ones((63, 8)), image_test=np.ones((27, 8))), ["image features", "same for every item"]),
    (dict(image_val=np.ones((2, 8)), text_val=np.ones((2, 6)), label_val=np.array([0, 1])), ["'val' split", "at least 3"]),
    (dict(image_test=np.zeros((2, 8)), text_test=np.zeros((2, 6)), label_test=np.array([0, 1])), ["'test' split",
                                                                                                  "at least 3"]),
    (dict(text_test=np.zeros((27, 7))), ["feature dimensions differ"]),
    (dict(image_train=np.zeros((63, 8, 2))), ["2-D"]),
    (dict(label_train=np.zeros(60, int)), ["row counts disagree"]),
    (dict(image_test=None), ["missing array"]),
    (dict(image_train=np.array([{"a": 1}] * 63, dtype=object)), ["pickled objects"]),
    (dict(label_train=np.array(["cat", "dog", "cow"] * 21)), ["f.npz", "numbers"]),               # text labels
])
def test_bad_feature_files_get_one_line(tmp_path, capsys, arrays, needles):
    data = features_file(tmp_path / "f.npz", **arrays)
    code, err = run_cli(capsys, *train_args(data, tmp_path / "out"))
    assert code == 1
    one_error_line(err, *needles)
    assert not (tmp_path / "out" / C.WEIGHTS).exists()


@pytest.mark.parametrize("content,name,needle", [
    (b"", "empty.npz", ".npz"),
    (b"PK\x03\x04 broken zip", "cut.npz", ".npz"),
    (b"x,y\n1,2\n", "data.csv", "unknown file type"),
    (None, "missing.npz", "file missing"),
])
def test_unreadable_data_files(tmp_path, capsys, content, name, needle):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    code, err = run_cli(capsys, *train_args(p, tmp_path / "out"))
    assert code == 1
    one_error_line(err, name, needle)


def test_a_split_too_small_to_carve_a_validation_set_still_trains(tmp_path, capsys):
    # 7 training pairs: 10 % is 0-1 per class; the validation split is topped up to 3 or left to training
    data = features_file(tmp_path / "f.npz", n=12)
    code, err = run_cli(capsys, *train_args(data, tmp_path / "out"))
    assert code == 0, err
    assert "Traceback" not in err


def test_a_carved_validation_split_is_topped_up_to_the_minimum_or_left_to_training():
    from acmr_core.data import MIN_SPLIT_PAIRS, carve_validation

    split = np.array(["train"] * 12 + ["test"] * 4)
    labels = np.array([0] * 6 + [1] * 6 + [0, 1, 0, 1])
    carved = carve_validation(split, labels, fraction=0.1)           # 1 per class: 2, too few to rank
    assert (carved == "val").sum() == MIN_SPLIT_PAIRS and (carved == "test").sum() == 4
    split = np.array(["train"] * 4 + ["test"] * 4)
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    carved = carve_validation(split, labels, fraction=0.3)           # 2 of 4: nothing left to train on
    assert (carved == "val").sum() == 0 and (carved == "train").sum() == 4


def test_constant_columns_and_an_absurd_lr_are_warned_about_not_refused(tmp_path, capsys):
    a = synth()
    for k in ("image_train", "image_test"):
        a[k][:, :5] = 1.0                                                     # 5 of 8 dimensions constant
    data = features_file(tmp_path / "f.npz", **a)
    code, err = run_cli(capsys, *train_args(data, tmp_path / "out"), "--lr", "1e6")
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert any("5 of the 8 image features dimensions are constant" in w for w in warnings), err
    assert any("--lr 1e+06" in w and "diverge" in w for w in warnings), err
    assert "Traceback" not in err
    assert code in (0, 1)                                                     # diverging is reported, not a crash
    if code == 1:
        one_error_line(err)


def test_classes_without_items_are_warned_about(tmp_path, capsys):
    data = features_file(tmp_path / "f.npz", class_names=np.array(["a", "b", "c", "d", "e"]))
    code, err = run_cli(capsys, *train_args(data, tmp_path / "out"))
    assert code == 0, err
    assert "warning:" in err and "2 of the 5 classes have no items" in err


# --- output folders: checked before any training --------------------------------------------------------


@pytest.fixture
def no_training(monkeypatch):
    from acmr_core import training

    def refuse(*a, **k):
        raise AssertionError("training started although --out is unusable")

    monkeypatch.setattr(training.Trainer, "run", refuse)


@pytest.mark.parametrize("make_out,needle", [
    (lambda t: (t / "a-file").write_text("keep me") and t / "a-file", "existing file"),
    (lambda t: (t / "f2").write_text("keep me") and t / "f2" / "sub", "cannot write there"),
    (lambda t: "/proc/acmr-lab-no-such-place", "cannot write there"),
    (lambda t: "/dev/null/run", "cannot write there"),
])
def test_an_unusable_out_is_refused_before_training(tmp_path, capsys, no_training, make_out, needle):
    data = features_file(tmp_path / "f.npz")
    out = make_out(tmp_path)
    code, err = run_cli(capsys, *train_args(data, out))
    assert code == 1
    one_error_line(err, "--out", needle)
    for f in ("a-file", "f2"):
        if (tmp_path / f).is_file():
            assert (tmp_path / f).read_text() == "keep me"      # nothing lost


@pytest.mark.slow
def test_the_cli_in_a_real_process_has_no_traceback(tmp_path):
    data = features_file(tmp_path / "f.npz", image_train=np.array([["x"] * 8] * 63))
    r = subprocess.run([sys.executable, "-m", "acmr_core", *train_args(data, tmp_path / "o")], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    one_error_line(r.stderr, "f.npz", "numbers")


# --- forged checkpoints --------------------------------------------------------------------------------


@pytest.fixture
def ckpt(tmp_path):
    torch.manual_seed(0)
    m = ACMR(8, 6, 3, CFG)
    folder = tmp_path / "ck"
    C.save_checkpoint(folder, m, CFG, ["a", "b", "c"])
    return folder


def rewrite(folder, meta_fn=None, tensor_fn=None):
    path = folder / C.WEIGHTS
    meta = C.read_meta(path)
    tensors = safetensors.torch.load_file(str(path))
    if meta_fn:
        meta_fn(meta)
    if tensor_fn:
        tensor_fn(tensors)
    safetensors.torch.save_file(tensors, str(path), metadata={"acmr": json.dumps(meta)})


def _set_cfg(**kw):
    return lambda m: m["config"].update(kw)


FORGERIES = {
    "common_dim 10**7": (_set_cfg(common_dim=10**7), None, "common_dim of 10,000,000"),
    "hidden layers 10**6": (_set_cfg(image_layers=[10**6]), None, "image_layers size of 1,000,000"),
    "2,000 layers": (_set_cfg(text_layers=[4] * 2000), None, "2000 text_layers"),
    "10**9 classes": (lambda m: m["dims"].update(classes=10**9), None, "number of classes"),
    "huge input dims": (lambda m: m["dims"].update(image=10**8), None, "image feature dimension"),
    "too many parameters": (lambda m: (m["config"].update(image_layers=[60000, 60000]), m["dims"].update(image=60000)),
                            None, "parameters"),
    "dims as text": (lambda m: m["dims"].update(image="8"), None, "whole number"),
    "negative common_dim": (_set_cfg(common_dim=-3), None, "common_dim"),
    "class names shorter": (lambda m: m.update(class_names=["a", "b"]), None, "names 2 classes but its classifier has 3"),
    "class names not text": (lambda m: m.update(class_names=[1, 2, 3]), None, "not a list of texts"),
    "NaN weights": (None, lambda t: t["label_clf.weight"].fill_(float("nan")), "NaN or infinite"),
    "inf weights": (None, lambda t: t["image_proj.0.bias"].fill_(float("inf")), "NaN or infinite"),
    "a missing tensor": (None, lambda t: t.pop("label_clf.bias"), "missing label_clf.bias"),
    "a mis-shaped tensor": (None, lambda t: t.update({"label_clf.weight": torch.zeros(3, 9)}), "label_clf.weight"),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_checkpoints_are_refused_everywhere(ckpt, capsys, name):
    meta_fn, tensor_fn, needle = FORGERIES[name]
    rewrite(ckpt, meta_fn, tensor_fn)
    t0 = time.perf_counter()
    with pytest.raises(C.CheckpointError, match="(?i)" + needle.replace("(", r"\(").replace(")", r"\)")) as e:
        C.load_checkpoint(ckpt)
    assert time.perf_counter() - t0 < 5                       # refused before anything big is allocated
    msg = str(e.value)
    assert str(ckpt) in msg and any(w in msg for w in ("Retrain", "retrain", "pick another"))
    code, err = run_cli(capsys, "evaluate", "--checkpoint", ckpt, "--dataset", "shapes")
    assert code == 1
    one_error_line(err, needle)


def test_the_app_loaders_report_a_forged_checkpoint_and_keep_the_current_model(ckpt, tmp_path):
    from app import search as S
    from app.model_store import ModelStore

    rewrite(ckpt, _set_cfg(common_dim=10**7))
    store = ModelStore(tmp_path)
    with pytest.raises(C.CheckpointError, match="common_dim"):
        store.load_checkpoint(ckpt)
    status, *_ = S.load_selected(str(ckpt), store=store)
    assert "common_dim" in status and "Traceback" not in status
    assert store.ensure_loaded() is None and "common_dim" in store.last_error


# --- saves ------------------------------------------------------------------------------------------------


def test_saves_are_fsynced(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(C.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    C.save_checkpoint(tmp_path / "ck", ACMR(8, 6, 3, CFG), CFG, ["a", "b", "c"])
    assert len(calls) >= 4          # two files and, after each rename, their folder


def test_stale_temporaries_are_cleaned_on_the_next_save(tmp_path):
    folder = tmp_path / "ck"
    C.save_checkpoint(folder, ACMR(8, 6, 3, CFG), CFG, ["a", "b", "c"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = folder / f".acmr-{dead.pid}-abc123.tmp"           # its process is gone
    orphan.write_bytes(b"x" * 1000)
    old = folder / ".acmr-zz9.tmp"                               # the old naming, an hour old
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    live = folder / f".acmr-{os.getpid()}-live.tmp"              # a save of this process in progress: kept
    live.write_bytes(b"x")
    other = folder / "notes.tmp"                                 # not our naming: never touched
    other.write_text("mine")
    C.save_checkpoint(folder, ACMR(8, 6, 3, CFG), CFG, ["a", "b", "c"])
    assert not orphan.exists() and not old.exists() and live.exists() and other.read_text() == "mine"
    live.unlink()


@pytest.mark.slow
def test_kill_9_during_saves_leaves_a_loadable_checkpoint_and_no_litter(tmp_path):
    """A process saving in a loop is killed at random moments; afterwards the checkpoint loads, and the app's
    start (ModelStore.load_latest) removes what the killed saves left."""
    from app.model_store import ModelStore

    folder = tmp_path / "ckpts" / "run"
    C.save_checkpoint(folder, ACMR(8, 6, 3, CFG), CFG, ["a", "b", "c"])
    code = ("import sys, torch; from acmr_core import checkpoints as C; from acmr_core.config import ACMRConfig; "
            "from acmr_core.model import ACMR\n"
            "cfg = ACMRConfig(image_layers=[512], text_layers=[512], common_dim=64, disc_layers=[4])\n"
            "m = ACMR(2000, 2000, 3, cfg); print('ready', flush=True)\n"
            "while True: C.save_checkpoint(sys.argv[1], m, cfg, ['a', 'b', 'c'])\n")
    rng = np.random.default_rng(0)
    for _ in range(2):
        p = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        C.load_checkpoint(folder)                          # whatever moment it died, the checkpoint loads
    try:
        ModelStore(tmp_path / "ckpts").load_latest()       # the app's start (cleans before it loads)
    except C.CheckpointError:
        pass                                               # this checkpoint names no dataset to reload
    assert not list(folder.glob(".acmr-*")), list(folder.glob(".acmr-*"))
