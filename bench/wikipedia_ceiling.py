"""Where the Wikipedia gap comes from: how much the shallow features can give, measured without the test split.

    .venv/bin/python bench/wikipedia_ceiling.py --data-dir ../shared/data/wikipedia

Everything here is 4-fold cross-validation inside the TRAINING split (the test split is never read, except by
the CCA reference line at the end, a fixed classic baseline that tunes nothing). Each fold's held-out quarter
(about 543 pairs) plays the role of the test set: its images query its texts and the other way round.

It prints:
1. how well each modality alone predicts the class (logistic regression): the image side is the weak one;
2. "semantic matching" (Rasiwasia et al., 2010): retrieval in the space of class posteriors p(c|x), ranked by
   cosine (our protocol) and by the plain dot product p(c|v)·p(c|t), which ranks by the chance that the two
   share a class;
3. the same with sharper image posteriors (p^τ, renormalised): a sharper image is a better query and a worse
   gallery item, and one common-space point has to be both;
4. two oracles for Img2Txt: real image posteriors against perfectly labelled texts (the best an image query
   can do when the text side makes no mistake), and perfectly labelled image queries against real text
   posteriors (the best when the image side makes none). The first stays low: the images are the bottleneck.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.cross_decomposition import CCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from acmr_core.data import load_dataset  # noqa: E402
from acmr_core.metrics import retrieval_scores, scores_both_ways  # noqa: E402


def sharpen(p: np.ndarray, tau: float) -> np.ndarray:
    q = p ** tau
    return q / q.sum(1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data/wikipedia")
    ap.add_argument("--C", type=float, default=0.1, help="inverse regularisation of the logistic regressions")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    ds = load_dataset("wikipedia", data_dir=args.data_dir)
    train = ds.indices("train")
    V, T, y = ds.image_features.astype(np.float64), ds.text_features.astype(np.float64), ds.labels
    rows = []
    for fit, held in StratifiedKFold(4, shuffle=True, random_state=0).split(train, y[train]):
        tr, va = train[fit], train[held]
        clf = lambda: make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=3000))  # noqa: E731
        pv = clf().fit(V[tr], y[tr]).predict_proba(V[va]).astype(np.float32)
        pt = clf().fit(T[tr], y[tr]).predict_proba(T[va]).astype(np.float32)
        onehot = np.eye(ds.num_classes, dtype=np.float32)[y[va]]
        cos = retrieval_scores(pv, pt, y[va])
        dot = scores_both_ways(pv @ pt.T, y[va])    # ranked by the dot product instead of the cosine
        sharp = [retrieval_scores(sharpen(pv, tau), pt, y[va]) for tau in (2, 4)]
        rows.append([(pv.argmax(1) == y[va]).mean(), (pt.argmax(1) == y[va]).mean(),
                     cos["img2txt"], cos["txt2img"], *[dot[d] for d in ("img2txt", "txt2img")],
                     retrieval_scores(pv, onehot, y[va])["img2txt"], retrieval_scores(onehot, pt, y[va])["img2txt"],
                     *[r[d] for r in sharp for d in ("img2txt", "txt2img")]])
    m = np.mean(rows, axis=0)
    print("Wikipedia, shallow features: 4-fold cross-validation inside the training split (test never read)")
    print(f"  class accuracy from one modality (logistic regression): image {m[0]:.3f}, text {m[1]:.3f} "
          f"(chance: largest class {np.bincount(y[train]).max() / len(train):.3f})")
    print("  semantic matching (posterior space), mAP@all Img2Txt / Txt2Img:")
    print(f"    ranked by cosine (our protocol) {m[2]:.3f} / {m[3]:.3f}")
    print(f"    ranked by dot product           {m[4]:.3f} / {m[5]:.3f}   (cosine divides out each gallery item's confidence)")
    print(f"    cosine, image posteriors sharpened (τ = 2, 4)  {m[8]:.3f} / {m[9]:.3f},  {m[10]:.3f} / {m[11]:.3f}"
          "   (better queries, worse gallery)")
    print(f"  Img2Txt oracles, mAP@all: image posteriors vs perfectly labelled texts {m[6]:.3f}; "
          f"perfectly labelled images vs text posteriors {m[7]:.3f}")
    # a fixed classic reference under our exact protocol (unsupervised, all 10 components, nothing tuned)
    fit = np.flatnonzero(ds.split != "test")
    te = ds.indices("test")
    a, b = CCA(10, max_iter=3000).fit(V[fit], T[fit]).transform(V[te], T[te])
    r = retrieval_scores(a, b, y[te])
    print(f"reference: CCA (10 components) on the test split, cosine mAP@all {r['img2txt']:.3f} / {r['txt2img']:.3f}")


if __name__ == "__main__":
    main()
