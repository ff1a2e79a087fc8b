"""GC-MERGE (Bigness et al. 2022) on Chromoformer's batches: one star graph per gene.

BASELINES.md §2. The original is a genome-wide graph of 10 kb bins with Hi-C edges; Chromoformer's
inputs hold only each gene's promoter window and its pCREs, so each gene is a star
(BASELINES' adaptation):

* node 0, the promoter: features = ln(1 + mean depth) over the central 10 kb (TSS +- 5 kb), the
  original's node size. **Centred on the TSS here**; the original's promoter node is the fixed genomic 10-kb
  bin that contains the TSS (``floor((TSS - chromosome start) / 10 kb)``, BASELINES.md §3b), so its TSS sits
  anywhere in the bin, and the bin's strand is never flipped (neither is this mean: it is blind to orientation);
* nodes 1..n (n = ``n_pcres`` <= i_max), the pCREs: ln(1 + mean depth) over each fragment's valid
  bins (padding and dummy pCREs are never read);
* edges promoter <-> pCRE both ways, unweighted as in the original (``interaction_freq`` unused).

Choice written down: node features are the loader's log values (ln(1 + mean depth)), not the
original's counts divided by each mark's maximum; the log already brings marks to one scale, and a
per-dataset maximum would make the model depend on statistics kept outside its weights.

Layers: two SAGEConvCat layers ``h' = ReLU(W [h || mean of neighbours] + b)`` (Linear 2F -> 256,
then 512 -> 256), dropout 0.5, Linear 256 -> 256, ReLU, Linear 256 -> 256, ReLU, Linear 256 -> C,
read at node 0. A gene with no pCRE has no neighbour: its neighbour mean is 0 (the original drops
such nodes; they are kept here). Parameters with 7 marks: 267,266 (C = 2) / 267,009 (C = 1); with the
original's 6: 266,754 / 266,497.

Training under ``--protocol original``: Adam 1e-4 and ``best.pt`` is the **last** epoch (the original evaluates
its last epoch, with no model selection). The original computes its validation metrics in train mode (dropout
on); here validation is always in eval mode.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NODE_BP = 10_000


def node_features(promoter_feats: dict[int, Tensor], pcre_feats: dict[int, Tensor], pcre_bins: dict[int, Tensor],
                  n_pcres: Tensor, node_bp: int = NODE_BP) -> tuple[Tensor, Tensor, Tensor]:
    """Per-gene star nodes from the finest resolution ``b`` of the batch.

    Returns
    -------
    promoter (B, F), pcres (B, i_max, F) (zero on dummy slots) and real (B, i_max) bool
    """
    b = min(promoter_feats)
    x = promoter_feats[b]
    n = node_bp // b
    if node_bp % b or n > x.shape[1]:
        raise ValueError(f"a {node_bp} bp promoter node needs a finest bin size dividing it; got {x.shape[1]} "
                         f"bins of {b} bp")
    lo = (x.shape[1] - n) // 2
    promoter = torch.log1p(torch.expm1(x[:, lo : lo + n]).mean(1))
    f, spans = pcre_feats[b], pcre_bins[b]  # (B, i_max, nb, F), (B, i_max, 2)
    pos = torch.arange(f.shape[2], device=f.device)
    start, length = spans[..., :1], spans[..., 1:]
    valid = (pos >= start) & (pos < start + length)  # (B, i_max, nb)
    real = torch.arange(f.shape[1], device=f.device) < n_pcres[:, None]
    valid = valid & real[..., None]
    depth = torch.where(valid[..., None], torch.expm1(f), torch.zeros((), dtype=f.dtype, device=f.device))
    count = valid.sum(2, keepdim=True).clamp(min=1).to(f.dtype)
    return promoter, torch.log1p(depth.sum(2) / count), real


class SAGEConvCat(nn.Module):
    """``h'_i = ReLU(W [h_i || mean_{j in N(i)} h_j] + b)`` on the star: (B, d), (B, i_max, d) in and out."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * d_in, d_out)

    def forward(self, centre: Tensor, leaves: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
        w = real.to(leaves.dtype).unsqueeze(-1)  # (B, i_max, 1)
        mean = (leaves * w).sum(1) / w.sum(1).clamp(min=1)  # 0 for a gene with no pCRE
        new_centre = torch.relu(self.lin(torch.cat([centre, mean], -1)))
        new_leaves = torch.relu(self.lin(torch.cat([leaves, centre.unsqueeze(1).expand_as(leaves)], -1))) * w
        return new_centre, new_leaves


class GCMERGE(nn.Module):
    """Two SAGEConvCat layers and an MLP read at the promoter node; ``n_out`` 2 (logits) or 1 (value)."""

    def __init__(self, n_feats: int = 7, n_out: int = 2, hidden: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = SAGEConvCat(n_feats, hidden)
        self.conv2 = SAGEConvCat(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                  nn.Linear(hidden, n_out))

    def forward(self, promoter_feats: dict[int, Tensor], pcre_feats: dict[int, Tensor],
                pcre_bins: dict[int, Tensor], n_pcres: Tensor, **_: object) -> Tensor:
        """Promoter and pCRE features -> (B, n_out) at node 0."""
        centre, leaves, real = node_features(promoter_feats, pcre_feats, pcre_bins, n_pcres)
        centre, leaves = self.conv1(centre, leaves, real)
        centre, _ = self.conv2(centre, leaves, real)
        return self.head(self.dropout(centre))
