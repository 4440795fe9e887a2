"""tfidf in every script: captions written without spaces get character n-grams, and the choice survives a checkpoint."""
import json

import numpy as np
import pytest

from acmr_core.checkpoints import load_checkpoint, save_checkpoint
from acmr_core.config import ACMRConfig
from acmr_core.encoders import EncoderError, encoder_from_state, make_encoder
from acmr_core.encoders.tfidf import detect_analyzer
from acmr_core.model import ACMR

ZH = ["一只橘色的小猫躺在沙发上睡觉", "桌子上放着一杯热咖啡和一本书", "小猫在窗边看着外面的鸟", "早上的咖啡闻起来很香",
      "公园里有一只白色的猫", "我昨天在咖啡馆喝了拿铁", "猫咪喜欢在阳光下睡觉", "这杯咖啡有点苦"]
JA = ["猫がソファの上で寝ている", "机の上に熱いコーヒーがある", "子猫が窓の外を見ている", "朝のコーヒーはとても香りがいい",
      "公園に白い猫がいる", "昨日カフェでラテを飲んだ", "猫は日なたで寝るのが好きだ", "このコーヒーは少し苦い"]
TH = ["แมวนอนอยู่บนโซฟา", "กาแฟร้อนอยู่บนโต๊ะ", "ลูกแมวมองออกไปนอกหน้าต่าง", "กาแฟตอนเช้าหอมมาก"]
EN = ["a ginger cat asleep on the sofa", "a hot cup of coffee on the table", "the kitten looks out of the window",
      "morning coffee smells good"]


@pytest.mark.parametrize("texts", [ZH, JA, TH], ids=["chinese", "japanese", "thai"])
def test_scripts_without_spaces_are_detected(texts):
    assert detect_analyzer(texts) == "char"


def test_spaced_scripts_keep_words():
    assert detect_analyzer(EN) == "word"
    assert detect_analyzer(["Привет мир, кошка спит на диване", "Кофе стоит на столе"]) == "word"
    assert detect_analyzer(["고양이가 소파 위에서 자고 있다", "탁자 위에 커피가 있다"]) == "word"  # Korean uses spaces
    assert detect_analyzer(["", "123"]) == "word"


@pytest.mark.parametrize("texts", [ZH, JA], ids=["chinese", "japanese"])
def test_captions_without_spaces_give_many_terms_not_one_per_run(texts):
    auto = make_encoder("tfidf", min_df=1).fit(texts)
    word = make_encoder("tfidf", analyzer="word", min_df=1).fit(texts)
    a, w = auto.encode(texts), word.encode(texts)
    assert auto.analyzer_used == "char" and word.analyzer_used == "word"
    assert (a > 0).sum(1).min() >= 10                   # character 1-2-grams: many terms per caption
    assert (w > 0).sum(1).max() <= 3                    # the word pattern: one "word" per run of characters
    coffee_word = "咖啡" if texts is ZH else "コーヒー"
    for word in ("猫", coffee_word):                    # a one-word query finds the captions that contain it
        sims = a @ auto.encode([word])[0]
        has = np.array([word in t for t in texts])
        assert sims[has].min() > sims[~has].max(), word


def test_the_analyzer_option_is_respected_and_checked():
    assert make_encoder("tfidf", analyzer="char", min_df=1).fit(EN).analyzer_used == "char"
    assert make_encoder("tfidf", analyzer="word", min_df=1).fit(ZH).analyzer_used == "word"
    three = make_encoder("tfidf", analyzer="char", char_ngram_max=3, min_df=1).fit(ZH)
    assert max(len(t) for t in three.terms) == 3
    with pytest.raises(EncoderError, match="analyzer must be one of auto, word, char"):
        make_encoder("tfidf", analyzer="chars")


def test_unknown_words_are_characters_for_char_and_words_for_word():
    zh = make_encoder("tfidf", min_df=1).fit(ZH)
    assert zh.unknown_words("猫喝咖啡吗") == ["吗"]
    en = make_encoder("tfidf", min_df=1).fit(EN)
    assert en.unknown_words("a ginger dog") == ["dog"]


def test_a_checkpoint_round_trip_gives_the_same_query_vector(tmp_path):
    enc = make_encoder("tfidf").fit(ZH + JA)
    assert enc.analyzer_used == "char"
    cfg = ACMRConfig(image_layers=[8], text_layers=[8], common_dim=4, disc_layers=[4], epochs=1, probe_every=0)
    model = ACMR(6, enc.dim, 2, cfg)
    save_checkpoint(tmp_path / "ck", model, cfg, ["cat", "coffee"], encoders={"text": enc})
    saved = json.loads((tmp_path / "ck" / "acmr.json").read_text(encoding="utf-8"))
    assert saved["encoders"]["text"]["analyzer"] == "char"          # the choice is in the checkpoint, as JSON
    restored = encoder_from_state(load_checkpoint(tmp_path / "ck").meta["encoders"]["text"])
    assert restored.analyzer_used == "char" and restored.dim == enc.dim
    for query in ["沙发上的猫", "熱いコーヒー", "猫"]:
        np.testing.assert_array_equal(restored.encode([query]), enc.encode([query]))


def test_old_states_without_an_analyzer_stay_word_based():
    enc = make_encoder("tfidf", min_df=1).fit(EN)
    state = enc.state()
    state.pop("analyzer")
    state["params"] = {k: v for k, v in state["params"].items() if k not in ("analyzer", "char_ngram_max")}
    old = encoder_from_state(state)
    assert old.analyzer_used == "word"
    np.testing.assert_array_equal(old.encode(["a cat"]), enc.encode(["a cat"]))


def test_search_hints_for_character_vocabularies_are_character_pairs():
    from acmr_core.retrieval import known_words

    words = known_words(make_encoder("tfidf", min_df=1).fit(ZH), limit=5)
    assert len(words) == 5 and all(len(w) == 2 and w.isalnum() for w in words)
    assert "cat" in known_words(make_encoder("tfidf", min_df=1).fit(EN), class_names=["cat"])
