"""Chromoformer classifier and regressor (docs/original.md §1).

Inputs per bin size ``b`` (keys are ints; ``nb = w_max // b``):

* ``promoter_feats[b]`` (B, nb, n_feats) and ``promoter_bins[b]`` (B, 2) = (first valid bin, n valid);
* ``pcre_feats[b]`` (B, i_max, nb, n_feats) and ``pcre_bins[b]`` (B, i_max, 2);

plus ``n_pcres`` (B,) real pCREs per gene (they come first) and ``interaction_freq``
(B, i_max) their normalised pcHi-C scores. Attention masks are built on the
model's device from these spans and counts; dummy pCRE slots are never computed.

Absent marks: a model built with ``config.mark_dropout > 0`` has ``absent`` (n_feats,), a
learned input value standing for "this mark was not measured" (initialised to -1, below
every real log signal). ``present`` (B, n_feats) bool replaces an absent mark's every bin
by it, in the promoter and the pCREs. A model without it accepts only all-present marks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from chromoformer.config import DEFAULT_BINSIZES, ChromoformerConfig, ModelConfig, model_config
from chromoformer.errors import ConfigError
from chromoformer.model.transformers import (
    EmbeddingTransformer,
    PairwiseInteractionTransformer,
    RegulationTransformer,
)


def span_key_mask(spans: Tensor, n_bins: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Additive key mask from (start, length) spans.

    Parameters
    ----------
    spans : (..., 2) long, first valid bin and number of valid bins
    n_bins : frame length

    Returns
    -------
    (..., 1, 1, n_bins) with 0 on valid bins and -inf on padding
    """
    pos = torch.arange(n_bins, device=spans.device)
    start, length = spans[..., :1], spans[..., 1:]
    pad = (pos < start) | (pos >= start + length)
    return torch.zeros(pad.shape, dtype=dtype, device=spans.device).masked_fill(pad, float("-inf"))[..., None, None, :]


