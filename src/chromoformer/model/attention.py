"""Attention building blocks of Chromoformer (post-LN, as in the original ``modules.py``).

Module and parameter names follow the original exactly so that published
checkpoints load with ``strict=True``; parameters the original creates but never
uses (``w_bias``, the pairwise ``gamma_f``) are kept for the same reason.

Masks are *additive* float tensors (0 = attend, ``-inf`` = blocked) over keys only.
Every query row used by the model keeps at least one allowed key, so rows are never
fully masked and ``-inf`` is exact (the original's ``-1e9`` fill underflows to the
same zero weights).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def attend(
    q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, need_weights: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Scaled dot-product attention.

    Parameters
    ----------
    q : (N, H, Tq, dh)
    k, v : (N, H, Tk, dh)
    bias : additive logits bias broadcastable to (N, H, Tq, Tk), or None
    need_weights : also return the (N, H, Tq, Tk) attention probabilities

    Returns
    -------
    out : (N, H, Tq, dh)
    weights : (N, H, Tq, Tk) or None
    """
    if not need_weights:
        if bias is not None:
            bias = bias.to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias), None
    logits = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if bias is not None:
        logits = logits + bias
    w = torch.softmax(logits, dim=-1)
    return torch.matmul(w, v), w


def _heads(x: Tensor, n_heads: int) -> Tensor:
    """(N, T, H*dh) -> (N, H, T, dh)."""
    n, t, _ = x.shape
    return x.view(n, t, n_heads, -1).transpose(1, 2)


def _merge(x: Tensor) -> Tensor:
    """(N, H, T, dh) -> (N, T, H*dh)."""
    n, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(n, t, h * dh)


