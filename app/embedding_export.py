"""The dashboard's embedding export: one split's common-space embeddings of the current model, as a `.npz`
or as a zip of the two TSV files TensorFlow's Embedding Projector loads (the work is in acmr_core.export)."""
from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from acmr_core import export
from acmr_core.data import training_split

SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


def _embeddings(run, split: str) -> dict:
    return export.split_embeddings(run.model(), run.dataset, split, run.config)


def npz_bytes(run, split: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="acmr-export-") as d:
        path = export.write_npz(_embeddings(run, split), Path(d) / "embeddings.npz")
        return path.read_bytes()


def projector_zip(run, split: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="acmr-export-") as d:
        vec, meta = export.write_projector_tsv(_embeddings(run, split), d, list(run.dataset.class_names))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(vec, vec.name)
            z.write(meta, meta.name)
        return buf.getvalue()


def downloads(run, v) -> None:
    """A split picker and the two downloads (built only when clicked)."""
    st.markdown("**Embeddings of the current model**")
    ds = run.dataset
    if ds is None or v.epoch < 1:
        st.caption("Train at least one epoch to export embeddings.")
        return
    assignment = training_split(ds, run.config.val_fraction, run.config.seed)   # "val": what the run carved
    splits = [s for s in SPLIT_NAMES if (assignment == s).any()]
    split = st.selectbox("Split", splits, index=splits.index("test") if "test" in splits else 0,
                         format_func=lambda s: f"{SPLIT_NAMES[s]} ({int((assignment == s).sum())} pairs)",
                         key="dl_emb_split",
                         help="Which pairs to embed with the current model (the best epoch once training ended, else "
                              "the last finished epoch). Row i of image and text is pair i, in dataset order.")
    dl = dict(icon=":material/download:", on_click="ignore")
    c1, c2 = st.columns(2)
    c1.download_button("Embeddings (.npz)", data=lambda: npz_bytes(run, split),
                       file_name=f"acmr-{run.run_id}-{split}-embeddings.npz", mime="application/octet-stream",
                       key="dl_emb_npz", help="NumPy arrays image, text (aligned pairs) and labels: "
                                              "np.load(file)['image'].", **dl)
    c2.download_button("Embedding Projector (TSV zip)", data=lambda: projector_zip(run, split),
                       file_name=f"acmr-{run.run_id}-{split}-projector.zip", mime="application/zip", key="dl_emb_tsv",
                       help="vectors.tsv and metadata.tsv (modality, class, caption): load both at "
                            "projector.tensorflow.org and colour the points by modality or class.", **dl)
