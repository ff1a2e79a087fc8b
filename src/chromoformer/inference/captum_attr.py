"""Attributions through Captum (the field's standard library): integrated gradients, DeepLift,
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

from collections.abc import Callable

import torch
from torch import Tensor, nn

from chromoformer.errors import UsageError
from chromoformer.model import model_score

METHODS = ("integrated-gradients", "deeplift", "feature-ablation")


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
        return model_score(model, parts)

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
                internal_batch_size=None, return_convergence_delta=True)
        elif method == "deeplift":
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
