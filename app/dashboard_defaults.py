"""The dashboard's defaults, labels and teaching texts (no Streamlit here, so tests and the benchmark can
import them without running the page)."""
from __future__ import annotations

from acmr_core.config import ACMRConfig
from acmr_core.presets import DESCRIPTIONS, preset_config

DEFAULTS = ACMRConfig()         # the config's defaults (its help texts give the paper's value where it differs)
DEMO_PRESET = "demo"            # the dashboard starts from this preset (acmr_core/presets.py), as `--preset demo` does
DEMO = preset_config(DEMO_PRESET)
DEMO_WHY = DESCRIPTIONS[DEMO_PRESET]
DEMO_EPOCHS = DEMO.epochs       # kept for the page's help texts
DEMO_PATIENCE = DEMO.patience

# the hyperparameters' labels, groups, bounds, steps and choices are the config's schema (acmr_core/config.py)
FIELD_GROUPS = [(g, [f.name for f in ACMRConfig.schema() if f.group == g])
                for g in dict.fromkeys(f.group for f in ACMRConfig.schema())]
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
projectors to hide the modality, and as they win, the accuracy sinks back toward **50%**. A curve that stays high
means D is winning the game. **Careful:** a fooled D does *not* prove that images and texts are mixed. The
projectors can fool one small classifier by rearranging the space (say, images and texts in separate sub-clumps
that D's boundary cannot follow) while every point's neighbours still share its modality. The two honest checks
are the modality probe and the kNN mixing below; the Compare tab shows the difference with numbers.""",
    "grl": """**What:** γ, the factor the gradient reversal layer multiplies D's gradient by (with a minus sign)
on its way back into the projectors. **Expect:** with the DANN schedule it rises from 0 to its maximum
during the first part of training, so the adversarial game starts gently once the embeddings make sense.""",
    "map": """**What:** retrieval quality on the validation split (never the test split): every image queries all
texts (Image → Text) and vice versa, ranked by cosine similarity; mAP over the whole ranking. **Expect:** a
rise from the untrained model's level (epoch 0) and then a plateau; the green line marks the best epoch,
which is the model that is kept.""",
    "probe": """**What:** global invariance. After each epoch a *fresh* straight-line classifier (logistic
regression) is fitted to tell image from text embeddings of the training split, and scored on held-out ones (the
validation split): balanced accuracy. Unlike D it was never fooled on purpose, so it is an honest check. **0.5** =
no straight line separates images from texts; **1.0** = one always does. **Expect:** it falls from epoch 0 as
the two clouds move onto each other; compare the runs with and without the adversary in the Compare tab.""",
    "mixing": """**What:** local invariance, the one you see in a map. For each validation point, take its 10
nearest neighbours (cosine) and count how many come from the other modality; times 2, averaged. **1.0** =
perfectly mixed (a point's neighbours are as often texts as images); **0** = segregated (every neighbour shares
the point's modality). **Expect:** low before training (two clouds), rising as the classes gather images and
texts together. It can fall while the probe falls too: separate image and text sub-clumps inside each class fool
a straight line but not this count.""",
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
    "compare": """**What:** the same data, seed and settings trained once per variant: with the adversary of
the chosen game, without any adversary (only the label and triplet losses), and, when the chosen game is not the
paper's, with the paper's game (the reversal layer on D's cross-entropy). Each column shows its map of the common
space coloured by **modality** (● image, ◆ text), the validation mAP, D's accuracy, and the two invariance
measures; the charts below follow them epoch by epoch. **How to read it:** an adversary that does its job lowers
the **probe** (toward 0.5) and raises the **mixing** (toward 1) against the run without it, at about the same mAP;
in the map, images and texts of a class then lie among each other. **The failure to look for:** D's accuracy near
50% (D fooled) while mixing falls below the no-adversary run: the projectors beat D by rearranging the space,
not by merging the modalities. A fooled discriminator does not mean mixed modalities. The sentences above the
maps are written from these runs' own numbers.""",
    "sweep": """**What:** one short run per adversary weight (γ maximum, the factor of the reversed gradient;
0 = no adversary), same seed and data, and the kept model's validation numbers plotted against the weight:
kNN mixing (1 = mixed), the modality probe (0.5 = a straight line cannot tell image from text) and mAP. **How to
read it:** the knob a teacher turns should move the space the right way: mixing up and the probe down as the
weight grows, with mAP flat. If mixing *falls* as the weight grows, the adversary is winning its game against D
by segregating images and texts locally. The quick setting trains fewer epochs of narrower projectors at a
larger learning rate (the line under the cost says exactly what it changed), so a sweep costs minutes, not a
quarter of an hour; its numbers are not a full run's, its trends are what to look at.""",
}


def initial_value(name: str):
    """The value a settings widget starts at: the demo preset's."""
    return getattr(DEMO, name)


def default_config(**changes) -> ACMRConfig:
    """The configuration the dashboard starts with: the demo preset (`--preset demo`), then `changes`."""
    return preset_config(DEMO_PRESET, **changes)
