"""Checkpoints (round trip, refusal of mismatches, atomic save) and the command line."""
import json
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import ROOT, make_synthetic

from acmr_core import checkpoints as C
from acmr_core.__main__ import main
from acmr_core.config import ACMRConfig
from acmr_core.model import ACMR
from acmr_core.training import evaluate

SMALL = ACMRConfig(image_layers=[16], text_layers=[16], common_dim=8, disc_layers=[4], epochs=2, probe_every=0)


def _model(d_v=20, d_t=12, c=5, cfg=SMALL):
    torch.manual_seed(0)
    return ACMR(d_v, d_t, c, cfg)


def test_round_trip_gives_the_same_model(tmp_path):
    m = _model()
    m.set_input_stats(torch.randn(30, 20), torch.randn(30, 12))
    C.save_checkpoint(tmp_path / "ck", m, SMALL, [f"c{i}" for i in range(5)], dataset_info={"dataset": "synthetic"})
    ck = C.load_checkpoint(tmp_path / "ck")
    assert ck.config == SMALL and ck.class_names == ["c0", "c1", "c2", "c3", "c4"]
    for (k, a), b in zip(m.state_dict().items(), ck.model.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.randn(3, 20)
    assert torch.allclose(m.eval().project_image(x), ck.model.project_image(x))
    assert json.loads((tmp_path / "ck" / "acmr.json").read_text())["dataset"] == {"dataset": "synthetic"}
    assert C.latest_checkpoint(tmp_path) == tmp_path / "ck"


def test_refuses_weights_of_the_wrong_shape(tmp_path):
    C.save_checkpoint(tmp_path / "ck", _model(), SMALL, list("abcde"))
    path = tmp_path / "ck" / "acmr.safetensors"
    meta = C.read_meta(path)
    tensors = safetensors.torch.load_file(str(path))
    tensors["image_proj.0.weight"] = torch.zeros(16, 21)
    safetensors.torch.save_file(tensors, str(path), metadata={"acmr": json.dumps(meta)})
    with pytest.raises(C.CheckpointError, match=r"image_proj.0.weight: file \(16, 21\) vs model \(16, 20\)"):
        C.load_checkpoint(tmp_path / "ck")


def test_refuses_a_checkpoint_that_does_not_fit_the_data(tmp_path):
    C.save_checkpoint(tmp_path / "ck", _model(), SMALL, list("abcde"))
    ck = C.load_checkpoint(tmp_path / "ck")
    C.check_fits(ck, 20, 12, 5)
    with pytest.raises(C.CheckpointError, match="expects 20-d image features, the data has 128-d"):
        C.check_fits(ck, 128, 12, 5)


@pytest.mark.parametrize("content,msg", [
    (b"garbage bytes, not safetensors", "not a readable safetensors file"),
    (None, "not an ACMR Lab checkpoint"),
])
def test_refuses_corrupt_or_foreign_files(tmp_path, content, msg):
    path = tmp_path / "acmr.safetensors"
    if content is None:
        safetensors.torch.save_file({"w": torch.zeros(2)}, str(path))
    else:
        path.write_bytes(content)
    with pytest.raises(C.CheckpointError, match=msg):
        C.load_checkpoint(tmp_path)
    with pytest.raises(C.CheckpointError, match="no checkpoint there"):
        C.load_checkpoint(tmp_path / "nothing")


def test_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    C.save_checkpoint(tmp_path, _model(), SMALL, list("abcde"))
    before = (tmp_path / "acmr.safetensors").read_bytes()

    def crash(fd):  # the temporary is written but not yet on disk: the power goes
        raise OSError("disk full")

    monkeypatch.setattr(C.os, "fsync", crash)
    m2 = _model()
    with torch.no_grad():
        m2.label_clf.weight.fill_(1.0)
    with pytest.raises(OSError, match="disk full"):
        C.save_checkpoint(tmp_path, m2, SMALL, list("abcde"))
    assert (tmp_path / "acmr.safetensors").read_bytes() == before
    assert not list(tmp_path.glob(".acmr-*"))
    C.load_checkpoint(tmp_path)


def test_loading_never_unpickles(tmp_path):
    """A pickle bomb renamed to .safetensors is refused without running it."""
    import pickle

    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "acmr.safetensors").write_bytes(pickle.dumps(Bomb()))
    with pytest.raises(C.CheckpointError):
        C.load_checkpoint(tmp_path)
    assert not marker.exists()


@pytest.mark.slow
def test_cli_train_and_evaluate_on_features_file(tmp_path, capsys):
    ds = make_synthetic()
    tr, te = ds.split == "train", ds.split == "test"
    np.savez(tmp_path / "f.npz", image_train=ds.image_features[tr], text_train=ds.text_features[tr], label_train=ds.labels[tr],
             image_test=ds.image_features[te], text_test=ds.text_features[te], label_test=ds.labels[te])
    out = tmp_path / "run"
    code = main(["train", "--dataset", "features", "--data-dir", str(tmp_path / "f.npz"), "--seed", "1", "--out", str(out),
                 "--epochs", "3", "--no-adversarial", "--quiet"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    for proto in ("map_all", "map_at_50"):
        for d in ("img2txt", "txt2img"):
            assert 0 <= m["test"][proto][d] <= 1
    assert m["epochs"] == m["epochs_run"] == 3 and m["train_seconds"] > 0
    assert 0 <= m["test"]["modality_probe"] <= 1 and 0 <= m["test"]["knn_mixing"] <= 2
    assert m["config"]["use_adversarial"] is False
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Img2Txt" in table and "mAP@50" in table
    ck = C.load_checkpoint(out)
    ds2 = make_synthetic()
    from acmr_core.data import load_dataset

    ds2 = load_dataset("features", path=tmp_path / "f.npz")
    assert f"{evaluate(ck.model, ds2)['img2txt']:.3f}" in table


@pytest.mark.slow
def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "acmr_core", "train", "--dataset", "wikipedia",
                        "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "no such folder" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "acmr_core", "train", "--dataset", "features", "--data-dir", "x.npz",
                        "--out", str(tmp_path / "o"), "--lr", "-1"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "'lr'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_on_wikipedia(tmp_path, wiki_dir):
    out = tmp_path / "wiki"
    r = subprocess.run([sys.executable, "-m", "acmr_core", "train", "--dataset", "wikipedia", "--data-dir", str(wiki_dir),
                        "--seed", "0", "--out", str(out), "--epochs", "3"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["test"]["map_all"]["img2txt"] > 0.15 and m["epochs_run"] == 3
    r = subprocess.run([sys.executable, "-m", "acmr_core", "evaluate", "--checkpoint", str(out)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0 and "693 pairs" in r.stdout
