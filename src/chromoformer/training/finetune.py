"""Fine-tuning: a run that starts from a parent checkpoint's weights (``train --init-from``), with parts frozen.

The parent may be any checkpoint of a compatible spec: one of ours, the original's published format (whose spec is
inferred from its weights) or ``pretrained:EID/foldK``. Compatible means the same task, architecture, bin sizes,
marks (by name and order: a store that names them otherwise is read through ``--mark-map``) and model config
(the training keys, such as ``lr``, are the run's own); anything else is one line naming the difference. The run's
spec records the parent (``spec.parent``: file name and the first 16 hex digits of its sha256) and the frozen parts
(``spec.freeze``), so a resume refuses another parent or another freeze, and ``inspect`` shows the lineage.

Before the first step the model equals its parent bit for bit; a frozen part (:data:`chromoformer.config.FREEZE_PARTS`,
every resolution) keeps ``requires_grad=False``, so it never gets a gradient and the optimizer never touches it (not
even AdamW's weight decay): it stays bit-identical to the parent's (``tests/test_finetune.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from chromoformer.data.store import file_sha256
from chromoformer.engine.loading import LoadedModel, load_model
from chromoformer.errors import UsageError
from chromoformer.model import part_parameters
from chromoformer.spec import PREDICTION_FIELDS, RunSpec

log = logging.getLogger(__name__)


def parent_id(path: str | Path) -> str:
    """``NAME sha256:HEX16``: how a run's spec names its parent checkpoint."""
    path = Path(path)
    return f"{path.name} sha256:{file_sha256(path)[:16]}"


def read_parent(path: str | Path) -> LoadedModel:
    """The parent checkpoint, loaded strictly (ours or the original's format)."""
    return load_model(path)


def check_parent(spec: RunSpec, parent: LoadedModel) -> None:
    """One line naming what differs between the run's spec and its parent's, if anything that shapes the model."""
    differ = spec.differences(parent.spec, PREDICTION_FIELDS)
    if differ:
        raise UsageError(f"--init-from {parent.path}: it cannot start this run: its {', '.join(differ)} differ "
                         f"(parent: {parent.spec.describe(differ)}; this run: {spec.describe(differ)}); leave "
                         "--config, --binsizes, --marks and --model out to take the parent's, or map the store's "
                         "marks with --mark-map")


def load_parent(model: nn.Module, spec: RunSpec, path: str | Path) -> None:
    """Copy the parent's weights into ``model`` (built for ``spec``), after checking they belong together."""
    parent = read_parent(path)
    check_parent(spec, parent)
    if spec.parent and spec.parent != parent_id(path):
        raise UsageError(f"--init-from {path}: the run's spec names another parent ({spec.parent})")
    model.load_state_dict(parent.model.state_dict(), strict=True)
    log.info("initialised from %s (%s)%s", path, spec.parent or parent_id(path),
             f", frozen: {', '.join(spec.freeze)}" if spec.freeze else "")


def freeze_parts(model: nn.Module, spec: RunSpec) -> int:
    """Set ``requires_grad=False`` on every parameter of ``spec.freeze``'s parts; returns how many tensors.

    A part the architecture does not have (a baseline's) is a :class:`UsageError`."""
    n = 0
    for part in spec.freeze:
        params = part_parameters(model, part)
        if not params:
            raise UsageError(f"--freeze {part}: a {spec.arch} model has no {part} part (the parts are "
                             "Chromoformer's: embedding, pairwise, regulation, head)")
        for _, p in params:
            p.requires_grad_(False)
        n += len(params)
    return n

