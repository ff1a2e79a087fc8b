"""Typed, frozen configuration read from the original ``default.yaml`` keys.

The naming of the original keys is kept so that published configs load, but the
meaning of three of them is not what the names suggest (docs/original.md §1.8):

* ``embed.d_model`` is also ``d_emb``, the residual width of all three transformers;
* ``regulation.d_model`` is only the attention inner width (n_heads * d_head_att);
* ``d_head`` is the hidden width of the final MLP, not a per-head attention size.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from chromoformer.errors import ConfigError
from chromoformer.yamlfile import load_yaml

DEFAULT_BINSIZES: tuple[int, ...] = (2000, 500, 100)
MARKS: tuple[str, ...] = (
    "H3K4me1",
    "H3K4me3",
    "H3K9me3",
    "H3K27me3",
    "H3K36me3",
    "H3K27ac",
    "H3K9ac",
)
# The originals' own input sets (BASELINES.md §3, §3b, §2), each in its model's order: ``compare --marks deepchrome``
MARK_SETS: dict[str, tuple[str, ...]] = {
    "deepchrome": ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3"),  # DeepChrome and AttentiveChrome
    "deepdiff": ("H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3"),  # DeepDiff's channels 0-4
    "gcmerge": ("H3K27ac", "H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3"),  # sorted file names
}


def mark_names(given: Sequence[str]) -> tuple[str, ...]:
    """``--marks`` values: mark names, or one name of :data:`MARK_SETS` for that model's original input set."""
    return MARK_SETS[given[0]] if len(given) == 1 and given[0] in MARK_SETS else tuple(given)


SINGLE_ARCHS: tuple[str, ...] = ("chromoformer", "chromoformer-nopcre", "deepchrome", "attentivechrome", "hmcrnn",
                                 "gcmerge")
DIFF_ARCHS: tuple[str, ...] = ("chromoformer-diff", "deepdiff")  # two cells' genes -> their log2 fold change
ARCHS: tuple[str, ...] = SINGLE_ARCHS + DIFF_ARCHS
ORIGINAL_INIT_SEED = 42  # the original's train.py calls torch.manual_seed(42) before building the model
PROTOCOLS: tuple[str, ...] = ("original", "chromoformer")
# What fine-tuning may freeze (train --freeze): Chromoformer's parts, at every resolution (chromoformer.model.PARTS).
FREEZE_PARTS: tuple[str, ...] = ("embedding", "pairwise", "regulation", "head")


@dataclass(frozen=True)
class OriginalProtocol:
    """How a baseline's own code trains it (BASELINES.md), used under ``protocol: original``.

    ``optimizer``: ``adam`` (torch.optim.Adam, no weight decay) or ``sgd`` (plain SGD, no momentum);
    ``lr_decay``: Torch7's ``learningRateDecay``, step k (from 0) taken at ``lr / (1 + k * lr_decay)``;
    ``bsz``: None keeps the config's; ``loss``: ``focal`` (gamma 2, no alpha, summed over the batch; classification
    only) or ``standard`` (cross-entropy / MSE); ``deepdiff`` (MSE of the fold change + each cell's auxiliary MSE
    + 4 x the contrastive term, :func:`chromoformer.training.objective.deepdiff_loss`). ``clip``: the gradient
    norm is clipped to it before each step (None: no clipping). ``init``: ``uniform`` starts every weight
    U(-0.1, 0.1), ``default`` keeps PyTorch's. ``select``: which epoch ``best.pt`` keeps: ``best`` (the best
    validation metric, the earlier epoch on ties), ``best-later`` (ties go to the later epoch) or ``last``.
    The number of epochs is always the config's (``--epochs``): the originals' counts belong to their own splits
    and, for GC-MERGE, to one full-batch step an epoch.
    """

    source: str
    optimizer: str
    lr: float
    bsz: int | None
    loss: str
    clip: float | None = None
    lr_decay: float = 0.0
    init: str = "default"
    select: str = "best"


