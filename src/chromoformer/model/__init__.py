"""Pure ``nn.Module``s: no I/O, no device placement, no seeding."""

from __future__ import annotations

from torch import Tensor, nn

from chromoformer.config import ARCHS, DEFAULT_BINSIZES, DIFF_ARCHS, ChromoformerConfig, ModelConfig, model_config
from chromoformer.errors import UsageError
from chromoformer.model.baselines import AttentiveChrome, DeepChrome
from chromoformer.model.chromoformer import (
    ChromoformerBase,
    ChromoformerClassifier,
    ChromoformerRegressor,
    span_key_mask,
)
from chromoformer.model.chromoformer_diff import ChromoformerDiff
from chromoformer.model.deepdiff import DeepDiff
from chromoformer.model.gcmerge import GCMERGE
from chromoformer.model.hmcrnn import HMCRNN

# The modules of each fine-tuning part (chromoformer.config.FREEZE_PARTS), wherever they sit in a model's tree:
# Chromoformer's, its no-pCRE ablation's and, under ``encoder.``, Chromoformer-diff's (whose fold-change head is
# part of its head).
PARTS: dict[str, tuple[str, ...]] = {"embedding": ("embed",), "pairwise": ("pairwise_interaction",),
                                     "regulation": ("regulation",), "head": ("fc_head", "diff_head")}


def part_parameters(model: nn.Module, part: str) -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs of ``model`` that belong to ``part`` (any module of :data:`PARTS`)."""
    modules = set(PARTS[part])
    return [(n, p) for n, p in model.named_parameters() if modules & set(n.split(".")[:-1])]


def build_model(
    task: str,
    config: ChromoformerConfig | ModelConfig | None = None,
    binsizes: tuple[int, ...] = DEFAULT_BINSIZES,
    arch: str = "chromoformer",
) -> nn.Module:
    """``task``: ``"clf"`` (2 logits), ``"reg"`` (1 value) or ``"diff"`` (two cells' batches -> a dict with the
    fold change ``lfc``); ``arch``: one of :data:`ARCHS` (``chromoformer-diff`` and ``deepdiff`` for ``diff``).

    ``chromoformer-nopcre`` is Chromoformer with every gene's pCREs hidden; a single-resolution
    ablation is ``arch="chromoformer"`` with one bin size. DeepChrome, AttentiveChrome and HM-CRNN
    use the promoter only; GC-MERGE the promoter and its pCREs as a star graph.
    """
    if task not in ("clf", "reg", "diff"):
        raise UsageError(f"unknown task {task!r}; expected 'clf', 'reg' or 'diff'")
    if arch not in ARCHS:
        raise UsageError(f"unknown model {arch!r}; choose from {', '.join(ARCHS)}")
    if (task == "diff") != (arch in DIFF_ARCHS):
        raise UsageError(f"model {arch} cannot take task {task}: task diff takes {' or '.join(DIFF_ARCHS)}")
    config = model_config(config)
    if config.mark_dropout > 0 and arch not in ("chromoformer", "chromoformer-nopcre"):
        raise UsageError(f"mark_dropout applies to Chromoformer; {arch} has no input for absent marks")
    if arch == "deepdiff":
        return DeepDiff(config.n_feats)
    if arch == "chromoformer-diff":
        return ChromoformerDiff(config, binsizes)
    n_out = 2 if task == "clf" else 1
    if arch == "deepchrome":
        return DeepChrome(config.n_feats, n_out)
    if arch == "attentivechrome":
        return AttentiveChrome(config.n_feats, n_out)
    if arch == "hmcrnn":
        return HMCRNN(config.n_feats, n_out)
    if arch == "gcmerge":
        return GCMERGE(config.n_feats, n_out)
    model = (ChromoformerClassifier if task == "clf" else ChromoformerRegressor)(config, binsizes)
    model.use_pcres = arch != "chromoformer-nopcre"
    return model


__all__ = [
    "ARCHS",
    "AttentiveChrome",
    "ChromoformerBase",
    "ChromoformerDiff",
    "ChromoformerClassifier",
    "ChromoformerRegressor",
    "DeepChrome",
    "DeepDiff",
    "GCMERGE",
    "HMCRNN",
    "build_model",
    "span_key_mask",
]


def model_score(model: nn.Module, batch: dict) -> Tensor:
    """(B,) what interpretation explains: logit_1 - logit_0 (classifier log-odds) or the regressor's value."""
    out = model(**batch)
    return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out[:, 0]
