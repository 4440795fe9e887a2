"""The trainer: determinism, control from another thread, events, NaN handling, validation never test."""
import threading

import numpy as np
import pytest
import torch
from conftest import make_synthetic

from acmr_core.config import ACMRConfig
from acmr_core.training import EpochEvent, StatusEvent, StepEvent, Trainer, evaluate, train

FAST = dict(epochs=4, probe_every=0, image_layers=[64], text_layers=[64], common_dim=32)
QUICK = dict(lr=1e-3, dropout=0.0)   # a faster learner for a few epochs on tiny synthetic data


def test_deterministic_under_a_seed():
    r1 = train(make_synthetic(), ACMRConfig(seed=3, **FAST))
    r2 = train(make_synthetic(), ACMRConfig(seed=3, **FAST))
    r3 = train(make_synthetic(), ACMRConfig(seed=4, **FAST))
    for a, b in zip(r1.model.state_dict().values(), r2.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["loss_total"] for h in r1.history[1:]] == [h["loss_total"] for h in r2.history[1:]]
    assert any(not torch.equal(a, b) for a, b in zip(r1.model.state_dict().values(), r3.model.state_dict().values()))


def test_display_options_do_not_change_the_training():
    # map snapshots and the modality probe are for watching: the trained weights must not depend on them
    quiet = train(make_synthetic(), ACMRConfig(seed=5, snapshot_size=0, **FAST))
    shown = train(make_synthetic(), ACMRConfig(seed=5, **dict(FAST, probe_every=1), snapshot_size=30))
    for a, b in zip(quiet.model.state_dict().values(), shown.model.state_dict().values()):
        assert torch.equal(a, b)


def test_learns_and_emits_events():
    events = []
    ds = make_synthetic()
    result = train(ds, ACMRConfig(seed=0, epochs=6, probe_every=1, snapshot_size=20, **QUICK), listeners=[events.append])
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    status = [e.state for e in events if isinstance(e, StatusEvent)]
    assert status[0] == "running" and status[-1] == "finished"
    assert [e.epoch for e in epochs] == list(range(0, 7))
    assert steps[-1].global_step == steps[-1].total_steps == len(steps)
    assert set(steps[0].losses) == {"imd", "imi", "reg", "adv", "emb", "total"}
    assert 0 <= steps[-1].disc_acc <= 1 and 0 < steps[-1].grl <= 1
    assert epochs[-1].snapshot["image"].shape == (20, 200) and 0.4 <= epochs[-1].probe <= 1
    # epoch events carry what listeners need: the epoch's mean losses and D accuracy, and the weights
    per_epoch = [s for s in steps if s.epoch == 6]
    assert epochs[-1].losses["total"] == pytest.approx(np.mean([s.losses["total"] for s in per_epoch]))
    assert epochs[-1].disc_acc == pytest.approx(np.mean([s.disc_acc for s in per_epoch]))
    assert epochs[0].losses == {} and epochs[0].disc_acc is None
    assert set(epochs[-1].weights) == set(result.model.state_dict())
    # it learns: test mAP well above the chance level (~0.2 for 5 balanced classes)
    assert evaluate(result.model, ds)["avg"] > 0.6
    assert result.best_val["avg"] == max(h["val_avg"] for h in result.history)


def test_triplet_loss_converges():
    r = train(make_synthetic(), ACMRConfig(seed=0, epochs=8, probe_every=0, use_label=False, use_adversarial=False, **QUICK))
    assert r.history[-1]["loss_imi"] < 0.7 * r.history[1]["loss_imi"]


def test_grl_at_full_strength_stays_finite():
    """Public code saw NaN losses with the reversal layer right before the loss; ours stays finite."""
    r = train(make_synthetic(), ACMRConfig(seed=0, epochs=5, probe_every=0, grl_schedule="constant", grl_max=5.0, k=1))
    assert r.error is None and all(np.isfinite(h["loss_total"]) for h in r.history[1:])