ORIGINAL_PROTOCOLS: dict[str, OriginalProtocol] = {
    "deepchrome": OriginalProtocol("DeepChrome 4_train.lua (Singh et al. 2016)", "sgd", 1e-3, 1, "standard",
                                   lr_decay=1e-7),
    "attentivechrome": OriginalProtocol("AttentiveChrome v2PyTorch train.py (Singh et al. 2017)", "adam", 2e-4, 16,
                                        "standard", clip=1.0, init="uniform"),
    "hmcrnn": OriginalProtocol("HM-CRNN model.py (Kang et al. 2020)", "adam", 1e-3, 16, "focal"),
    "gcmerge": OriginalProtocol("GC-MERGE run_models_.py (Bigness et al. 2022)", "adam", 1e-4, None, "standard",
                                select="last"),
    "deepdiff": OriginalProtocol("DeepDiff train.py (Sekhon et al. 2018)", "adam", 1e-4, 10, "deepdiff", 1.0,
                                 select="best-later"),
}


def default_marks(n_feats: int) -> tuple[str, ...]:
    """Names for unnamed signal rows: the paper's 7 marks, else ``mark1..markN``."""
    return MARKS if n_feats == len(MARKS) else tuple(f"mark{i + 1}" for i in range(n_feats))


# The largest value each size, count and seed of a config may take: one place for every bound (docs/data.md
# lists them). The published configs sit far below; a value past one is a typo or an attack and is refused where
# the config is read (YAML, a checkpoint's stored config, a flag), before anything is allocated. A model within
# them may still not fit this machine: engine.memory checks that next, from the model's parameter count.
LIMITS = {"seed": 2**32 - 1, "i_max": 128, "w_prom": 1_000_000, "w_max": 1_000_000, "num_epoch": 100_000,
          "bsz": 65_536, "n_feats": 64, "d_head": 4096, "n_layers": 48, "n_heads": 128, "d_model": 4096,
          "d_ff": 16_384,
          # the commands' own sizes: interpret --ig-steps (memory does not grow with them: one batch of genes a
          # step) and --genes (they go through the model as one batch)
          "ig_steps": 1000, "interpret_genes": 512}
MAX_EPOCHS = LIMITS["num_epoch"]


def check_limit(key: str, value: int, least: int = 1) -> None:
    """``value`` of config key ``key`` lies in ``least..LIMITS[key]``, else :class:`ConfigError` naming both."""
    if not least <= value <= LIMITS[key]:
        raise ConfigError(f"{key} must be {least}..{LIMITS[key]:,}, got {value:,}" if value >= least else
                          f"{key} must be >= {least}, got {value}")


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of one transformer stack."""

    n_layers: int
    n_heads: int
    d_model: int
    d_ff: int

    def __post_init__(self) -> None:
        for k in ("n_layers", "n_heads", "d_model", "d_ff"):
            check_limit(k, getattr(self, k))


@dataclass(frozen=True)
class ModelConfig:
    """What a model is (the config keys that change its predictions): windows, marks and layer sizes.

    The model modules see only this; ``mark_dropout`` is here because a model trained with it carries a
    learned "absent" value per mark."""

    i_max: int
    w_prom: int
    w_max: int
    n_feats: int
    embed: TransformerConfig
    pairwise_interaction: TransformerConfig
    regulation: TransformerConfig
    d_head: int
    mark_dropout: float

    @property
    def d_emb(self) -> int:
        """Residual width of every transformer (taken from ``embed.d_model``)."""
        return self.embed.d_model


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (keys that never change what a trained model predicts)."""

    seed: int
    num_epoch: int
    lr: float
    bsz: int
    gamma: float


MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig))
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))


