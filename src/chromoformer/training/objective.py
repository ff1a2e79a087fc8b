"""What a run minimises and with what: the loss and the optimizer of its protocol (:class:`RunSpec.protocol`).

Under ``chromoformer`` (Chromoformer's own code): cross-entropy on 2 logits or MSE, AdamW with the
config's lr and its per-epoch decay ``gamma``. Under ``original`` a baseline keeps its own code's choice
(:data:`chromoformer.config.ORIGINAL_PROTOCOLS`; the spec's config already carries its lr, bsz and
``gamma = 1``): DeepChrome's SGD at 1e-3, batch 1, with Torch7's per-step lr decay 1e-7; AttentiveChrome's Adam
2e-4, batch 16, gradient norm clipped to 1, every weight U(-0.1, 0.1); HM-CRNN's Adam and, for its classifier,
the focal loss ``-(1 - p_t)^2 log p_t`` summed over the batch; GC-MERGE's Adam 1e-4 with ``best.pt`` the last
epoch; DeepDiff's Adam 1e-4, batch 10, clip 1 and :func:`deepdiff_loss`, ties going to the later epoch.

The differential task's ``standard`` loss (Chromoformer-diff's, and DeepDiff's under ``chromoformer``) is
``MSE(lfc) + MSE(expr_a) + MSE(expr_b)``: the fold change and each cell's log2(RPKM + 1) with weight 1, so the
shared encoder stays a single-cell regressor (DeepDiff's auxiliary terms, without its contrastive one). Its
validation loss is the fold change's MSE alone (what the stored outputs can recompute).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromoformer.spec import RunSpec

FOCAL_GAMMA = 2.0


def loss_kind(spec: RunSpec) -> str:
    """``focal`` (summed over the batch), ``deepdiff`` or ``standard`` (cross-entropy / MSE, batch mean)."""
    proto = spec.original_protocol
    if proto is not None and proto.loss == "focal" and spec.task == "clf":
        return "focal"
    return "deepdiff" if proto is not None and proto.loss == "deepdiff" else "standard"


def loss_fn(out: torch.Tensor, label: torch.Tensor, task: str, kind: str = "standard") -> torch.Tensor:
    """The batch-mean loss of an output table against (B,) targets: cross-entropy (or focal) on (B, 2) logits,
    or MSE of column 0 (a regressor's value, a pair model's fold change)."""
    if task != "clf":
        return F.mse_loss(out[:, 0], label)
    if kind == "focal":
        log_pt = F.log_softmax(out, dim=1).gather(1, label[:, None]).squeeze(1)
        return (-((1 - log_pt.exp()) ** FOCAL_GAMMA) * log_pt).mean()
    return F.cross_entropy(out, label)


def train_loss(out: torch.Tensor | dict[str, torch.Tensor], batch: dict, task: str, kind: str = "standard"
               ) -> torch.Tensor:
    """The loss a training step minimises (batch mean): :func:`loss_fn` for one cell's batch; for a pair's
    (``out`` a dict) :func:`deepdiff_loss` or the differential ``standard`` loss (see the module docstring)."""
    if not isinstance(out, dict):
        return loss_fn(out, batch["label"], task, kind)
    if kind == "deepdiff":
        return deepdiff_loss(out, batch["lfc"], batch["expr_a"], batch["expr_b"])
    return (F.mse_loss(out["lfc"][:, 0], batch["lfc"]) + F.mse_loss(out["expr_a"][:, 0], batch["expr_a"])
            + F.mse_loss(out["expr_b"][:, 0], batch["expr_b"]))


def clip_norm(spec: RunSpec) -> float | None:
    """The gradient-norm clip of the run's protocol (None: none)."""
    proto = spec.original_protocol
    return proto.clip if proto is not None else None


def summed(kind: str) -> bool:
    """Whether the protocol's loss is summed over the batch (the mean is then scaled by the batch size)."""
    return kind == "focal"


def make_optimizer(model: nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    """AdamW (Chromoformer) or the original's Adam or SGD, at ``spec.config.lr``."""
    proto = spec.original_protocol
    if proto is not None and proto.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.config.lr)
    if proto is not None and proto.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.config.lr)
    # fused: one kernel over every parameter instead of a Python loop over 200+ tensors (bench/profile_step.py:
    # 22 -> 6 ms a step on 2 cores); the same update to 1e-17 in float64 and 1e-7 in float32 after 10 steps
    # (tests/test_speed_levers.py)
    return torch.optim.AdamW(model.parameters(), lr=spec.config.lr, fused=fusable(model))


