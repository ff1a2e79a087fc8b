"""HM-CRNN (Kang, Lee, Lee & Kim 2020), its histone-modification branch, on Chromoformer's batches.

BASELINES.md §1. The promoter window (TSS +- 20 kb, strand-flipped by the loader) is re-binned at
1 kb from the finest resolution of the batch, exactly: ``log1p(mean(expm1(x)))`` over each 1 kb
(the loader's values are ln(1 + mean depth) of equal-sized bins), giving ``n_feats x 40``.

Layers (shapes for 7 marks x 40 bins):

1. Conv2d(1 -> 20, kernel n_feats x 7): (B, 1, 7, 40) -> (B, 20, 1, 34), the marks collapse to one row;
2. BatchNorm2d(20), ReLU;
3. MaxPool1d(3, stride 3, padding 1): 34 -> 12 positions;
4. BiLSTM (input 20, 40 units per direction, zero initial state): (B, 12, 80);
5. additive attention ``softmax_t(w2 . tanh(W1 h_t))`` with W1 80 -> 16, w2 16 -> 1: context (B, 80);
6. head Linear(80 -> 32), ReLU, Linear(32 -> 1).

Parameters: 24,818 (the HM branch 22,193 plus the head). The original scores a gene with one
sigmoid output; here the classifier returns the logits ``(0, z)``, whose softmax is
``(1 - sigmoid(z), sigmoid(z))``, so that every consumer of two-logit classifiers (cross-entropy,
scores, calibration) reads it unchanged, with no extra parameter. pCREs are not used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

WINDOW_BP = 40_000
BIN_BP = 1_000


def rebin(promoter_feats: dict[int, Tensor], bin_bp: int = BIN_BP, window_bp: int = WINDOW_BP) -> Tensor:
    """ln(1 + mean depth) bins -> the same over ``bin_bp`` bins of the central ``window_bp``.

    Parameters
    ----------
    promoter_feats : {b: (B, nb, F)}; the finest ``b`` is used and must divide ``bin_bp``

    Returns
    -------
    (B, window_bp // bin_bp, F)
    """
    b = min(promoter_feats)
    x = promoter_feats[b]
    if bin_bp % b or x.shape[1] * b < window_bp:
        raise ValueError(f"{bin_bp} bp bins over {window_bp} bp need a finest bin size dividing {bin_bp} and "
                         f"covering the window; got {x.shape[1]} bins of {b} bp")
    lo = (x.shape[1] - window_bp // b) // 2
    x = x[:, lo : lo + window_bp // b]
    per = bin_bp // b
    return torch.log1p(torch.expm1(x).unflatten(1, (window_bp // bin_bp, per)).mean(2))


class AdditiveAttention(nn.Module):
    """``a_t = softmax_t(w2 . tanh(W1 h_t))``; (N, T, d) -> context (N, d) and weights (N, T)."""

    def __init__(self, d: int, d_att: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d, d_att)
        self.score = nn.Linear(d_att, 1)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        w = torch.softmax(self.score(torch.tanh(self.proj(h))).squeeze(-1), dim=-1)
        return (w.unsqueeze(-1) * h).sum(1), w


class HMCRNN(nn.Module):
    """The HM branch of HM-CRNN with an 80 -> 32 -> 1 head; ``n_out`` 2 (classifier) or 1 (regressor)."""

    def __init__(self, n_feats: int = 7, n_out: int = 2, n_filters: int = 20, kernel: int = 7, pool: int = 3,
                 hidden: int = 40, d_att: int = 16, d_head: int = 32) -> None:
        super().__init__()
        if n_out not in (1, 2):
            raise ValueError(f"n_out must be 2 (classifier) or 1 (regressor), got {n_out}")
        self.n_out = n_out
        self.conv = nn.Conv2d(1, n_filters, (n_feats, kernel))
        self.bn = nn.BatchNorm2d(n_filters)
        self.pool = nn.MaxPool1d(pool, stride=pool, padding=1)
        self.lstm = nn.LSTM(n_filters, hidden, batch_first=True, bidirectional=True)
        self.attention = AdditiveAttention(2 * hidden, d_att)
        self.head = nn.Sequential(nn.Linear(2 * hidden, d_head), nn.ReLU(), nn.Linear(d_head, 1))
        self.last_attention: dict[str, Tensor] = {}

    def forward(self, promoter_feats: dict[int, Tensor], **_: object) -> Tensor:
        """(B, nb, F) promoter features -> (B, 2) logits ``(0, z)`` or (B, 1) value."""
        x = rebin(promoter_feats).transpose(1, 2).unsqueeze(1)  # (B, 1, F, 40)
        h = torch.relu(self.bn(self.conv(x))).squeeze(2)  # (B, 20, 34)
        h, _ = self.lstm(self.pool(h).transpose(1, 2))  # (B, 12, 80)
        context, w = self.attention(h)
        self.last_attention = {"bin": w.detach()}
        z = self.head(context)  # (B, 1)
        return torch.cat([torch.zeros_like(z), z], 1) if self.n_out == 2 else z
