"""Interpretation: attention maps, in-silico perturbation, gradient x input and integrated gradients.

All functions take a model and a collated batch (see :mod:`chromoformer.data.dataset`) and
explain the model's *score*: logit_1 - logit_0 (log-odds of "expressed") for a classifier,
the predicted log2(RPKM + 1) for a regressor. Perturbations edit the batch tensors exactly
as the corresponding edit of the inputs would (dropping a pCRE equals removing it from the
metadata; zeroing a mark equals zero signal, since ln(0 + 1) = 0).

:func:`captum_attributions`: attributions through Captum (the field's standard library): integrated gradients, DeepLift,
feature ablation, on the model's score (logit_1 - logit_0, or the regressor's value).

The batch is flattened into Captum's tuple of inputs (the promoter and pCRE features of
every bin size) and additional arguments (spans, pCRE counts, interaction scores), which
Captum expands alongside when it batches integration steps. Baselines are zero signal.

* ``integrated-gradients``: midpoint Riemann sum over ``steps`` (equal to
  :func:`chromoformer.inference.attribution.attributions` with the same steps, tested to float64 rounding).
* ``deeplift``: Captum's DeepLift from a zero baseline. Captum's rules cover ``nn.Module``
  non-linearities; the attention softmax and layer norms here are functional, so
  completeness is approximate: the per-gene ``delta`` (sum of attributions minus the score
  change) is returned for the user to judge.
* ``feature-ablation``: each mark zeroed in the promoter, and in each pCRE, at every bin size
  at once; every element of a group holds that group's score change f(x) - f(x without it)
  (the negative of ``perturbation.tsv``'s ``zero_mark_*`` deltas, tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from chromoformer.config import LIMITS, default_marks
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
    :mod:`chromoformer.inference.attribution`).
    """
    if method in (None, "gradient-x-input", "integrated-gradients"):
        if method == "gradient-x-input":
            steps = 0
        if steps == 0 or not _have_captum():
            if method == "integrated-gradients" and steps < 1:
                raise UsageError("integrated gradients need --ig-steps >= 1")
            return gradient_attributions(model, batch, steps)
        method = "integrated-gradients"

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


METHODS = ("integrated-gradients", "deeplift", "feature-ablation")
MAX_IG_STEPS, MAX_GENES = LIMITS["ig_steps"], LIMITS["interpret_genes"]


def check_interpretation_size(steps: int, n_genes: int) -> None:
    """``--ig-steps`` within 0..MAX_IG_STEPS and at most MAX_GENES genes, else :class:`UsageError`."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_IG_STEPS:
        raise UsageError(f"--ig-steps must be 0..{MAX_IG_STEPS} (0: gradient x input), got {steps}")
    if n_genes > MAX_GENES:
        raise UsageError(f"--genes: {n_genes} genes; one interpretation explains at most {MAX_GENES} (run it "
                         "again for the others, into another folder)")


def _flat(model: nn.Module, batch: dict) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...], Callable, list[int]]:
    bs = sorted(batch["promoter_feats"])
    n = len(bs)
    inputs = tuple(batch["promoter_feats"][b] for b in bs) + tuple(batch["pcre_feats"][b] for b in bs)
    extra = (*(batch["promoter_bins"][b] for b in bs), *(batch["pcre_bins"][b] for b in bs), batch["n_pcres"],
             batch["interaction_freq"], *([batch["present"]] if "present" in batch else []))

    def score(*x: Tensor) -> Tensor:
        parts = {"promoter_feats": dict(zip(bs, x[:n], strict=True)),
                 "pcre_feats": dict(zip(bs, x[n : 2 * n], strict=True)),
                 "promoter_bins": dict(zip(bs, x[2 * n : 3 * n], strict=True)),
                 "pcre_bins": dict(zip(bs, x[3 * n : 4 * n], strict=True)),
                 "n_pcres": x[4 * n], "interaction_freq": x[4 * n + 1]}
        if len(x) > 4 * n + 2:
            parts["present"] = x[4 * n + 2]
        # + 0 x every signal input: a model that reads only some of them (DeepChrome the finest promoter bins,
        # GC-MERGE no pCRE resolution but one) still has each in its graph, so Captum's gradients exist (all 0)
        unused = sum((t * 0).flatten(1).sum(dim=1) for t in x[: 2 * n])
        return model_score(model, parts) + unused

    return inputs, extra, score, bs


class _Score(nn.Module):
    """DeepLift hooks the modules of a model: the score as a module over the flat inputs."""

    def __init__(self, model: nn.Module, score: Callable) -> None:
        super().__init__()
        self.model, self.score = model, score

    def forward(self, *x: Tensor) -> Tensor:
        return self.score(*x)


def captum_attributions(model: nn.Module, batch: dict, method: str = "integrated-gradients", steps: int = 32,
                        ) -> tuple[dict[str, dict[int, Tensor]], Tensor | None]:
    """``({"promoter": {b: (B, nb, F)}, "pcre": {b: (B, i_max, nb, F)}}, per-gene delta or None)``."""
    try:
        from captum.attr import DeepLift, FeatureAblation, IntegratedGradients
    except ImportError:
        raise UsageError(f"--method {method} needs Captum (pip install captum, or the '.[interpret]' extra)") from None
    if method not in METHODS:
        raise UsageError(f"unknown attribution method {method!r}; choose from {', '.join(METHODS)}")
    model.eval()
    inputs, extra, score, bs = _flat(model, batch)
    base = tuple(torch.zeros_like(x) for x in inputs)
    delta = None
    with torch.enable_grad():
        if method == "integrated-gradients":
            if steps < 1:
                raise UsageError(f"integrated gradients need --ig-steps >= 1, got {steps}")
            attr, delta = IntegratedGradients(score).attribute(
                inputs, baselines=base, additional_forward_args=extra, n_steps=steps, method="riemann_middle",
                internal_batch_size=len(inputs[0]), return_convergence_delta=True)  # one batch a step: bounded
        elif method == "deeplift":
            if any(isinstance(m, (nn.LSTM, nn.GRU, nn.RNN)) for m in model.modules()):
                raise UsageError(f"--method deeplift: DeepLIFT's rules do not cover recurrent layers, which "
                                 f"{type(model).__name__} has (Captum); use integrated-gradients or feature-ablation")
            attr, delta = DeepLift(_Score(model, score)).attribute(
                inputs, baselines=base, additional_forward_args=extra, return_convergence_delta=True)
        else:
            f = inputs[0].shape[-1]
            i_max = inputs[len(bs)].shape[1]
            marks = torch.arange(f)
            masks = tuple(marks.view(1, 1, f) for _ in bs)
            slot = f + torch.arange(i_max).view(1, i_max, 1, 1) * f + marks.view(1, 1, 1, f)
            masks += tuple(slot for _ in bs)
            attr = FeatureAblation(score).attribute(inputs, baselines=base, additional_forward_args=extra,
                                                    feature_mask=masks)
    n = len(bs)
    out = {"promoter": {b: a.detach() for b, a in zip(bs, attr[:n], strict=True)},
           "pcre": {b: a.detach() for b, a in zip(bs, attr[n:], strict=True)}}
    return out, (delta.detach() if delta is not None else None)