class ChromoformerBase(nn.Module):
    """Three resolution branches (embed -> pairwise -> regulation) and an MLP head."""

    def __init__(self, config: ChromoformerConfig | ModelConfig, n_out: int,
                 binsizes: tuple[int, ...] = DEFAULT_BINSIZES) -> None:
        super().__init__()
        config = model_config(config)  # the model never sees training settings
        self.config, self.binsizes = config, tuple(int(b) for b in binsizes)
        self.use_pcres = True  # False: the no-pCRE ablation (every gene is seen without its pCREs)
        for b in self.binsizes:
            if config.w_max % b:
                raise ConfigError(f"bin size {b} does not divide w_max={config.w_max}")
        f, d = config.n_feats, config.d_emb
        nbs = {b: config.w_max // b for b in self.binsizes}
        self.embed = nn.ModuleDict({str(b): EmbeddingTransformer(f, d, config.embed, nbs[b]) for b in self.binsizes})
        self.pairwise_interaction = nn.ModuleDict(
            {str(b): PairwiseInteractionTransformer(f, d, config.pairwise_interaction, nbs[b]) for b in self.binsizes}
        )
        self.regulation = nn.ModuleDict({str(b): RegulationTransformer(d, config.regulation) for b in self.binsizes})
        self.fc_head = self.make_head(n_out)
        # no random draw here: every other initial weight is the same with or without it
        self.register_parameter("absent", nn.Parameter(torch.full((f,), -1.0)) if config.mark_dropout > 0 else None)

    def make_head(self, n_out: int) -> nn.Sequential:
        """Linear(n_branches * d_emb -> d_head), ReLU, Linear(d_head -> n_out)."""
        d_in = len(self.binsizes) * self.config.d_emb
        return nn.Sequential(nn.Linear(d_in, self.config.d_head), nn.ReLU(), nn.Linear(self.config.d_head, n_out))

    def branch(
        self,
        b: int,
        promoter_feats: Tensor,
        promoter_bins: Tensor,
        pcre_feats: Tensor,
        pcre_bins: Tensor,
        n_pcres: Tensor,
        interaction_freq: Tensor,
        attentions: dict | None = None,
    ) -> Tensor:
        """One resolution: returns the (B, d_emb) promoter representation (regulation + skip)."""
        bsz, i_max, nb, _ = pcre_feats.shape
        dt = promoter_feats.dtype
        att = {k: [] for k in ("embed", "pairwise_interaction", "regulation")} if attentions is not None else None
        tss = self.embed[str(b)](promoter_feats, span_key_mask(promoter_bins, nb, dt), attentions=att and att["embed"])
        real = torch.arange(i_max, device=n_pcres.device) < n_pcres[:, None]  # (B, i_max)
        owner, slot = real.nonzero(as_tuple=True)
        pw = self.pairwise_interaction[str(b)](
            tss[:, None],
            pcre_feats[owner, slot],
            owner,
            span_key_mask(pcre_bins[owner, slot], nb, dt),
            attentions=att and att["pairwise_interaction"],
        )  # (N, 1, d)
        tokens = tss.new_zeros(bsz, i_max, tss.shape[-1]).index_put((owner, slot), pw[:, 0].to(tss.dtype))
        tokens = torch.cat([tss[:, None], tokens], dim=1)  # (B, 1 + i_max, d)
        key_pad = torch.cat([torch.zeros_like(real[:, :1]), ~real], dim=1)
        key_mask = torch.zeros(key_pad.shape, dtype=dt, device=key_pad.device).masked_fill(key_pad, float("-inf"))[
            :, None, None, :
        ]
        freq = interaction_freq.new_zeros(bsz, 1 + i_max, 1 + i_max)
        freq[:, 0, 1:] = interaction_freq.masked_fill(~real, 0.0)
        reg = self.regulation[str(b)](tokens, key_mask, freq.to(dt), attentions=att and att["regulation"])
        if attentions is not None:
            attentions[b] = att
        return reg + tss

    def forward(
        self,
        promoter_feats: dict[int, Tensor],
        promoter_bins: dict[int, Tensor],
        pcre_feats: dict[int, Tensor],
        pcre_bins: dict[int, Tensor],
        n_pcres: Tensor,
        interaction_freq: Tensor,
        attentions: dict | None = None,
        present: Tensor | None = None,
        **_: object,
    ) -> Tensor:
        """Returns (B, n_out): 2 logits for the classifier, 1 value for the regressor.

        Extra keyword entries of a batch (e.g. ``label``, ``gene_id``) are ignored so
        that ``model(**batch)`` works. Pass a dict as ``attentions`` to receive, per bin
        size, the per-layer attention probabilities of each transformer.
        """
        return self.fc_head(self.embedding(promoter_feats, promoter_bins, pcre_feats, pcre_bins, n_pcres,
                                           interaction_freq, attentions, present))

    def embedding(
        self,
        promoter_feats: dict[int, Tensor],
        promoter_bins: dict[int, Tensor],
        pcre_feats: dict[int, Tensor],
        pcre_bins: dict[int, Tensor],
        n_pcres: Tensor,
        interaction_freq: Tensor,
        attentions: dict | None = None,
        present: Tensor | None = None,
        **_: object,
    ) -> Tensor:
        """The multi-scale gene embedding the head reads: (B, n_branches * d_emb), bin sizes in order."""
        if not self.use_pcres:
            n_pcres = torch.zeros_like(n_pcres)
        if present is not None:
            promoter_feats, pcre_feats = self.hide_absent(promoter_feats, pcre_feats, present)
        reps = [
            self.branch(
                b,
                promoter_feats[b],
                promoter_bins[b],
                pcre_feats[b],
                pcre_bins[b],
                n_pcres,
                interaction_freq,
                attentions,
            )
            for b in self.binsizes
        ]
        return torch.cat(reps, dim=-1)

    def hide_absent(self, promoter_feats: dict[int, Tensor], pcre_feats: dict[int, Tensor], present: Tensor,
                    ) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
        """Every bin of a mark absent in ``present`` (B, n_feats) set to the learned ``absent`` value."""
        if self.absent is None:
            if not bool(present.all()):
                raise ValueError("this model was trained without mark dropout: every mark must be present")
            return promoter_feats, pcre_feats
        keep = present.to(torch.bool)
        prom = {b: torch.where(keep[:, None, :], x, self.absent.to(x.dtype)) for b, x in promoter_feats.items()}
        pcre = {b: torch.where(keep[:, None, None, :], x, self.absent.to(x.dtype)) for b, x in pcre_feats.items()}
        return prom, pcre


class ChromoformerClassifier(ChromoformerBase):
    """Binary expression classifier: 2 logits, trained with cross-entropy."""

    task = "clf"

    def __init__(self, config: ChromoformerConfig | ModelConfig | None = None,
                 binsizes: tuple[int, ...] = DEFAULT_BINSIZES) -> None:
        super().__init__(model_config(config), 2, binsizes)


class ChromoformerRegressor(ChromoformerBase):
    """Expression regressor: 1 output, log2(RPKM + 1), trained with MSE."""

    task = "reg"

    def __init__(self, config: ChromoformerConfig | ModelConfig | None = None,
                 binsizes: tuple[int, ...] = DEFAULT_BINSIZES) -> None:
        # Like the original, build the 2-logit head and then replace it: the draws from the
        # global RNG, and so the initial weights for a given seed, match the original's.
        super().__init__(model_config(config), 2, binsizes)
        self.fc_head = self.make_head(1)
