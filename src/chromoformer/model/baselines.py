"""DeepChrome and AttentiveChrome, the paper's promoter-only benchmark models, on Chromoformer's batches.

Both read ``promoter_feats[b]`` at the finest bin size ``b`` of the batch and keep the centre ``n_bins``
bins (default 100, i.e. TSS +- 5 kb at 100 bp, as in the original papers). BASELINES.md §3b has the
originals' layers and counts; docs/models.md says what is adapted (inputs are ln(1 + mean depth) per bin,
not read counts; 7 marks by default, the originals' 5 with ``--marks``).

* :class:`DeepChrome` (Singh et al. 2016): Conv1d(marks -> 50, k=10), ReLU, MaxPool(5), Dropout(0.5),
  Linear 900 -> 625 -> 125 -> 2 (the original's LogSoftMax + ClassNLL is cross-entropy on these logits).
  644,177 parameters at 5 marks, 645,177 at 7.
* :class:`AttentiveChrome` (Singh et al. 2017, ``v2PyTorch/models.py``): **one encoder per mark**, each a
  bidirectional LSTM (1 -> 32 per direction) over the bins with its own attention context (9,024 parameters a
  mark); a bidirectional LSTM (64 -> 16 per direction) over the mark embeddings with attention (10,528); a
  one-logit head Linear(32 -> 1) (33). 55,681 parameters at 5 marks, 73,729 at 7, for both tasks.
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


class DotAttention(nn.Module):
    """AttentiveChrome's attention: ``a_t = softmax_t(h_t . v)`` with a learned context vector ``v`` (d,);
    (N, T, d) -> context (N, d) and weights (N, T). ``v`` starts at 0: the model that holds it draws it."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.zeros(d))

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        w = torch.softmax(h @ self.v, dim=-1)
        return (w.unsqueeze(-1) * h).sum(1), w


class Encoder(nn.Module):
    """AttentiveChrome's ``recurrent_encoder``: a bidirectional LSTM over a sequence and its attention,
    (N, T, d_in) -> context (N, 2 * hidden) and weights (N, T)."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, batch_first=True, bidirectional=True)
        self.attention = DotAttention(2 * hidden)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, _ = self.lstm(x)
        return self.attention(h)


class AttentiveChrome(nn.Module):
    """AttentiveChrome as published: ``bin_encoders[k]`` reads mark k alone (no weight shared between marks),
    ``mark_encoder`` reads the F mark embeddings, ``head`` gives one logit ``z``. A classifier returns the
    logits ``(0, z)`` (cross-entropy on them is the original's BCE-with-logits on ``z``); a regressor ``z``."""

    def __init__(self, n_feats: int = 7, n_out: int = 2, n_bins: int = 100, bin_hidden: int = 32,
                 mark_hidden: int = 16) -> None:
        super().__init__()
        if n_out not in (1, 2):
            raise ValueError(f"n_out must be 2 (classifier) or 1 (regressor), got {n_out}")
        self.n_bins, self.n_feats, self.n_out = n_bins, n_feats, n_out
        self.bin_encoders = nn.ModuleList(Encoder(1, bin_hidden) for _ in range(n_feats))
        self.mark_encoder = Encoder(2 * bin_hidden, mark_hidden)
        self.head = nn.Linear(2 * mark_hidden, 1)
        for m in self.modules():  # the context vectors start U(-0.1, 0.1), as in the original's attention module
            if isinstance(m, DotAttention):
                nn.init.uniform_(m.v, -0.1, 0.1)
        self.last_attention: dict[str, Tensor] = {}

    def forward(self, promoter_feats: dict[int, Tensor], **_: object) -> Tensor:
        """(B, nb, F) promoter features -> (B, 2) logits ``(0, z)`` or (B, 1); the bin-level (B, F, T) and
        mark-level (B, F) attention kept in ``last_attention``."""
        x = centre_bins(promoter_feats, self.n_bins)  # (B, T, F)
        if x.shape[2] != self.n_feats:
            raise ValueError(f"AttentiveChrome was built for {self.n_feats} marks; the batch has {x.shape[2]}")
        per_mark = [enc(x[:, :, k : k + 1]) for k, enc in enumerate(self.bin_encoders)]
        marks = torch.stack([c for c, _ in per_mark], 1)  # (B, F, 2 * bin_hidden)
        gene, mark_w = self.mark_encoder(marks)
        self.last_attention = {"bin": torch.stack([w for _, w in per_mark], 1).detach(), "mark": mark_w.detach()}
        z = self.head(gene)  # (B, 1)
        return torch.cat([torch.zeros_like(z), z], 1) if self.n_out == 2 else z