def test_best_epoch_never_looks_at_test():
    """Scrambling the test split's features and labels changes nothing in training or model choice."""
    a, b = make_synthetic(), make_synthetic()
    test = b.indices("test")
    rng = np.random.default_rng(9)
    b.image_features[test] = rng.normal(size=b.image_features[test].shape)
    b.labels[test] = rng.permutation(b.labels[test])
    ra, rb = train(a, ACMRConfig(seed=0, **FAST)), train(b, ACMRConfig(seed=0, **FAST))
    assert ra.best_epoch == rb.best_epoch
    assert [h["val_avg"] for h in ra.history] == [h["val_avg"] for h in rb.history]
    tr = Trainer(a, ACMRConfig(seed=0, **FAST))
    assert (tr.split == "val").sum() > 0 and not np.any((tr.split == "val") & (a.split == "test"))
    assert not (a.split == "val").any()          # the trainer carves validation out of its own copy of the split


def test_nan_stops_training_and_keeps_last_good_state():
    ds = make_synthetic()
    tr = Trainer(ds, ACMRConfig(seed=0, epochs=5, probe_every=0))
    good = {}

    def poison(e):
        if isinstance(e, EpochEvent) and e.epoch == 2:
            good.update({k: v.clone() for k, v in tr.model.state_dict().items()})
        if isinstance(e, StepEvent) and e.epoch == 3 and e.step == 2:
            with torch.no_grad():
                tr.model.image_proj[0].weight.fill_(float("nan"))

    tr.add_listener(poison)
    result = tr.run()
    assert result.error and "NaN" in result.error and "epoch 3" in result.error
    assert tr.state == "failed"
    assert result.epochs_run == 2
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, good[k]), k
        assert torch.isfinite(v).all()


def test_exploding_loss_is_stopped():
    result = train(make_synthetic(), ACMRConfig(seed=0, epochs=3, probe_every=0, max_loss=1e-3))
    assert result.error and "exploded" in result.error


def test_pause_resume_stop_from_another_thread():
    """Control from another thread, checked on the events: no step between 'paused' and 'running'."""
    ds = make_synthetic(n=600)
    events, paused, resumed = [], threading.Event(), threading.Event()

    def listen(e):
        events.append(e)
        if isinstance(e, StatusEvent) and e.state == "paused":
            paused.set()
        if isinstance(e, StatusEvent) and e.state == "running" and paused.is_set():
            resumed.set()

    tr = Trainer(ds, ACMRConfig(seed=0, epochs=200, probe_every=0), listeners=[listen])
    first_epoch = threading.Event()
    tr.add_listener(lambda e: first_epoch.set() if isinstance(e, EpochEvent) and e.epoch == 1 else None)
    tr.start()
    assert first_epoch.wait(30)
    tr.pause()
    assert paused.wait(10) and tr.state == "paused"
    tr.resume()
    assert resumed.wait(10)
    tr.stop()
    tr.join(10)
    assert not tr._thread.is_alive()
    kinds = [e.state if isinstance(e, StatusEvent) else e.kind for e in events]
    i = kinds.index("paused")
    assert kinds[i + 1] == "running"                 # nothing moved while paused
    assert kinds[0] == "running" and kinds[-1] == "stopped"
    assert tr.result.stopped and 1 <= tr.result.epochs_run < 200


def _brute_force_map(img, txt, y):
    """mAP@all written out query by query (cosine ranking; AP = mean precision at each relevant item)."""
    def ap(q, gallery, labels, label):
        sims = gallery @ q / (np.linalg.norm(gallery, axis=1) * np.linalg.norm(q))
        order = np.argsort(-sims, kind="stable")
        hits, precisions = 0, []
        for rank, g in enumerate(order, start=1):
            if labels[g] == label:
                hits += 1
                precisions.append(hits / rank)
        return np.mean(precisions) if precisions else 0.0

    i2t = np.mean([ap(img[i], txt, y, y[i]) for i in range(len(y))])
    t2i = np.mean([ap(txt[i], img, y, y[i]) for i in range(len(y))])
    return {"img2txt": i2t, "txt2img": t2i, "avg": (i2t + t2i) / 2}