class TorchDecay:
    """Torch7's ``learningRateDecay`` as a ``LambdaLR`` factor: step k (from 0) at ``1 / (1 + k * decay)``."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, step: int) -> float:
        return 1.0 / (1.0 + step * self.decay)


def make_scheduler(opt: torch.optim.Optimizer, spec: RunSpec) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
    """The run's learning-rate schedule and whether it steps after every optimizer step (``True``: the original's
    per-step decay) or once an epoch (Chromoformer's ``gamma``; 1 under a recorded original recipe)."""
    proto = spec.original_protocol
    if proto is not None and proto.lr_decay:
        return torch.optim.lr_scheduler.LambdaLR(opt, TorchDecay(proto.lr_decay)), True
    return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=spec.config.gamma), False


def init_weights(model: nn.Module, spec: RunSpec) -> None:
    """The protocol's initialisation, after the model is built: ``uniform`` draws every parameter U(-0.1, 0.1)
    (AttentiveChrome's and DeepDiff's code), in ``model.parameters()`` order from the global generator."""
    proto = spec.original_protocol
    if proto is not None and proto.init == "uniform":
        with torch.no_grad():
            for p in model.parameters():
                p.uniform_(-0.1, 0.1)


def is_best(spec: RunSpec, value: float, best: float, best_epoch: int) -> bool:
    """Whether an epoch with validation metric ``value`` becomes ``best.pt`` (``best_epoch`` 0: none yet), by the
    protocol's ``select`` rule: ``last``, ``best-later`` (ties to the later epoch) or ``best`` (the earlier)."""
    proto = spec.original_protocol
    select = proto.select if proto is not None else "best"
    if best_epoch == 0 or select == "last":
        return True
    return value >= best if select == "best-later" else value > best


def fusable(model: nn.Module) -> bool:
    """Whether ``AdamW(fused=True)`` can take every parameter (floating point on CPU or CUDA)."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in model.parameters())


def describe(spec: RunSpec) -> str:
    """One phrase for logs and tables: which protocol trained the run."""
    if (p := spec.original_protocol) is not None:
        kind = loss_kind(spec)
        loss = {"focal": "focal", "deepdiff": "MSE + aux + 4 x contrastive"}.get(
            kind, "cross-entropy" if spec.task == "clf" else "MSE")
        extra = (f", clip {p.clip:g}" if p.clip else "") + (f", lr decay {p.lr_decay:g}" if p.lr_decay else "")
        extra += ", U(-0.1, 0.1) init" if p.init == "uniform" else ""
        keep = {"last": "; best.pt = last epoch", "best-later": "; ties to the later epoch"}.get(p.select, "")
        return (f"original ({p.source}: {p.optimizer}, lr {spec.config.lr:g}, batch {spec.config.bsz}{extra}, "
                f"{loss} loss{keep})")
    return f"chromoformer (AdamW, lr {spec.config.lr:g}, decay {spec.config.gamma:g}, batch {spec.config.bsz})"


DEEPDIFF_MARGIN, DEEPDIFF_SIAMESE_WEIGHT, DEEPDIFF_APART = 2.0, 4.0, 2.0


def contrastive_loss(emb_a: torch.Tensor, emb_b: torch.Tensor, apart: torch.Tensor,
                     margin: float = DEEPDIFF_MARGIN) -> torch.Tensor:
    """Batch mean of ``d^2`` (pairs to pull together) or ``max(0, margin - d)^2`` (``apart``), with
    ``d = ||emb_a - emb_b + 1e-6||`` over (B, D) embeddings: ``F.pairwise_distance``, whose eps DeepDiff's
    ``SiameseLoss.py`` keeps (BASELINES.md §3b); the Hadsell-Chopra-LeCun form."""
    d = F.pairwise_distance(emb_a, emb_b)
    return torch.where(apart, (margin - d).clamp(min=0) ** 2, d**2).mean()


def deepdiff_loss(out: dict[str, torch.Tensor], lfc: torch.Tensor, expr_a: torch.Tensor,
                  expr_b: torch.Tensor) -> torch.Tensor:
    """DeepDiff's objective: MSE of the fold change, plus each cell's auxiliary MSE (weight 1), plus
    4 x the contrastive term on the cells' track embeddings, apart when ``|lfc| >= 2``. Targets (B,)."""
    return (torch.nn.functional.mse_loss(out["lfc"][:, 0], lfc)
            + torch.nn.functional.mse_loss(out["expr_a"][:, 0], expr_a)
            + torch.nn.functional.mse_loss(out["expr_b"][:, 0], expr_b)
            + DEEPDIFF_SIAMESE_WEIGHT * contrastive_loss(out["emb_a"], out["emb_b"], lfc.abs() >= DEEPDIFF_APART))
