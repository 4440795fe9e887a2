"""One config object holds every hyperparameter, each with the paper's default (where the paper gives
one), a one-line meaning and its schema: a label, a group, bounds, a step and choices. The schema is the one
source: `ACMRConfig.schema()` drives the dashboard's widgets and the CLI's flags, `validate()` checks a config
against it, `ACMRConfig.parse(name, text)` reads a value typed by a person. `ACMRConfig.help(name)` returns the
meaning (the dashboard's tooltips)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

GRL_SCHEDULES = ("dann", "constant", "linear")
TRIPLET_SAMPLERS = ("all", "hardest", "semihard", "random")
DEVICES = ("auto", "cpu", "cuda")          # and cuda:<n>
# the minimax game between the projectors and the modality classifier D (model.GAME_RULES says what each changes)
GAMES = {
    "penalty": "the paper's reversal layer against a smooth D: a zero-centred gradient penalty (weight disc_penalty) keeps "
               "D flat around the data, so its reversed gradient pulls whole regions of one modality onto the other "
               "instead of letting the projectors fool it by reshuffling points into separate image and text clumps "
               "(chosen on validation: it mixed the modalities most at equal mAP)",
    "paper": "the paper's game: a plain D learns image vs text by cross-entropy L_adv; the gradient reversal layer hands "
             "the projectors -γ·∇L_adv. A fooled D does not mean mixed modalities: the projectors can fool it by "
             "rearranging the space into separate local clumps of images and texts",
    "conditional_penalty": "the penalty game with a class-conditional D: D also sees the label, so it hunts the "
                           "image/text difference inside each class (the sub-clumps a map shows)",
    "lipschitz": "the paper's game with a spectral-normalised (1-Lipschitz) D: it cannot draw a sharp boundary, so its "
                 "reversed gradient moves regions rather than flipping points",
    "lipschitz_conditional": "spectral-normalised and class-conditional D, with the reversal layer",
    "conditional": "the paper's game with a class-conditional D (D also sees the label)",
    "confusion": "confusion loss (Tzeng et al., 2015): D learns as in the paper, but the projectors minimise γ times the "
                 "cross-entropy of D's output against 50/50 (no reversal layer): they make D unsure rather than wrong",
}
GROUPS = ("Loss weights", "Ablations: switch a loss off", "Minimax game: gradient reversal", "Optimisation",
          "Architecture", "Run")
LOSS, ABLATE, GAME, OPTIM, ARCH, RUN = GROUPS


class ConfigError(ValueError):
    """A hyperparameter has an invalid value; the message names the field."""


def _f(default, meaning, **kw):
    """A field with its meaning and schema: label, group, lo / hi (bounds; lo_open / hi_open exclude them),
    step, choices, sci (show in scientific notation), why (the message when a bound is broken)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": meaning, **kw})
    return field(default=default, metadata={"help": meaning, **kw})


@dataclass(frozen=True)
class FieldSpec:
    """One hyperparameter as a widget or a flag sees it."""

    name: str
    default: object
    help: str
    label: str
    group: str
    kind: str                   # bool, int, float, str or list (a list of whole numbers)
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    step: float | None = None
    choices: tuple | None = None
    sci: bool = False
    why: str | None = None

    def check(self, v) -> str | None:
        """Why `v` is not a valid value (None if it is)."""
        if self.kind == "list":
            lo = 1 if self.lo is None else self.lo
            if not isinstance(v, (list, tuple)) or not v or not all(_is_int(x) and x >= lo for x in v):
                return self.why or f"must be a non-empty list of whole numbers >= {lo:g}"
            return None
        if self.choices is not None:
            return None if v in self.choices else self.why or f"choose one of {', '.join(map(str, self.choices))}"
        if self.kind == "bool":
            return None if isinstance(v, bool) else "must be true or false"
        if self.kind == "str":
            return None if isinstance(v, str) else "must be text"
        whole = self.kind == "int"
        if whole and not _is_int(v) or not whole and (not _is_num(v) or v != v):
            return "must be a whole number" if whole else "must be a number"
        low = self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo)
        high = self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi)
        if low or high:
            return self.why or self.bounds_text()
        return None

    def bounds_text(self) -> str:
        noun = "a whole number" if self.kind == "int" else "a number"
        if self.lo == 0 and self.lo_open and self.hi is None:
            return f"must be a positive {'whole number' if self.kind == 'int' else 'number'}"
        if self.hi is None:
            return f"must be {noun} {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"must lie in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _kind(default) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(type(default), "str")


