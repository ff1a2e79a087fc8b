"""Benchmark models of the paper, on the same batches as Chromoformer (promoter features only).

Both read ``promoter_feats[b]`` at the finest bin size ``b`` of the batch and keep the
centre ``n_bins`` bins (default 100, i.e. TSS +- 5 kb at 100 bp, as in the original papers).

* :class:`DeepChrome` (Singh et al. 2016): Conv1d(marks -> 50, k=10), ReLU, MaxPool(5),
  Linear -> 625 -> 125 -> n_out.
* :class:`AttentiveChrome` (Singh et al. 2017): per mark, a bidirectional LSTM over bins with
  bin-level attention; over marks, a bidirectional LSTM with mark-level attention; Linear -> n_out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def centre_bins(promoter_feats: dict[int, Tensor], n_bins: int) -> Tensor:
    """(B, nb, F) at the finest resolution -> its centre ``n_bins`` bins, (B, n_bins, F)."""
    x = promoter_feats[min(promoter_feats)]
    nb = x.shape[1]
    if n_bins > nb:
        raise ValueError(f"{n_bins} bins requested but the finest resolution has {nb}")
    lo = (nb - n_bins) // 2
    return x[:, lo : lo + n_bins]


class DeepChrome(nn.Module):
    def __init__(self, n_feats: int = 7, n_out: int = 2, n_bins: int = 100, n_filters: int = 50,
                 kernel: int = 10, pool: int = 5, dropout: float = 0.5) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.conv = nn.Sequential(nn.Conv1d(n_feats, n_filters, kernel), nn.ReLU(), nn.MaxPool1d(pool),
                                  nn.Dropout(dropout))
        n_flat = n_filters * ((n_bins - kernel + 1) // pool)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, 625), nn.ReLU(), nn.Linear(625, 125), nn.ReLU(),
                                  nn.Linear(125, n_out))

    def forward(self, promoter_feats: dict[int, Tensor], **_: object) -> Tensor:
        """(B, nb, F) promoter features -> (B, n_out)."""
        x = centre_bins(promoter_feats, self.n_bins).transpose(1, 2)  # (B, F, n_bins)
        return self.head(self.conv(x))


class _AttentionPool(nn.Module):
    """Softmax attention over a sequence of (N, T, d) -> (N, d), weights (N, T)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.score = nn.Linear(d, 1, bias=False)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        w = torch.softmax(self.score(h).squeeze(-1), dim=-1)
        return (w.unsqueeze(-1) * h).sum(1), w


class AttentiveChrome(nn.Module):
    def __init__(self, n_feats: int = 7, n_out: int = 2, n_bins: int = 100, bin_hidden: int = 32,
                 mark_hidden: int = 16) -> None:
        super().__init__()
        self.n_bins, self.n_feats = n_bins, n_feats
        self.bin_rnn = nn.LSTM(1, bin_hidden, batch_first=True, bidirectional=True)
        self.bin_att = _AttentionPool(2 * bin_hidden)
        self.mark_rnn = nn.LSTM(2 * bin_hidden, mark_hidden, batch_first=True, bidirectional=True)
        self.mark_att = _AttentionPool(2 * mark_hidden)
        self.head = nn.Linear(2 * mark_hidden, n_out)
        self.last_attention: dict[str, Tensor] = {}

    def forward(self, promoter_feats: dict[int, Tensor], **_: object) -> Tensor:
        """(B, nb, F) promoter features -> (B, n_out); attention kept in ``last_attention``."""
        x = centre_bins(promoter_feats, self.n_bins)  # (B, T, F)
        b, t, f = x.shape
        per_mark = x.permute(0, 2, 1).reshape(b * f, t, 1)  # each mark its own sequence
        h, _ = self.bin_rnn(per_mark)
        mark_vec, bin_w = self.bin_att(h)  # (B*F, 2*bin_hidden), (B*F, T)
        h2, _ = self.mark_rnn(mark_vec.view(b, f, -1))
        gene_vec, mark_w = self.mark_att(h2)
        self.last_attention = {"bin": bin_w.view(b, f, t).detach(), "mark": mark_w.detach()}
        return self.head(gene_vec)
