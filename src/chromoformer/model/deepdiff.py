"""DeepDiff (Sekhon, Singh & Qi 2018), variant ``raw_aux_siamese``, on two cells' Chromoformer batches.

BASELINES.md §3. Choice written down: of the seven variants in DeepDiff's code the one built here is
``raw_aux_siamese``, the variant that has every part the paper describes (raw differential tracks,
the auxiliary per-cell expression terms, the Siamese shared encoders); which variant the paper's
tables call DeepDiff is n/v.

Input per cell: the central 200 of the 400 bins at 100 bp (TSS +- 10 kb, DeepDiff's window), every
mark of the batch. Values are the loader's ln(1 + mean depth), not DeepDiff's raw read counts (a
deviation: Chromoformer's inputs hold no counts).

* a **bin encoder** (AttentiveChrome's bin level): per track a BiLSTM (1 -> 32 per direction) over
  the bins, attention ``softmax_t(h_t . v)`` with a learned v (64,): (B, T) -> (B, 64);
* a **mark encoder**: a BiLSTM (64 -> 16 per direction) over mark tokens, the same attention: -> (B, 32).

``raw_aux_siamese``, F marks: the raw tracks [A, B, A - B] (3F) each have their own bin encoder;
each cell's F tracks go through F bin encoders **shared by A and B** (the Siamese part), then a mark
encoder per cell and an auxiliary head Linear(32 -> 1) per cell (log2(RPKM + 1) of that cell); the
main mark encoder reads all 5F tokens [raw A, raw B, raw A - B, cell A, cell B] -> Linear(32 -> 1),
the log fold change of RPKM (DeepDiff's is of read counts: :mod:`chromoformer.diff.pairing`). The encoders
are AttentiveChrome's (:class:`~chromoformer.model.baselines.Encoder`). Every weight starts U(-0.1, 0.1), as in
DeepDiff's code. Parameters: 212,163 (5 marks) / 284,355 (7 marks).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from chromoformer.model.baselines import Encoder

N_BINS = 200


def central_bins(promoter_feats: dict[int, Tensor], n_bins: int = N_BINS) -> Tensor:
    """(B, nb, F) at 100 bp -> its central ``n_bins`` bins, (B, n_bins, F)."""
    if 100 not in promoter_feats:
        raise ValueError(f"DeepDiff reads 100 bp bins; the batch has bin sizes {sorted(promoter_feats)}")
    x = promoter_feats[100]
    if x.shape[1] < n_bins:
        raise ValueError(f"DeepDiff reads {n_bins} bins of 100 bp; the batch has {x.shape[1]}")
    lo = (x.shape[1] - n_bins) // 2
    return x[:, lo : lo + n_bins]


def encode_tracks(encoders: nn.ModuleList, tracks: Tensor) -> Tensor:
    """(B, T, K) tracks, one bin encoder each -> (B, K, 64) track tokens."""
    return torch.stack([enc(tracks[:, :, k : k + 1])[0] for k, enc in enumerate(encoders)], 1)


class DeepDiff(nn.Module):
    """``raw_aux_siamese``; :meth:`forward` returns the fold change, both auxiliary expressions and the
    cells' track embeddings (for the Siamese contrastive term)."""

    def __init__(self, n_feats: int = 7, bin_hidden: int = 32, mark_hidden: int = 16) -> None:
        super().__init__()
        d_bin, d_mark = 2 * bin_hidden, 2 * mark_hidden
        self.n_feats = n_feats
        self.raw_bins = nn.ModuleList(Encoder(1, bin_hidden) for _ in range(3 * n_feats))
        self.cell_bins = nn.ModuleList(Encoder(1, bin_hidden) for _ in range(n_feats))  # shared by A and B
        self.mark_a, self.mark_b = Encoder(d_bin, mark_hidden), Encoder(d_bin, mark_hidden)
        self.aux_a, self.aux_b = nn.Linear(d_mark, 1), nn.Linear(d_mark, 1)
        self.mark_main = Encoder(d_bin, mark_hidden)
        self.head = nn.Linear(d_mark, 1)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, a: dict, b: dict) -> dict[str, Tensor]:
        """Two cells' batches (``promoter_feats`` read) -> ``lfc``, ``expr_a``, ``expr_b``
        (B, 1: the auxiliary heads, each cell's log2(RPKM + 1)) and
        ``emb_a``, ``emb_b`` (B, F * 64)."""
        xa, xb = central_bins(a["promoter_feats"]), central_bins(b["promoter_feats"])  # (B, T, F)
        raw = encode_tracks(self.raw_bins, torch.cat([xa, xb, xa - xb], 2))  # (B, 3F, 64)
        ca, cb = encode_tracks(self.cell_bins, xa), encode_tracks(self.cell_bins, xb)  # (B, F, 64) each
        main = self.mark_main(torch.cat([raw, ca, cb], 1))[0]
        return {"lfc": self.head(main), "expr_a": self.aux_a(self.mark_a(ca)[0]),
                "expr_b": self.aux_b(self.mark_b(cb)[0]),
                "emb_a": ca.flatten(1), "emb_b": cb.flatten(1)}