@dataclass(frozen=True)
class ChromoformerConfig:
    """The YAML config (the original's keys): a model's :class:`ModelConfig` and its run's :class:`TrainConfig`,
    checked together (``w_prom <= w_max``, head sizes...). ``config.model`` and ``config.train`` are the two parts."""

    seed: int = 123
    i_max: int = 8
    w_prom: int = 40000
    w_max: int = 40000
    num_epoch: int = 10
    lr: float = 3e-5
    bsz: int = 64
    gamma: float = 0.87
    n_feats: int = 7
    embed: TransformerConfig = field(default_factory=lambda: TransformerConfig(1, 2, 128, 128))
    pairwise_interaction: TransformerConfig = field(default_factory=lambda: TransformerConfig(2, 2, 128, 256))
    regulation: TransformerConfig = field(default_factory=lambda: TransformerConfig(6, 8, 256, 256))
    d_head: int = 128
    # Ours (optional in YAML): the chance that training hides each mark of a gene, so that the
    # model learns to predict with any marks absent (see chromoformer.model.chromoformer).
    mark_dropout: float = 0.0

    @property
    def d_emb(self) -> int:
        """Residual width of every transformer (taken from ``embed.d_model``)."""
        return self.embed.d_model

    @property
    def model(self) -> ModelConfig:
        return ModelConfig(**{k: getattr(self, k) for k in MODEL_KEYS})

    @property
    def train(self) -> TrainConfig:
        return TrainConfig(**{k: getattr(self, k) for k in TRAIN_KEYS})

    def __post_init__(self) -> None:
        for k in ("i_max", "w_prom", "w_max", "num_epoch", "bsz", "n_feats", "d_head"):
            check_limit(k, getattr(self, k))
        check_limit("seed", self.seed, least=0)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.gamma) and 0 < self.gamma <= 1):
            raise ConfigError(f"gamma (learning-rate decay per epoch) must be in (0, 1], got {self.gamma}")
        if self.w_prom % 2:
            raise ConfigError(f"w_prom must be even (TSS +- w_prom/2), got {self.w_prom}")
        if self.pairwise_interaction.d_model != self.embed.d_model:
            raise ConfigError(
                "pairwise_interaction.d_model must equal embed.d_model "
                f"({self.pairwise_interaction.d_model} != {self.embed.d_model})"
            )
        for name in ("embed", "pairwise_interaction", "regulation"):
            t: TransformerConfig = getattr(self, name)
            if t.d_model % t.n_heads:
                raise ConfigError(f"{name}.d_model={t.d_model} is not divisible by n_heads={t.n_heads}")
        if self.w_prom > self.w_max:
            raise ConfigError(f"w_prom={self.w_prom} exceeds w_max={self.w_max}")
        if not (math.isfinite(self.mark_dropout) and 0 <= self.mark_dropout < 1):
            raise ConfigError(f"mark_dropout must be in [0, 1), got {self.mark_dropout}")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict with the original YAML keys."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> ChromoformerConfig:
        """Build from a nested dict; unknown, missing or ill-typed keys raise :class:`ConfigError`."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a mapping at top level, got {type(d).__name__}")
        kwargs = _check_keys(cls, d, source, prefix="")
        for name in _NESTED:
            if not isinstance(d[name], dict):
                raise ConfigError(f"{source}: '{name}' must be a mapping, got {d[name]!r}")
            sub = _check_keys(TransformerConfig, d[name], source, f"{name}.")
            try:
                kwargs[name] = TransformerConfig(**sub)
            except ConfigError as e:
                raise ConfigError(f"{source}: {name}.{e}") from None
        try:
            return cls(**kwargs)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None


_NESTED = ("embed", "pairwise_interaction", "regulation")
_OPTIONAL = {"mark_dropout"}  # keys the original's YAML files do not have
DEFAULT_CONFIG = ChromoformerConfig()  # the one place the defaults of w_prom, w_max, i_max ... are read from


def _check_keys(cls: type, d: dict[str, Any], source: str, prefix: str) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"allowed: {', '.join(prefix + k for k in fields)}"
        )
    missing = sorted(set(fields) - set(d) - _OPTIONAL)
    if missing:
        raise ConfigError(f"{source}: missing config key(s) {', '.join(prefix + k for k in missing)}")
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in _NESTED:
            continue
        want = fields[k].type
        if want == "int" and not (isinstance(v, int) and not isinstance(v, bool)):
            raise ConfigError(f"{source}: {prefix}{k} must be an integer, got {v!r}")
        if want == "float":
            # YAML 1.1 reads '3e-5' (no dot) as a string; the original did float(config[key]).
            if isinstance(v, str):
                try:
                    v = float(v)
                except ValueError:
                    raise ConfigError(f"{source}: {prefix}{k} must be a number, got {v!r}") from None
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{source}: {prefix}{k} must be a number, got {v!r}")
            v = float(v)
        out[k] = v
    return out


def load_config(path: str | Path | None = None) -> ChromoformerConfig:
    """Read a YAML config; ``None`` gives the packaged ``configs/default.yaml``."""
    if path is None:
        text = resources.files("chromoformer").joinpath("configs/default.yaml").read_text()
        source = "chromoformer/configs/default.yaml"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        source = str(p)
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: not a text (YAML) file") from None
    d = load_yaml(text, source, ConfigError)
    return ChromoformerConfig.from_dict(d, source)


def model_config(config: ChromoformerConfig | ModelConfig | None) -> ModelConfig:
    """The model part of a config (the default one for None)."""
    if config is None:
        return DEFAULT_CONFIG.model
    return config.model if isinstance(config, ChromoformerConfig) else config