@dataclass
class ACMRConfig:
    # --- the embedding loss  L_emb = α·L_imi + β·L_imd + reg_weight·L_reg --------------------------
    alpha: float = _f(0.1, "α, weight of the triplet (inter-modal invariance) loss L_imi; the paper searches 0.01-100, best 0.01-0.1", label="α · triplet loss weight", group=LOSS, lo=0, step=0.01)
    beta: float = _f(1.0, "β, weight of the label-prediction (intra-modal discrimination) loss L_imd; paper: 0.01-100 (1.0 chosen on validation)", label="β · label loss weight", group=LOSS, lo=0, step=0.01)
    lam: float = _f(0.05, "λ, weight of the negative (hinge) term inside each triplet; paper: 0.05", label="λ · negative-term weight", group=LOSS, lo=0, step=0.01)
    mu: float = _f(8.0, "μ, margin: a negative text/image should lie at least μ away (L2) from the anchor; not given in the paper (8 chosen on validation: at 2 no negative ever came that close, so the margin term did nothing)", label="μ · triplet margin", group=LOSS, lo=0, step=0.1)
    reg_weight: float = _f(1e-4, "weight of L_reg, the Frobenius norms of the projector weights; not given in the paper", label="L_reg weight", group=LOSS, lo=0, step=1e-5, sci=True)
    triplet_sampler: str = _f("all", "which in-batch triplets L_imi uses: all valid, hardest negative, semi-hard, or one random negative", label="Triplet sampling", group=LOSS, choices=TRIPLET_SAMPLERS)
    use_adversarial: bool = _f(True, "train the modality classifier behind the gradient reversal layer (off = ablation without L_adv)", label="Adversarial loss L_adv (modality classifier)", group=ABLATE)
    use_triplet: bool = _f(True, "use the triplet loss L_imi (off = 'label loss only' ablation)", label="Triplet loss L_imi", group=ABLATE)
    use_label: bool = _f(True, "use the label loss L_imd (off = 'triplet loss only' ablation)", label="Label loss L_imd", group=ABLATE)
    # --- the minimax game ------------------------------------------------------------------------
    game: str = _f("penalty", "the form of the minimax game between the projectors and the modality classifier D; penalty (default) = the reversal layer against a smooth, gradient-penalised D; paper = the paper's plain D (see the Compare tab for what each does)", label="Game", group=GAME, choices=tuple(GAMES))
    disc_penalty: float = _f(0.3, "weight of the zero-centred gradient penalty on D in the penalty games (Mescheder et al., 2018): a D that is flat around the data cannot be fooled by small reshuffles (0.3 chosen on validation)", label="D gradient penalty", group=GAME, lo=0, step=0.1)
    disc_steps: int = _f(1, "modality-classifier steps on each batch where D is stepped (D's training budget)", label="D steps per update", group=GAME, lo=1)
    grl_schedule: str = _f("dann", "γ schedule of the gradient reversal layer: dann = 2/(1+exp(-10p))-1, constant, or linear in progress p", label="γ schedule", group=GAME, choices=GRL_SCHEDULES)
    grl_max: float = _f(1.0, "largest γ, the adversary's weight: the factor the reversal layer multiplies the modality gradient by (with a minus sign); DANN uses 1 (1 chosen on validation for the penalty game)", label="γ maximum", group=GAME, lo=0, step=0.1)
    k: int = _f(1, "projector steps per modality-classifier step; paper: k = 5, here 1 (chosen on validation: with 5 the classifier is too weak for the reversal to remove the modality signal)", label="k · projector steps per D step", group=GAME, lo=1)
    # --- optimisation ----------------------------------------------------------------------------
    lr: float = _f(1e-4, "Adam learning rate of the projectors and label classifier; not given in the paper", label="Learning rate (projectors)", group=OPTIM, lo=0, lo_open=True, step=1e-5, sci=True)
    lr_disc: float = _f(1e-2, "Adam learning rate of the modality classifier; not given in the paper (a quick adversary keeps the game honest)", label="Learning rate (modality classifier)", group=OPTIM, lo=0, lo_open=True, step=1e-3, sci=True)
    batch_size: int = _f(64, "pairs per mini-batch; paper: 64", label="Batch size", group=OPTIM, lo=2, why="must be at least 2 (triplets need pairs)")
    epochs: int = _f(30, "passes over the training split; the best epoch is chosen on validation mAP", label="Epochs", group=OPTIM, lo=1)
    patience: int = _f(8, "stop early when validation mAP has not improved for this many epochs; 0 = always run every epoch", label="Early stopping patience (epochs)", group=OPTIM, lo=0, why="must be a whole number >= 0 (0 = no early stopping)")
    val_fraction: float = _f(0.1, "share of the training split held out for validation (never the test split)", label="Validation fraction", group=OPTIM, lo=0, hi=1, hi_open=True, step=0.05)
    max_grad_norm: float = _f(10.0, "clip gradients to this norm; 0 = no clipping", label="Gradient clipping norm", group=OPTIM, lo=0, step=1.0)
    # --- architecture ----------------------------------------------------------------------------
    image_layers: list = _f([2000], "hidden layer sizes of the image projector f_V; paper: d_v → 2000 → 200", label="Image projector hidden layers", group=ARCH)
    text_layers: list = _f([500], "hidden layer sizes of the text projector f_T; paper: d_t → 500 → 200", label="Text projector hidden layers", group=ARCH)
    common_dim: int = _f(200, "m, size of the common space S; paper: 200", label="Common space size m", group=ARCH, lo=1)
    disc_layers: list = _f([50], "hidden layer sizes of the modality classifier D; paper: 200 → 50 → 2", label="Modality classifier hidden layers", group=ARCH)
    dropout: float = _f(0.5, "dropout after each projector hidden layer (0.5 chosen on validation: the paper's layers are large for 2k pairs)", label="Dropout", group=ARCH, lo=0, hi=1, hi_open=True, step=0.05)
    standardize: bool = _f(True, "z-score each input feature with the training split's mean and spread before projecting", label="Standardise input features", group=ARCH)
    # --- run -------------------------------------------------------------------------------------
    seed: int = _f(0, "random seed: the same seed gives the same run", label="Seed", group=RUN, lo=0)
    device: str = _f("auto", "auto (CUDA when present, else CPU), cpu or cuda", label="Device", group=RUN, choices=DEVICES)
    threads: int = _f(1, "CPU threads torch may use (process-wide); 1 is fastest for these small networks, and immune to a busy machine; 0 = torch's default", label="CPU threads for training", group=RUN, lo=0)
    probe_every: int = _f(1, "measure the modality probe every this many epochs (it fits a logistic regression); 0 = never", label="Modality probe every … epochs", group=RUN, lo=0)
    max_loss: float = _f(1e4, "a loss above this (or NaN) stops training and keeps the last good state", label="Divergence guard (max loss)", group=RUN, lo=0, lo_open=True, step=1e3, sci=True)
    snapshot_size: int = _f(400, "pairs of the validation split whose common-space embeddings are sent each epoch for maps; 0 = none", label="Points per map (pairs)", group=RUN, lo=0)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "ACMRConfig":
        """Check every field against its schema; a ConfigError names the first bad one."""
        for spec in self.schema():
            v = getattr(self, spec.name)
            if spec.name == "device" and isinstance(v, str) and v.startswith("cuda:"):
                continue                        # cuda:<n>, besides the listed choices
            why = spec.check(v)
            if why:
                raise ConfigError(f"config field '{spec.name}': {why} (got {v!r})")
        return self

    @classmethod
    def schema(cls) -> list[FieldSpec]:
        """Every field's schema, in the config's order (the dashboard groups them by `group`)."""
        out = []
        for f in fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            md = dict(f.metadata)
            meaning = md.pop("help")
            md.setdefault("label", f.name.replace("_", " "))
            md.setdefault("group", "Other")
            if "choices" in md:
                md["choices"] = tuple(md["choices"])
            out.append(FieldSpec(f.name, default, meaning, kind=_kind(default), **md))
        return out

    @classmethod
    def spec(cls, name: str) -> FieldSpec:
        for s in cls.schema():
            if s.name == name:
                return s
        raise ConfigError(f"unknown config field: {name}")

    @classmethod
    def parse(cls, name: str, value):
        """A value typed by a person (a widget's text, a flag) as the field's type; ConfigError if it is not one.
        Lists are whole numbers separated by commas, spaces or semicolons (e.g. "1024, 512")."""
        spec = cls.spec(name)
        try:
            if spec.kind == "list":
                if isinstance(value, (list, tuple)):
                    return [int(x) for x in value]
                return [int(x) for x in str(value).replace(";", ",").replace(" ", ",").split(",") if x.strip()]
            if spec.kind == "bool":
                return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
            if spec.kind == "int":
                if isinstance(value, float) and value != int(value):
                    raise ValueError
                return int(value)
            if spec.kind == "float":
                return float(value)
            return str(value)
        except (TypeError, ValueError):
            example = " e.g. 2000 or 1024, 512" if spec.kind == "list" else ""
            what = {"list": "whole numbers separated by commas", "int": "a whole number", "float": "a number"}.get(
                spec.kind, "a value")
            raise ConfigError(f"config field '{name}': write {what}{example} (got {value!r})") from None

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
        if "game" not in d and "grl_max" in d:   # a full config saved before games existed: it played the paper's
            d = {**d, "game": "paper"}
        return cls(**d)

    @staticmethod
    def help(name: str) -> str:
        for f in fields(ACMRConfig):
            if f.name == name:
                return f.metadata["help"]
        raise ConfigError(f"unknown config field: {name}")
