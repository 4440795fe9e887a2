"""Bag-of-words text features weighted by TF-IDF, via scikit-learn: the paper's BoW text features.

`fit` learns the vocabulary (words and word pairs seen in at least `min_df` training captions, the
`max_features` most frequent) and each term's inverse document frequency; `encode` turns a caption
into a vector with one (L2-normalised) weight per vocabulary term. Words never seen in training are
ignored. The fitted state is two JSON lists (the terms, the idf weights): saved beside a checkpoint
without pickle, and a query is encoded exactly as the gallery was.
"""
from __future__ import annotations

import numpy as np

from . import Encoder, EncoderError, register_encoder


@register_encoder("tfidf", modality="text")
class Tfidf(Encoder):
    def __init__(self, max_features: int = 2000, ngram_max: int = 2, min_df: int = 2, sublinear_tf: bool = True):
        super().__init__(max_features=int(max_features), ngram_max=int(ngram_max), min_df=int(min_df),
                         sublinear_tf=bool(sublinear_tf))
        self.vectorizer = None  # a fitted sklearn TfidfVectorizer
        self._saved = None      # (terms, idf) from a saved state; the vectorizer is rebuilt on first use

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
        return TfidfVectorizer(lowercase=True, ngram_range=(1, p["ngram_max"]), min_df=p["min_df"],
                               max_features=p["max_features"], sublinear_tf=p["sublinear_tf"],
                               vocabulary=vocabulary, dtype=np.float32)

    def fit(self, items) -> "Tfidf":
        texts = [str(t) for t in items]
        if not texts:
            raise EncoderError("tfidf: no training captions to fit the vocabulary on")
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
            s["vocabulary"] = self.terms
            s["idf"] = [float(x) for x in (self._saved[1] if self._saved is not None else self.vectorizer.idf_)]
        return s

    @classmethod
    def from_state(cls, state: dict) -> "Tfidf":
        enc = cls(**state.get("params", {}))
        if "vocabulary" in state:
            terms, idf = list(state["vocabulary"]), np.asarray(state["idf"], dtype=np.float64)
            if len(terms) != len(idf):
                raise EncoderError(f"tfidf state: {len(terms)} terms but {len(idf)} idf weights")
            if len(set(terms)) != len(terms):
                raise EncoderError("tfidf state: the vocabulary has repeated terms")
            enc._saved = ([str(t) for t in terms], idf)
        return enc
