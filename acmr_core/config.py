"""One config object holds every hyperparameter, each with the paper's default (where the paper gives
one) and a one-line meaning. `ACMRConfig.help(name)` returns that meaning (the dashboard's tooltips)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

GRL_SCHEDULES = ("dann", "constant", "linear")
TRIPLET_SAMPLERS = ("all", "hardest", "semihard", "random")


class ConfigError(ValueError):
    """A hyperparameter has an invalid value; the message names the field."""


def _f(default, meaning, **kw):
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": meaning, **kw})
    return field(default=default, metadata={"help": meaning, **kw})


@dataclass
class ACMRConfig:
    # --- the embedding loss  L_emb = α·L_imi + β·L_imd + reg_weight·L_reg --------------------------
    alpha: float = _f(0.1, "α, weight of the triplet (inter-modal invariance) loss L_imi; the paper searches 0.01-100, best 0.01-0.1")
    beta: float = _f(1.0, "β, weight of the label-prediction (intra-modal discrimination) loss L_imd; paper: 0.01-100 (1.0 chosen on validation)")
    lam: float = _f(0.05, "λ, weight of the negative (hinge) term inside each triplet; paper: 0.05")
    mu: float = _f(8.0, "μ, margin: a negative text/image should lie at least μ away (L2) from the anchor; not given in the paper (8 chosen on validation: at 2 no negative ever came that close, so the margin term did nothing)")
    reg_weight: float = _f(1e-4, "weight of L_reg, the Frobenius norms of the projector weights; not given in the paper")
    triplet_sampler: str = _f("all", "which in-batch triplets L_imi uses: all valid, hardest negative, semi-hard, or one random negative")
    use_adversarial: bool = _f(True, "train the modality classifier behind the gradient reversal layer (off = ablation without L_adv)")
    use_triplet: bool = _f(True, "use the triplet loss L_imi (off = 'label loss only' ablation)")
    use_label: bool = _f(True, "use the label loss L_imd (off = 'triplet loss only' ablation)")
    # --- the minimax game ------------------------------------------------------------------------
    grl_schedule: str = _f("dann", "γ schedule of the gradient reversal layer: dann = 2/(1+exp(-10p))-1, constant, or linear in progress p")
    grl_max: float = _f(0.3, "largest γ, the factor the reversal layer multiplies the modality gradient by (with a minus sign); DANN uses 1, 0.3 chosen on validation")
    k: int = _f(1, "projector steps per modality-classifier step; paper: k = 5, here 1 (chosen on validation: with 5 the classifier is too weak for the reversal to remove the modality signal)")
    # --- optimisation ----------------------------------------------------------------------------
    lr: float = _f(1e-4, "Adam learning rate of the projectors and label classifier; not given in the paper")
    lr_disc: float = _f(1e-2, "Adam learning rate of the modality classifier; not given in the paper (a quick adversary keeps the game honest)")
    batch_size: int = _f(64, "pairs per mini-batch; paper: 64")
    epochs: int = _f(30, "passes over the training split; the best epoch is chosen on validation mAP")
    patience: int = _f(8, "stop early when validation mAP has not improved for this many epochs; 0 = always run every epoch")
    val_fraction: float = _f(0.1, "share of the training split held out for validation (never the test split)")
    max_grad_norm: float = _f(10.0, "clip gradients to this norm; 0 = no clipping")
    # --- architecture ----------------------------------------------------------------------------
    image_layers: list = _f([2000], "hidden layer sizes of the image projector f_V; paper: d_v → 2000 → 200")
    text_layers: list = _f([500], "hidden layer sizes of the text projector f_T; paper: d_t → 500 → 200")
    common_dim: int = _f(200, "m, size of the common space S; paper: 200")
    disc_layers: list = _f([50], "hidden layer sizes of the modality classifier D; paper: 200 → 50 → 2")
    dropout: float = _f(0.5, "dropout after each projector hidden layer (0.5 chosen on validation: the paper's layers are large for 2k pairs)")
    standardize: bool = _f(True, "z-score each input feature with the training split's mean and spread before projecting")
    # --- run -------------------------------------------------------------------------------------
    seed: int = _f(0, "random seed: the same seed gives the same run")
    device: str = _f("auto", "auto (CUDA when present, else CPU), cpu or cuda")
    threads: int = _f(1, "CPU threads torch may use (process-wide); 1 is fastest for these small networks, and immune to a busy machine; 0 = torch's default")
    probe_every: int = _f(1, "measure the modality probe every this many epochs (it fits a logistic regression); 0 = never")
    max_loss: float = _f(1e4, "a loss above this (or NaN) stops training and keeps the last good state")
    snapshot_size: int = _f(400, "pairs of the validation split whose common-space embeddings are sent each epoch for maps; 0 = none")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "ACMRConfig":
        def bad(name, why):
            raise ConfigError(f"config field '{name}': {why} (got {getattr(self, name)!r})")

        for name in ("alpha", "beta", "lam", "mu", "reg_weight", "grl_max", "max_grad_norm"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v or v < 0:
                bad(name, "must be a number >= 0")
        for name in ("lr", "lr_disc"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                bad(name, "must be a positive number")
        for name in ("k", "batch_size", "epochs", "common_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "must be a whole number >= 1")
        if self.batch_size < 2:
            bad("batch_size", "must be at least 2 (triplets need pairs)")
        for name in ("image_layers", "text_layers", "disc_layers"):
            v = getattr(self, name)
            if not isinstance(v, (list, tuple)) or not v or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
                bad(name, "must be a non-empty list of whole numbers >= 1")
        if not 0 <= self.dropout < 1:
            bad("dropout", "must lie in [0, 1)")
        if not 0 <= self.val_fraction < 1:
            bad("val_fraction", "must lie in [0, 1)")
        if self.grl_schedule not in GRL_SCHEDULES:
            bad("grl_schedule", f"unknown schedule; choose one of {', '.join(GRL_SCHEDULES)}")
        if self.triplet_sampler not in TRIPLET_SAMPLERS:
            bad("triplet_sampler", f"unknown sampler; choose one of {', '.join(TRIPLET_SAMPLERS)}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            bad("device", "choose auto, cpu or cuda")
        if not isinstance(self.seed, int) or self.seed < 0:
            bad("seed", "must be a whole number >= 0")
        if not isinstance(self.threads, int) or self.threads < 0:
            bad("threads", "must be a whole number >= 0")
        if not isinstance(self.patience, int) or isinstance(self.patience, bool) or self.patience < 0:
            bad("patience", "must be a whole number >= 0 (0 = no early stopping)")
        if not isinstance(self.probe_every, int) or self.probe_every < 0:
            bad("probe_every", "must be a whole number >= 0")
        if not self.max_loss > 0:
            bad("max_loss", "must be a positive number")
        if not isinstance(self.snapshot_size, int) or self.snapshot_size < 0:
            bad("snapshot_size", "must be a whole number >= 0")
        return self

    # --- helpers ---------------------------------------------------------------------------------
    def replace(self, **changes) -> "ACMRConfig":
        """A copy with some fields changed (validated; unknown names raise ConfigError)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ACMRConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    @staticmethod
    def help(name: str) -> str:
        for f in fields(ACMRConfig):
            if f.name == name:
                return f.metadata["help"]
        raise ConfigError(f"unknown config field: {name}")
