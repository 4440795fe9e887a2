"""The dashboard's defaults, labels and teaching texts (no Streamlit here, so tests and the benchmark can
import them without running the page)."""
from __future__ import annotations

from dataclasses import fields

from acmr_core.config import GRL_SCHEDULES, TRIPLET_SAMPLERS, ACMRConfig
from acmr_core.presets import DESCRIPTIONS, preset_config

DEFAULTS = ACMRConfig()         # the config's defaults (its help texts give the paper's value where it differs)
DEMO_PRESET = "demo"            # the dashboard starts from this preset (acmr_core/presets.py), as `--preset demo` does
DEMO = preset_config(DEMO_PRESET)
DEMO_WHY = DESCRIPTIONS[DEMO_PRESET]
DEMO_EPOCHS = DEMO.epochs       # kept for the page's help texts
DEMO_PATIENCE = DEMO.patience

FIELD_GROUPS = [
    ("Loss weights", ["alpha", "beta", "lam", "mu", "reg_weight", "triplet_sampler"]),
    ("Ablations: switch a loss off", ["use_adversarial", "use_triplet", "use_label"]),
    ("Minimax game: gradient reversal", ["grl_schedule", "grl_max", "k"]),
    ("Optimisation", ["epochs", "patience", "batch_size", "lr", "lr_disc", "val_fraction", "max_grad_norm"]),
    ("Architecture", ["image_layers", "text_layers", "common_dim", "disc_layers", "dropout", "standardize"]),
    ("Run", ["seed", "device", "threads", "probe_every", "max_loss", "snapshot_size"]),
]
_listed = {n for _, names in FIELD_GROUPS for n in names}
_other = [f.name for f in fields(ACMRConfig) if f.name not in _listed]
if _other:  # a field added to the config later still gets a widget
    FIELD_GROUPS.append(("Other", _other))
LABELS = {
    "alpha": "α · triplet loss weight", "beta": "β · label loss weight", "lam": "λ · negative-term weight",
    "mu": "μ · triplet margin", "reg_weight": "L_reg weight", "triplet_sampler": "Triplet sampling",
    "use_adversarial": "Adversarial loss L_adv (modality classifier)", "use_triplet": "Triplet loss L_imi",
    "use_label": "Label loss L_imd", "grl_schedule": "γ schedule", "grl_max": "γ maximum",
    "k": "k · projector steps per D step", "epochs": "Epochs",
    "patience": "Early stopping patience (epochs)", "batch_size": "Batch size",
    "lr": "Learning rate (projectors)", "lr_disc": "Learning rate (modality classifier)",
    "val_fraction": "Validation fraction", "max_grad_norm": "Gradient clipping norm",
    "image_layers": "Image projector hidden layers", "text_layers": "Text projector hidden layers",
    "common_dim": "Common space size m", "disc_layers": "Modality classifier hidden layers",
    "dropout": "Dropout", "standardize": "Standardise input features", "seed": "Seed", "device": "Device",
    "threads": "CPU threads for training",
    "probe_every": "Modality probe every … epochs", "max_loss": "Divergence guard (max loss)",
    "snapshot_size": "Points per map (pairs)",
}
CHOICES = {"triplet_sampler": list(TRIPLET_SAMPLERS), "grl_schedule": list(GRL_SCHEDULES),
           "device": ["auto", "cpu", "cuda"]}
SCI = {"lr", "lr_disc", "reg_weight", "max_loss"}
STEPS = {"alpha": 0.01, "beta": 0.01, "lam": 0.01, "mu": 0.1, "grl_max": 0.1, "val_fraction": 0.05,
         "max_grad_norm": 1.0, "dropout": 0.05}
TABS = [":material/monitoring: Training", ":material/scatter_plot: Maps", ":material/compare: Compare",
        ":material/search: Search", ":material/save: Checkpoints & export"]