def test_evaluate_scores_every_test_item_as_the_protocol_says():
    ds = make_synthetic()
    r = train(ds, ACMRConfig(seed=0, **FAST))
    idx = ds.indices("test")
    img, txt = r.model.embed(ds.image_features[idx], "image"), r.model.embed(ds.text_features[idx], "text")
    want = _brute_force_map(img.astype(np.float64), txt.astype(np.float64), ds.labels[idx])
    assert evaluate(r.model, ds) == pytest.approx(want, abs=1e-4)
    assert len(idx) == (make_synthetic().split == "test").sum() > 50


@pytest.mark.slow
def test_wikipedia_beats_chance(wiki_dir):
    from acmr_core.data import load_dataset

    ds = load_dataset("wikipedia", data_dir=wiki_dir)
    r = train(ds, ACMRConfig(seed=0, epochs=5, probe_every=0))
    s = evaluate(r.model, ds)
    assert s["img2txt"] > 0.18 and s["txt2img"] > 0.15   # chance is about 0.12
    # the triplet margin is alive at the default μ: some, not all, cross-modal negatives lie inside it
    idx = ds.indices("train")[:600]
    img, txt = r.model.embed(ds.image_features[idx], "image"), r.model.embed(ds.text_features[idx], "text")
    dist = np.linalg.norm(img[:, None] - txt[None], axis=2)
    negatives = dist[ds.labels[idx][:, None] != ds.labels[idx][None]]
    inside = (negatives < r.config.mu).mean()
    assert 0.01 < inside < 0.99, f"{inside:.3f} of negatives inside the margin μ={r.config.mu}"


def test_multilabel_data_trains_with_sigmoid_labels():
    from acmr_core.data import CrossModalDataset

    base = make_synthetic()
    multi = np.eye(5, dtype=np.int64)[base.labels]
    multi[::3, 0] = 1                                          # some items carry a second label
    ds = CrossModalDataset("multi", base.image_features, base.text_features, multi, base.class_names, base.split)
    assert ds.multilabel
    r = train(ds, ACMRConfig(seed=0, **QUICK, **FAST))
    assert r.error is None
    assert r.history[-1]["val_avg"] > r.history[0]["val_avg"] + 0.2      # epoch 0 = the untrained model
    assert evaluate(r.model, ds)["avg"] > 0.6


def test_early_stopping_after_patience_epochs_without_validation_gain():
    # a learning rate far below float32 resolution: the weights, and so validation mAP, never change after epoch 0
    frozen = dict(FAST, epochs=12, lr=1e-12, lr_disc=1e-12)
    events = []
    r = train(make_synthetic(), ACMRConfig(seed=0, patience=3, **frozen), listeners=[events.append])
    assert r.early_stopped and r.epochs_run == 3 and r.best_epoch == 0 and not r.stopped
    assert [e.epoch for e in events if isinstance(e, EpochEvent)] == [0, 1, 2, 3]
    last = [e for e in events if isinstance(e, StatusEvent)][-1]
    assert last.state == "finished" and "stopped early" in last.message
    # patience 0 runs every epoch; and a run that keeps improving is not cut short
    full = train(make_synthetic(), ACMRConfig(seed=0, patience=0, **frozen))
    assert not full.early_stopped and full.epochs_run == 12
    learning = train(make_synthetic(), ACMRConfig(seed=0, patience=3, epochs=6, probe_every=0, **QUICK))
    assert learning.epochs_run == 6 or learning.epochs_run - learning.best_epoch == 3


def test_patience_must_be_a_whole_number():
    from acmr_core.config import ConfigError
    with pytest.raises(ConfigError, match="patience"):
        ACMRConfig(patience=-1)


def test_training_pins_torch_threads_only_while_it_runs(synthetic):
    """cfg.threads holds while the trainer runs (seen from its own events), and the caller's thread count comes
    back afterwards, so evaluating or searching after training uses every core again."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        train(synthetic, ACMRConfig(epochs=1, threads=1, device="cpu"),
              listeners=[lambda e: seen.append(torch.get_num_threads())])
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