class FeedForward(nn.Module):
    """``ln(x + l2(relu(l1(x))))``; (N, T, d_emb) -> (N, T, d_emb)."""

    def __init__(self, d_emb: int, d_ff: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(d_emb, d_ff)
        self.l2 = nn.Linear(d_ff, d_emb)
        self.ln = nn.LayerNorm(d_emb)

    def forward(self, x: Tensor) -> Tensor:
        return self.ln(x + self.l2(F.relu(self.l1(x))))


class MultiHeadAttention(nn.Module):
    """Self-attention sublayer, optionally gated, with an optional per-head logit bias.

    ``att`` maps d_emb -> (3 or 4) * d_model, chunked Q, K, V, (gate), each head-major.
    """

    def __init__(self, d_emb: int, d_model: int, n_heads: int, gated: bool = False) -> None:
        super().__init__()
        self.n_heads, self.d_model, self.gated = n_heads, d_model, gated
        self.gamma_f = nn.Parameter(torch.ones(n_heads))
        self.w_bias = nn.Linear(2, n_heads, bias=False)  # unused by the original; kept for checkpoints
        self.att = nn.Linear(d_emb, (4 if gated else 3) * d_model, bias=False)
        self.ff = nn.Linear(d_model, d_emb)
        self.ln = nn.LayerNorm(d_emb)

    def forward(
        self,
        x: Tensor,
        key_mask: Tensor | None = None,
        freq: Tensor | None = None,
        query_index: int | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from (a subset of) positions of ``x`` to all of them.

        Parameters
        ----------
        x : (N, T, d_emb)
        key_mask : (N, 1, 1, T) additive mask over keys, or None
        freq : (N, T, T) interaction bias, added as ``gamma_f[h] * freq``, or None
        query_index : compute only this query position (exact: rows are independent)
        need_weights : also return attention probabilities (N, H, Tq, T)

        Returns
        -------
        out : (N, Tq, d_emb), with Tq = T, or 1 when ``query_index`` is given
        """
        d = self.d_model
        w = self.att.weight
        kv = F.linear(x, w[d : 3 * d])
        xq = x if query_index is None else x[:, query_index : query_index + 1]
        qg = F.linear(xq, torch.cat([w[:d], w[3 * d :]]) if self.gated else w[:d])
        q = _heads(qg[..., :d], self.n_heads)
        k, v = (_heads(t, self.n_heads) for t in kv.chunk(2, dim=-1))
        bias = key_mask
        if freq is not None:
            if query_index is not None:
                freq = freq[:, query_index : query_index + 1]
            fb = self.gamma_f.view(1, -1, 1, 1) * freq.unsqueeze(1)
            bias = fb if bias is None else bias + fb
        out, weights = attend(q, k, v, bias, need_weights)
        if self.gated:
            out = out * torch.sigmoid(_heads(qg[..., d:], self.n_heads))
        return self.ln(xq + self.ff(_merge(out))), weights


class PairwiseMultiHeadAttention(nn.Module):
    """Cross-attention: promoter queries (``p_att``), pCRE keys/values (``c_att``: K then V)."""

    def __init__(self, d_emb: int, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.d_model = n_heads, d_model
        self.gamma_f = nn.Parameter(torch.ones(n_heads))  # unused by the original; kept for checkpoints
        self.p_att = nn.Linear(d_emb, d_model, bias=False)
        self.c_att = nn.Linear(d_emb, 2 * d_model, bias=False)
        self.ff = nn.Linear(d_model, d_emb)
        self.ln = nn.LayerNorm(d_emb)

    def forward(
        self, x_p: Tensor, x_c: Tensor, key_mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Update the promoter stream from the pCRE stream.

        Parameters
        ----------
        x_p : (N, Tp, d_emb) promoter stream (queries)
        x_c : (N, Tc, d_emb) pCRE stream (keys and values)
        key_mask : (N, 1, 1, Tc) additive mask over pCRE bins, or None

        Returns
        -------
        out : (N, Tp, d_emb)
        """
        q = _heads(self.p_att(x_p), self.n_heads)
        k, v = (_heads(t, self.n_heads) for t in self.c_att(x_c).chunk(2, dim=-1))
        out, weights = attend(q, k, v, key_mask, need_weights)
        return self.ln(x_p + self.ff(_merge(out))), weights

    def forward_factored(
        self,
        x_p: Tensor,
        feats: Tensor,
        w_in: Tensor,
        pos: Tensor,
        key_mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """:meth:`forward` with ``x_c = feats @ w_in.T + pos``, computed in the input space.

        K and V are linear in ``x_c``, so ``q . K_j = (q W_k w_in) . feats_j + q . (pos W_k^T)_j``
        and ``sum_j p_j V_j = (sum_j p_j feats_j)(W_v w_in)^T + sum_j p_j (pos W_v^T)_j``.
        The same maths as :meth:`forward` without materialising (N, Tc, 2 * d_model) K and V:
        with 7 input marks this is far cheaper.

        Parameters
        ----------
        x_p : (N, Tp, d_emb) promoter stream
        feats : (N, Tc, n_feats) raw pCRE features
        w_in : (d_emb, n_feats) input projection; pos : (Tc, d_emb) position encoding
        """
        n, tp, _ = x_p.shape
        h, dm = self.n_heads, self.d_model
        dh = dm // h
        w_k, w_v = self.c_att.weight[:dm], self.c_att.weight[dm:]
        wk_in = (w_k @ w_in).view(h, dh, -1)  # (H, dh, F)
        wv_in = (w_v @ w_in).view(h, dh, -1)
        pos_k = (pos @ w_k.T).view(-1, h, dh)  # (Tc, H, dh), shared by all pCREs
        pos_v = (pos @ w_v.T).view(-1, h, dh)
        q = self.p_att(x_p).view(n, tp, h, dh)
        qk = torch.einsum("nthd,hdf->nhtf", q, wk_in)
        logits = torch.einsum("nhtf,njf->nhtj", qk, feats) + torch.einsum("nthd,jhd->nhtj", q, pos_k)
        logits = logits / math.sqrt(dh)
        if key_mask is not None:
            logits = logits + key_mask
        p = torch.softmax(logits, dim=-1)  # (N, H, Tp, Tc)
        pf = torch.einsum("nhtj,njf->nhtf", p, feats)
        out = torch.einsum("nhtf,hdf->nthd", pf, wv_in) + torch.einsum("nhtj,jhd->nthd", p, pos_v)
        return self.ln(x_p + self.ff(out.reshape(n, tp, dm))), (p if need_weights else None)


class AttentionBlock(nn.Module):
    """``self_att`` then ``ff``; either kind of attention."""

    def __init__(self, self_att: nn.Module, d_emb: int, d_ff: int) -> None:
        super().__init__()
        self.self_att = self_att
        self.ff = FeedForward(d_emb, d_ff)


class AttentionStack(nn.Module):
    """Holds ``layers`` so that state_dict names read ``transformer.layers.{i}``."""

    def __init__(self, layers: list[AttentionBlock]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
