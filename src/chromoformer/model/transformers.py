"""The three per-resolution transformers of Chromoformer (docs/original.md §1.3-1.5).

Only bin ``n_bins // 2`` (the TSS bin) of the Embedding and Pairwise Interaction
transformers reaches the output. Query rows of attention, the feed-forward and
LayerNorm are all position-wise, so with ``tss_only=True`` the last Embedding
layer and every Pairwise layer compute that one query row alone: the result is
the same as computing all rows and slicing, at a fraction of the cost.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from chromoformer.config import TransformerConfig
from chromoformer.model.attention import (
    AttentionBlock,
    AttentionStack,
    MultiHeadAttention,
    PairwiseMultiHeadAttention,
)


def sinusoidal_encoding(n_pos: int, dim: int) -> Tensor:
    """Fixed sinusoidal position encoding, (n_pos, dim): sin on even dims, cos on odd."""
    pos = torch.arange(n_pos, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n_pos, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class EmbeddingTransformer(nn.Module):
    """Self-attention over promoter bins: (B, nb, n_feats) -> TSS token (B, d_emb)."""

    def __init__(self, n_feats: int, d_emb: int, cfg: TransformerConfig, n_bins: int) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.lin_proj = nn.Linear(n_feats, d_emb, bias=False)
        self.transformer = AttentionStack(
            [
                AttentionBlock(MultiHeadAttention(d_emb, cfg.d_model, cfg.n_heads), d_emb, cfg.d_ff)
                for _ in range(cfg.n_layers)
            ]
        )
        self.register_buffer("pos_enc", sinusoidal_encoding(n_bins, d_emb), persistent=False)

    def forward(self, x: Tensor, key_mask: Tensor, tss_only: bool = True, attentions: list | None = None) -> Tensor:
        """
        Parameters
        ----------
        x : (B, nb, n_feats) promoter features
        key_mask : (B, 1, 1, nb) additive mask over padded promoter bins
        tss_only : return only the TSS bin (B, d_emb); else the full (B, nb, d_emb)
        attentions : if a list, per-layer (B, H, Tq, nb) attention maps are appended
        """
        h = self.lin_proj(x) + self.pos_enc
        layers = self.transformer.layers
        for i, layer in enumerate(layers):
            q = self.n_bins // 2 if tss_only and i == len(layers) - 1 else None
            h, w = layer.self_att(h, key_mask, query_index=q, need_weights=attentions is not None)
            h = layer.ff(h)
            if attentions is not None:
                attentions.append(w)
        return h[:, 0] if tss_only else h


class PairwiseInteractionTransformer(nn.Module):
    """Cross-attention from promoter bins to one pCRE's bins; the pCRE stream is never updated."""

    def __init__(self, n_feats: int, d_emb: int, cfg: TransformerConfig, n_bins: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(d_emb)  # unused by the original; kept for checkpoints
        self.lin_proj_p = nn.Linear(d_emb, d_emb, bias=False)
        self.lin_proj_pcre = nn.Linear(n_feats, d_emb, bias=False)
        self.transformer = AttentionStack(
            [
                AttentionBlock(PairwiseMultiHeadAttention(d_emb, cfg.d_model, cfg.n_heads), d_emb, cfg.d_ff)
                for _ in range(cfg.n_layers)
            ]
        )
        self.register_buffer("pos_enc", sinusoidal_encoding(n_bins, d_emb), persistent=False)

    def forward(
        self,
        promoter: Tensor,
        pcre: Tensor,
        owner: Tensor,
        key_mask: Tensor,
        attentions: list | None = None,
    ) -> Tensor:
        """
        Parameters
        ----------
        promoter : (B, Tp, d_emb) Embedding-transformer output (Tp = 1 for the TSS bin only)
        pcre : (N, nb, n_feats) features of the N real pCREs of the batch
        owner : (N,) index into B of each pCRE's gene
        key_mask : (N, 1, 1, nb) additive mask over padded pCRE bins

        Returns
        -------
        (N, Tp, d_emb) promoter stream after cross-attention, one per pCRE
        """
        # Projected once per gene, then shared by its pCREs. index_select, not ``[owner]``: the
        # backward of advanced indexing is index_put_(accumulate=True), which on CPU adds with
        # parallel atomics once the batch is large, so gradients depended on thread timing.
        # index_select's backward (index_add_) accumulates in index order: bit-reproducible.
        h = self.lin_proj_p(promoter).index_select(0, owner)
        for layer in self.transformer.layers:
            # the pCRE stream lin_proj_pcre(pcre) + pos_enc is never updated, so every layer
            # attends to it in the n_feats-dim input space (PairwiseMultiHeadAttention.forward_factored)
            h, w = layer.self_att.forward_factored(
                h, pcre, self.lin_proj_pcre.weight, self.pos_enc, key_mask, need_weights=attentions is not None
            )
            h = layer.ff(h)
            if attentions is not None:
                attentions.append(w)
        return h


class RegulationTransformer(nn.Module):
    """Gated self-attention over [promoter token, pCRE tokens] with an interaction-frequency bias."""

    def __init__(self, d_emb: int, cfg: TransformerConfig) -> None:
        super().__init__()
        self.transformer = AttentionStack(
            [
                AttentionBlock(MultiHeadAttention(d_emb, cfg.d_model, cfg.n_heads, gated=True), d_emb, cfg.d_ff)
                for _ in range(cfg.n_layers)
            ]
        )

    def forward(self, tokens: Tensor, key_mask: Tensor, freq: Tensor, attentions: list | None = None) -> Tensor:
        """
        Parameters
        ----------
        tokens : (B, 1 + i_max, d_emb), token 0 is the promoter
        key_mask : (B, 1, 1, 1 + i_max) additive mask over dummy pCRE tokens
        freq : (B, 1 + i_max, 1 + i_max), nonzero only in row 0 (promoter -> pCRE j)

        Returns
        -------
        (B, d_emb) the promoter token after the last layer
        """
        h = tokens
        layers = self.transformer.layers
        for i, layer in enumerate(layers):
            q = 0 if i == len(layers) - 1 and attentions is None else None
            h, w = layer.self_att(h, key_mask, freq, query_index=q, need_weights=attentions is not None)
            h = layer.ff(h)
            if attentions is not None:
                attentions.append(w)
        return h[:, 0]