EXPLAIN = {
    "losses": """**What:** the terms of ACMR's objective at every training step (thin line) and their moving
average (thick). **Expect:** *L_imd* (is each embedding still recognisable as its class?) and *L_imi* (are
matching image–text pairs close and mismatched ones far?) fall. *L_adv* is the modality classifier's
cross-entropy: low while it tells images from texts, about ln 2 ≈ 0.69 when it is fooled; watch it fall as the
classifier learns and climb back as the projectors learn to hide the modality. *L_reg* (weight norms) moves
slowly. The total is what the projector step minimises: α·L_imi + β·L_imd + w·L_reg + L_adv (its gradient
reversed on the way into the projectors).""",
    "modality_classifier": """**What:** how often the modality classifier D tells, from an embedding alone, whether
it came from an image or a text (on each training batch). **Expect:** D starts untrained (about 50%) and quickly
learns to tell the two modalities apart, so its accuracy rises; the gradient reversal layer then pushes the
projectors to hide the modality, and as they win, the accuracy sinks back toward **50%**: a common space where
images and texts are interchangeable. A curve that stays high means D is winning the game (try a larger γ
maximum or more epochs).""",
    "grl": """**What:** γ, the factor the gradient reversal layer multiplies D's gradient by (with a minus sign)
on its way back into the projectors. **Expect:** with the DANN schedule it rises from 0 to its maximum
during the first part of training, so the adversarial game starts gently once the embeddings make sense.""",
    "map": """**What:** retrieval quality on the validation split (never the test split): every image queries all
texts (Image → Text) and vice versa, ranked by cosine similarity; mAP over the whole ranking. **Expect:** a
rise from the untrained model's level (epoch 0) and then a plateau; the green line marks the best epoch,
which is the model that is kept.""",
    "probe": """**What:** after each epoch a *fresh* logistic regression tries to predict the modality of
validation embeddings (balanced accuracy, cross-validated). Unlike D it was never fooled on purpose, so it is
an honest check. **Expect:** it falls toward **0.5** (images and texts indistinguishable) as the adversarial
game removes the modality signal; without the adversarial loss (see the Compare tab) it stays higher.""",
    "gap": """**What:** the distance between the centre of the image embeddings and the centre of the text
embeddings (after scaling each to length 1). **Expect:** it shrinks as the two clouds move onto each other.""",
    "maps": """**What:** the common space of a fixed sample of validation pairs, squeezed to 2-D. Left: coloured by
**modality** (● image, ◆ text). Right: the same points coloured by **class**. Hover a point for its class and
caption. **UMAP** keeps neighbourhoods: before training (epoch 0) each image's nearest neighbours are other
images, so the images and the texts form two separate clouds (the *modality gap*). **Expect:** as ACMR learns,
the two clouds move onto each other while the classes pull apart into groups that hold both images and
texts. UMAP frames are computed at a few epochs in the background, each started from the previous one and
aligned to it, so points do not jump when you scrub. **PCA** is recomputed live every epoch: it keeps the
directions of largest spread, which show the classes but often not the modality difference (the probe still
sees it in the other dimensions): the two projections answer different questions.""",
    "compare": """**What:** the same data, seed and settings trained twice: once with the adversarial loss (full
ACMR), once without it (only the label and triplet losses). **Expect:** without the modality classifier, images
and texts stay more separable: a higher modality probe, and in the maps same-class images and texts sit side by
side rather than mixed. Retrieval mAP may differ only a little, and on easy data the whole difference can be
small: the adversarial loss mostly changes *how* the space is organised. The numbers are the real ones of
these two runs.""",
}


def initial_value(name: str):
    """The value a settings widget starts at: the demo preset's."""
    return getattr(DEMO, name)


def default_config(**changes) -> ACMRConfig:
    """The configuration the dashboard starts with: the demo preset (`--preset demo`), then `changes`."""
    return preset_config(DEMO_PRESET, **changes)
