"""The run spec: everything that decides what a trained model is and what data it reads.

A :class:`RunSpec` is built once (from YAML + command line, or in Python), saved inside
every checkpoint (``spec``), and checked against every signal source and checkpoint it
meets, so a mismatch is a one-line error naming the field that differs. Every default
lives here or in :mod:`chromoformer.config`, nowhere else.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chromoformer.config import (
    ARCHS,
    DEFAULT_BINSIZES,
    DIFF_ARCHS,
    FREEZE_PARTS,
    LIMITS,
    MARKS,
    ORIGINAL_INIT_SEED,
    ORIGINAL_PROTOCOLS,
    PROTOCOLS,
    TRAIN_KEYS,
    ChromoformerConfig,
    OriginalProtocol,
)
from chromoformer.errors import ConfigError, UsageError

TASKS = ("clf", "reg", "diff")
BASE_CAP = 100  # the store's base bin: gcd(100, *binsizes), so 2000/500/100 read 100-bp sums
# What changes predictions (as opposed to how training went): compared when ensembling or predicting.
PREDICTION_FIELDS = ("task", "arch", "binsizes", "marks", "model config")
TRAINING_ONLY = TRAIN_KEYS  # the config keys that never change predictions


@dataclass(frozen=True)
class RunSpec:
    """What a run trains and reads.

    Attributes
    ----------
    config : model sizes, window sizes (``w_prom``, ``w_max``, ``i_max``) and training
        settings (``seed`` drives the shuffle order, ``num_epoch``, ``lr``, ``bsz``, ``gamma``)
    binsizes : bin sizes (bp), coarse to fine; each divides ``config.w_max``
    marks : ordered mark names; ``len(marks) == config.n_feats``
    task : ``"clf"`` (expressed or not), ``"reg"`` (log2(RPKM + 1)) or ``"diff"`` (two cells' log2 fold change
        log2((RPKM_B + 1) / (RPKM_A + 1)), :mod:`chromoformer.diff.pairing`)
    arch : one of :data:`chromoformer.config.ARCHS`; the ``diff`` task takes the :data:`~chromoformer.config.DIFF_ARCHS`
        and only it does
    init_seed : ``torch.manual_seed`` before the model is built (42, as the original's train.py)
    parent : fine-tuning: the parent checkpoint's file name and ``sha256:`` (its first 16 hex digits) whose
        weights the run started from (``train --init-from``); empty for a run from scratch
    freeze : fine-tuning: the parts (:data:`chromoformer.config.FREEZE_PARTS`) kept as the parent had them
    protocol : ``original`` trains a model the way its own code does: for a baseline with a recorded recipe
        (:data:`chromoformer.config.ORIGINAL_PROTOCOLS`) its optimizer, lr, batch size and loss, whose lr
        and bsz are written into ``config`` with no lr decay; for the others (Chromoformer itself) that is
        Chromoformer's. ``chromoformer``: Chromoformer's for every model
    """

    config: ChromoformerConfig = field(default_factory=ChromoformerConfig)
    binsizes: tuple[int, ...] = DEFAULT_BINSIZES
    marks: tuple[str, ...] = MARKS
    task: str = "clf"
    arch: str = "chromoformer"
    init_seed: int = ORIGINAL_INIT_SEED
    protocol: str = "original"
    parent: str = ""
    freeze: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "binsizes", tuple(self.binsizes))
        object.__setattr__(self, "marks", tuple(self.marks))
        object.__setattr__(self, "freeze", tuple(self.freeze))
        if not isinstance(self.parent, str):
            raise ConfigError(f"parent must be a checkpoint's name and sha256, got {self.parent!r}")
        bad = [f for f in self.freeze if f not in FREEZE_PARTS]
        if bad or len(set(self.freeze)) != len(self.freeze):
            raise ConfigError(f"freeze: parts are {', '.join(FREEZE_PARTS)}, each once; got {', '.join(self.freeze)}")
        if self.freeze and not self.parent:
            raise ConfigError("freeze: only a model fine-tuned from a parent checkpoint (--init-from) has parts to "
                              "keep as they were")
        if self.task not in TASKS:
            raise ConfigError(f"task must be 'clf', 'reg' or 'diff', got {self.task!r}")
        if self.arch not in ARCHS:
            raise ConfigError(f"model must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if (self.task == "diff") != (self.arch in DIFF_ARCHS):
            raise ConfigError(f"model {self.arch} cannot take task {self.task}: the differential task (diff) takes "
                              f"{' or '.join(DIFF_ARCHS)}, and they take only it" if self.task == "diff" else
                              f"model {self.arch} predicts a fold change between two cells: use task diff")
        if not self.binsizes:
            raise ConfigError("binsizes: at least one bin size is needed")
        for b in self.binsizes:
            if isinstance(b, bool) or not isinstance(b, int) or b < 1 or self.config.w_max % b:
                raise ConfigError(f"binsizes: {b!r} must be a positive divisor of w_max={self.config.w_max} "
                                  "(e.g. 2000 500 100)")
        if len(set(self.binsizes)) != len(self.binsizes):
            raise ConfigError(f"binsizes: repeated bin size in {list(self.binsizes)}")
        if self.arch == "deepdiff" and (100 not in self.binsizes or self.config.w_max < 20000):
            raise ConfigError(f"deepdiff reads 200 bins of 100 bp (TSS +- 10 kb): binsizes must include 100 and "
                              f"w_max be >= 20000; got {list(self.binsizes)} and {self.config.w_max}")
        if self.arch in ("deepchrome", "attentivechrome") and (min(self.binsizes) != 100 or self.config.w_prom < 10000):
            raise ConfigError(f"{self.arch} reads 100 bins of 100 bp (TSS +- 5 kb): the finest bin size must be 100 "
                              f"and w_prom be >= 10000; got {list(self.binsizes)} and {self.config.w_prom}")
        if not all(isinstance(m, str) and m.strip() for m in self.marks) or len(set(self.marks)) != len(self.marks):
            raise ConfigError(f"marks must be distinct non-empty names, got {list(self.marks)}")
        if len(self.marks) != self.config.n_feats:
            raise ConfigError(f"{len(self.marks)} marks ({', '.join(self.marks)}) but config n_feats="
                              f"{self.config.n_feats}; they must agree")
        if isinstance(self.init_seed, bool) or not isinstance(self.init_seed, int) \
                or not 0 <= self.init_seed <= LIMITS["seed"]:
            raise ConfigError(f"init_seed must be an integer 0..{LIMITS['seed']:,}, got {self.init_seed!r}")
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if (proto := self.original_protocol) is not None:
            cfg = {**self.config.to_dict(), "lr": proto.lr, "gamma": 1.0, "bsz": proto.bsz or self.config.bsz}
            object.__setattr__(self, "config", ChromoformerConfig.from_dict(cfg, f"{self.arch} protocol"))

    @property
    def cells(self) -> int:
        """How many cells' inputs a run of this spec reads: 2 for the differential task (diff), else 1."""
        return 2 if self.task == "diff" else 1

    def expect_cells(self, cells: int, where: object) -> None:
        """The one refusal of a spec (or checkpoint) given to an entry point of the other kind: the single-cell
        commands and functions take ``cells=1``, the differential wing (:mod:`chromoformer.diff`) ``cells=2``.
        ``where`` (a function name or a file) starts the one-line :class:`UsageError`."""
        if self.cells == cells:
            return
        if self.cells == 2:
            raise UsageError(f"{where}: a differential ({self.arch}) model compares two cells: give cell B's "
                             "metadata and signal too (--meta-b/--npy-dir-b; chromoformer.diff)")
        raise UsageError(f"{where}: a {self.task} ({self.arch}) model predicts one cell; cell B's metadata and "
                         "signal belong to the differential task, which needs a --task diff checkpoint or spec "
                         "(chromoformer-diff or deepdiff)")

    @property
    def original_protocol(self) -> OriginalProtocol | None:
        """The baseline's own training recipe when ``protocol`` is ``original`` and one is recorded."""
        return ORIGINAL_PROTOCOLS.get(self.arch) if self.protocol == "original" else None

    @property
    def base(self) -> int:
        """Base resolution (bp) the signal is read at: every bin size is a multiple of it."""
        return math.gcd(BASE_CAP, *self.binsizes)

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with ``changes``; config keys (``num_epoch=3``) go into the config."""
        cfg_keys = {f.name for f in dataclasses.fields(ChromoformerConfig)}
        cfg_changes = {k: changes.pop(k) for k in list(changes) if k in cfg_keys}
        if cfg_changes:
            changes["config"] = ChromoformerConfig.from_dict({**self.config.to_dict(), **cfg_changes}, "RunSpec")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "binsizes": list(self.binsizes), "marks": list(self.marks),
                "task": self.task, "arch": self.arch, "init_seed": self.init_seed, "protocol": self.protocol,
                "parent": self.parent, "freeze": list(self.freeze)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<spec>") -> RunSpec:
        if not isinstance(d, Mapping):
            raise ConfigError(f"{source}: a run spec must be a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"{source}: unknown run spec key(s) {', '.join(unknown)}")
        kw = dict(d)
        if "config" in kw:
            kw["config"] = ChromoformerConfig.from_dict(kw["config"], f"{source}[config]")
        try:
            return cls(**kw)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{source}: {e}") from None

    def differences(self, other: RunSpec, fields: Sequence[str] | None = None) -> list[str]:
        """Names of the fields that differ (``'config.lr'`` for config keys); ``fields`` limits them.

        ``'model config'`` stands for the config keys that change predictions (all but
        :data:`TRAINING_ONLY`); ``'config'`` for all of them.
        """
        names = list(fields or ("task", "arch", "binsizes", "marks", "config", "init_seed", "protocol", "parent",
                                "freeze"))
        out = []
        for name in names:
            if name in ("config", "model config"):
                a, b = self.config.to_dict(), other.config.to_dict()
                skip = TRAINING_ONLY if name == "model config" else ()
                out += [f"config.{k}" for k in a if k not in skip and a[k] != b[k]]
            elif name == "protocol":  # the same training unless one of them has a recorded original recipe
                if (self.original_protocol, self.arch) != (other.original_protocol, other.arch) and (
                        self.original_protocol or other.original_protocol):
                    out.append(name)
            elif getattr(self, name) != getattr(other, name):
                out.append(name)
        return out

    def describe(self, names: Sequence[str]) -> str:
        """``'marks (H3K4me3, H3K27ac)'`` for each named field, for error messages."""
        parts = []
        for n in names:
            v = self.config.to_dict()[n.split(".", 1)[1]] if n.startswith("config.") else getattr(self, n)
            parts.append(f"{n} {', '.join(map(str, v)) if isinstance(v, tuple) else v}")
        return "; ".join(parts)


def config_for_marks(cfg: ChromoformerConfig, marks: Sequence[str], from_user: bool) -> ChromoformerConfig:
    """The config with ``n_feats = len(marks)``; a user's config that says otherwise is an error."""
    if cfg.n_feats == len(marks):
        return cfg
    if from_user:
        raise ConfigError(f"the config says n_feats={cfg.n_feats} but the signal has {len(marks)} marks "
                          f"({', '.join(marks)}); set n_feats: {len(marks)} or leave it to the data")
    return ChromoformerConfig.from_dict({**cfg.to_dict(), "n_feats": len(marks)})
