"""Bag-of-words text features weighted by TF-IDF, via scikit-learn: the paper's BoW text features.

`fit` learns the vocabulary (terms seen in at least `min_df` training captions, the `max_features` most
frequent) and each term's inverse document frequency; `encode` turns a caption into a vector with one
(L2-normalised) weight per vocabulary term. Terms never seen in training are ignored.

What a term is depends on the script (`analyzer`):

  word   words and word pairs (scikit-learn's word pattern): for scripts that put spaces between words.
  char   character n-grams of 1..`char_ngram_max` characters: for scripts written without spaces
         (Chinese, Japanese, Thai, Lao, Khmer, Myanmar, ...). The word pattern would keep a whole run of
         such characters as one "word", i.e. about one term per phrase, almost never seen twice.
  auto   (default) decide at `fit` from the training captions: `char` if at least a fifth of their letters
         belong to a script written without spaces, or if their "words" are implausibly long (median over
         12 characters), else `word`.

The fitted state is JSON: the analyzer actually used, the terms and the idf weights; it is saved beside a
checkpoint without pickle, and a query is encoded exactly as the gallery was (same analyzer, same terms).
"""
from __future__ import annotations

import re

import numpy as np

from . import Encoder, EncoderError, register_encoder

ANALYZERS = ("auto", "word", "char")
# letters of scripts written without spaces between words: Thai, Lao, Tibetan, Myanmar, Khmer, CJK
# (radicals, punctuation, kana, Han, compatibility forms) and half-width katakana. Korean uses spaces.
_NO_SPACE = re.compile("[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fdf"
                       "\u3040-\u30ff\u3100-\u312f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
                       "\uf900-\ufaff\uff66-\uff9f]")
_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern
_LETTER = re.compile(r"(?u)\w")


def detect_analyzer(texts) -> str:
    """'char' if the texts are written without spaces between words (see the module doc), else 'word'."""
    sample = [str(t) for t in texts][:2000]
    letters = sum(len(_LETTER.findall(t)) for t in sample)
    if letters == 0:
        return "word"
    if sum(len(_NO_SPACE.findall(t)) for t in sample) >= 0.2 * letters:
        return "char"
    lengths = [len(w) for t in sample for w in _WORD.findall(t)]
    return "char" if lengths and float(np.median(lengths)) > 12 else "word"


@register_encoder("tfidf", modality="text")
class Tfidf(Encoder):
    def __init__(self, max_features: int = 2000, ngram_max: int = 2, min_df: int = 2, sublinear_tf: bool = True,
                 analyzer: str = "auto", char_ngram_max: int = 2):
        if analyzer not in ANALYZERS:
            raise EncoderError(f"tfidf: analyzer must be one of {', '.join(ANALYZERS)}, got {analyzer!r}")
        super().__init__(max_features=int(max_features), ngram_max=int(ngram_max), min_df=int(min_df),
                         sublinear_tf=bool(sublinear_tf), analyzer=str(analyzer), char_ngram_max=int(char_ngram_max))
        self.vectorizer = None  # a fitted sklearn TfidfVectorizer
        self._saved = None      # (terms, idf) from a saved state; the vectorizer is rebuilt on first use
        self.analyzer_used = None if analyzer == "auto" else analyzer  # 'word' or 'char' once known

    def _ready(self):
        """The fitted vectorizer (rebuilt from a saved state on first use: importing sklearn takes ~1 s)."""
        if self.vectorizer is None and self._saved is not None:
            terms, idf = self._saved
            self.vectorizer = self._new_vectorizer(vocabulary={t: i for i, t in enumerate(terms)})
            self.vectorizer.idf_ = idf
        if self.vectorizer is None:
            raise EncoderError("tfidf is not fitted: fit it on the training captions first (or load its state)")
        return self.vectorizer

    def _new_vectorizer(self, vocabulary=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        char = self.analyzer_used == "char"
        return TfidfVectorizer(lowercase=True, analyzer="char" if char else "word",
                               ngram_range=(1, p["char_ngram_max"] if char else p["ngram_max"]), min_df=p["min_df"],
                               max_features=p["max_features"], sublinear_tf=p["sublinear_tf"],
                               vocabulary=vocabulary, dtype=np.float32)

    def fit(self, items) -> "Tfidf":
        texts = [str(t) for t in items]
        if not texts:
            raise EncoderError("tfidf: no training captions to fit the vocabulary on")
        if self.params["analyzer"] == "auto":
            self.analyzer_used = detect_analyzer(texts)
        vec = self._new_vectorizer()
        if len(texts) < vec.min_df:
            vec.min_df = 1
        try:
            vec.fit(texts)
        except ValueError as e:  # e.g. every caption empty or made of stop characters
            raise EncoderError(f"tfidf: cannot build a vocabulary from {len(texts)} training captions ({e})") from None
        self.vectorizer, self._saved = vec, None
        return self

    def encode(self, items) -> np.ndarray:
        return self._ready().transform([str(t) for t in items]).toarray().astype(np.float32)

    def unknown_words(self, text: str) -> list[str]:
        """The parts of `text` this vocabulary ignores: unseen words (word analyzer) or characters (char)."""
        vocab = set(self.terms)
        if self.analyzer_used == "char":
            parts = [c for c in str(text).lower() if _LETTER.match(c)]
        else:
            parts = _WORD.findall(str(text).lower())
        seen, out = set(), []
        for w in parts:
            if w not in vocab and w not in seen:
                seen.add(w)
                out.append(w)
        return out

    @property
    def dim(self) -> int:
        if self._saved is not None:
            return len(self._saved[0])
        if self.vectorizer is None:
            raise EncoderError("tfidf is not fitted: its dimension is the vocabulary size, known after fit")
        return len(self.vectorizer.vocabulary_)

    @property
    def terms(self) -> list[str]:
        """Vocabulary terms in feature order."""
        if self._saved is not None:
            return list(self._saved[0])
        return [str(t) for t in self._ready().get_feature_names_out()]

    def state(self) -> dict:
        s = self.identity()
        if self.vectorizer is not None or self._saved is not None:
            s["analyzer"] = self.analyzer_used or "word"
            s["vocabulary"] = self.terms
            s["idf"] = [float(x) for x in (self._saved[1] if self._saved is not None else self.vectorizer.idf_)]
        return s

    @classmethod
    def from_state(cls, state: dict) -> "Tfidf":
        enc = cls(**state.get("params", {}))
        if "vocabulary" in state:
            used = state.get("analyzer", "word")  # states saved before analyzers existed were word-based
            if used not in ("word", "char"):
                raise EncoderError(f"tfidf state: unknown analyzer {used!r}")
            enc.analyzer_used = used
            terms, idf = list(state["vocabulary"]), np.asarray(state["idf"], dtype=np.float64)
            if len(terms) != len(idf):
                raise EncoderError(f"tfidf state: {len(terms)} terms but {len(idf)} idf weights")
            if len(set(terms)) != len(terms):
                raise EncoderError("tfidf state: the vocabulary has repeated terms")
            enc._saved = ([str(t) for t in terms], idf)
        return enc
