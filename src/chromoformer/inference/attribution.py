"""Interpretation: attention maps, in-silico perturbation, gradient x input and integrated gradients.

All functions take a model and a collated batch (see :mod:`chromoformer.data.dataset`) and
explain the model's *score*: logit_1 - logit_0 (log-odds of "expressed") for a classifier,
the predicted log2(RPKM + 1) for a regressor. Perturbations edit the batch tensors exactly
as the corresponding edit of the inputs would (dropping a pCRE equals removing it from the
metadata; zeroing a mark equals zero signal, since ln(0 + 1) = 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from chromoformer.config import default_marks
from chromoformer.errors import UsageError
from chromoformer.model import model_score

__all__ = ["attributions", "gradient_attributions", "model_score", "perturbation_table", "regulation_attention_table"]


def _clone(batch: dict) -> dict:
    return {k: ({b: t.clone() for b, t in v.items()} if isinstance(v, dict) else
                v.clone() if isinstance(v, Tensor) else v) for k, v in batch.items()}


def drop_pcre(batch: dict, j: int) -> dict:
    """The batch with pCRE slot ``j`` of every gene removed (later pCREs move up)."""
    out = _clone(batch)
    keep = [i for i in range(batch["interaction_freq"].shape[1]) if i != j]
    for key in ("pcre_feats", "pcre_bins"):
        for b, t in out[key].items():
            out[key][b] = torch.cat([t[:, keep], torch.zeros_like(t[:, :1])], dim=1)
    f = out["interaction_freq"]
    out["interaction_freq"] = torch.cat([f[:, keep], torch.zeros_like(f[:, :1])], dim=1)
    out["n_pcres"] = torch.where(batch["n_pcres"] > j, batch["n_pcres"] - 1, batch["n_pcres"])
    return out


def zero_mark(batch: dict, mark: int, where: str = "promoter", pcre: int | None = None) -> dict:
    """Zero one mark in the promoter, in one pCRE slot, or in all pCREs (``pcre=None``)."""
    out = _clone(batch)
    for b in out["promoter_feats"]:
        if where == "promoter":
            out["promoter_feats"][b][..., mark] = 0
        elif pcre is None:
            out["pcre_feats"][b][..., mark] = 0
        else:
            out["pcre_feats"][b][:, pcre, :, mark] = 0
    return out


def shift_score(batch: dict, j: int, delta: float) -> dict:
    out = _clone(batch)
    out["interaction_freq"][:, j] += delta
    return out


@torch.no_grad()
def perturbation_table(model: nn.Module, batch: dict, score_delta: float = 1.0,
                       marks: Sequence[str] | None = None) -> pd.DataFrame:
    """Score change of every single edit, per gene: drop each pCRE, zero each mark (named ``marks``, one
    per signal column) in the promoter and in each pCRE, raise each pCRE's interaction score by
    ``score_delta``."""
    n_feats = next(iter(batch["promoter_feats"].values())).shape[-1]
    marks = tuple(marks) if marks is not None else default_marks(n_feats)
    if len(marks) != n_feats:
        raise UsageError(f"{len(marks)} mark names ({', '.join(marks)}) for {n_feats} signal columns")
    model.eval()
    base = model_score(model, batch)
    n = batch["n_pcres"]
    rows = []

    def add(kind: str, target: str, new: Tensor, valid: Tensor | None = None) -> None:
        for i, gid in enumerate(batch["gene_id"]):
            if valid is None or bool(valid[i]):
                rows.append({"gene_id": gid, "perturbation": kind, "target": target,
                             "score": float(base[i]), "perturbed": float(new[i]), "delta": float(new[i] - base[i])})

    for j in range(batch["interaction_freq"].shape[1]):
        if not (n > j).any():
            break
        add("drop_pcre", f"pcre{j}", model_score(model, drop_pcre(batch, j)), n > j)
        add("score_shift", f"pcre{j}", model_score(model, shift_score(batch, j, score_delta)), n > j)
        for m, name in enumerate(marks):
            add("zero_mark_pcre", f"pcre{j}:{name}", model_score(model, zero_mark(batch, m, "pcre", j)), n > j)
    for m, name in enumerate(marks):
        add("zero_mark_promoter", name, model_score(model, zero_mark(batch, m, "promoter")))
    return pd.DataFrame(rows)


def attributions(model: nn.Module, batch: dict, steps: int = 0, method: str | None = None,
                 ) -> dict[str, dict[int, Tensor]]:
    """Attributions of the score to every input bin: ``{"promoter": {b: (B, nb, F)}, "pcre": {b: (B, i_max, nb, F)}}``.

    ``method`` None: gradient x input (``steps=0``) or integrated gradients (``steps>0``),
    through Captum when it is installed (they agree: ``tests/test_captum.py``), else
    :func:`gradient_attributions`. ``deeplift`` / ``feature-ablation``: Captum's (see
    :mod:`chromoformer.inference.captum_attr`).
    """
    if method in (None, "gradient-x-input", "integrated-gradients"):
        if method == "gradient-x-input":
            steps = 0
        if steps == 0 or not _have_captum():
            if method == "integrated-gradients" and steps < 1:
                raise UsageError("integrated gradients need --ig-steps >= 1")
            return gradient_attributions(model, batch, steps)
        method = "integrated-gradients"
    from chromoformer.inference.captum_attr import captum_attributions

    return captum_attributions(model, batch, method, steps)[0]


def _have_captum() -> bool:
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        return False
    return True


def gradient_attributions(model: nn.Module, batch: dict, steps: int = 0) -> dict[str, dict[int, Tensor]]:
    """Gradient x input (``steps=0``) or integrated gradients from a zero baseline (``steps>0``, midpoint
    rule), written out by hand; along each resolution, attribution is zero wherever the input is zero."""
    model.eval()
    keys = ("promoter_feats", "pcre_feats")
    inputs = {k: {b: t.detach() for b, t in batch[k].items()} for k in keys}
    total = {k: {b: torch.zeros_like(t) for b, t in inputs[k].items()} for k in keys}
    alphas = [1.0] if steps == 0 else [(i + 0.5) / steps for i in range(steps)]
    for a in alphas:
        scaled = {k: {b: (t * a).requires_grad_(True) for b, t in inputs[k].items()} for k in keys}
        model_score(model, {**batch, **scaled}).sum().backward()
        for k in keys:
            for b, t in scaled[k].items():
                if t.grad is not None:  # None: an input this model never reads (attribution 0)
                    total[k][b] += t.grad / len(alphas)
    return {name: {b: total[k][b] * inputs[k][b] for b in inputs[k]}
            for name, k in (("promoter", "promoter_feats"), ("pcre", "pcre_feats"))}


@torch.no_grad()
def regulation_attention_table(model: nn.Module, batch: dict) -> pd.DataFrame:
    """Attention of the promoter token to each real pCRE token, per bin size, layer and head."""
    model.eval()
    att: dict = {}
    model(**batch, attentions=att)
    rows = []
    for b, per in att.items():
        for layer, w in enumerate(per["regulation"]):  # (B, H, 1 + i_max, 1 + i_max)
            for i, gid in enumerate(batch["gene_id"]):
                for j in range(int(batch["n_pcres"][i])):
                    for h in range(w.shape[1]):
                        rows.append({"gene_id": gid, "binsize": b, "layer": layer, "head": h, "pcre": j,
                                     "weight": float(w[i, h, 0, 1 + j])})
    return pd.DataFrame(rows, columns=["gene_id", "binsize", "layer", "head", "pcre", "weight"])  # header if none
