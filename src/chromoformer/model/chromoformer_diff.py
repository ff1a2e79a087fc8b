"""Chromoformer-diff: one Chromoformer encoder shared by two cell types (Siamese), for the fold change.

Each cell's gene goes through the same :class:`ChromoformerRegressor`; its multi-scale embedding
``e`` (B, 3 * d_emb) feeds two heads:

* the regressor's own ``fc_head``, applied to each cell: ``expr_a`` and ``expr_b``, each cell's predicted
  log2(RPKM + 1) (one head for both cells; ``model.encoder`` is a plain regressor, loadable and usable alone);
* ``diff_head`` h = Linear(3 * 3 * d_emb -> d_head), ReLU, Linear(d_head -> 1) on ``[e_x, e_y, e_y - e_x]``,
  made antisymmetric: ``lfc = (h(e_a, e_b) - h(e_b, e_a)) / 2``, the log fold change
  log2((RPKM_B + 1) / (RPKM_A + 1)), what the model is trained and evaluated on.

By construction (not by training), identical cells give ``lfc`` = 0 exactly and swapping A and B negates it
exactly. ``expr_b - expr_a`` is a second, auxiliary estimate of the fold change and need not equal ``lfc``:
the up/down call and every differential metric use ``lfc``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from chromoformer.config import DEFAULT_BINSIZES, ChromoformerConfig, ModelConfig, model_config
from chromoformer.model.chromoformer import ChromoformerRegressor


class ChromoformerDiff(nn.Module):
    """The shared encoder (a :class:`ChromoformerRegressor`) and the fold-change head."""

    def __init__(self, config: ChromoformerConfig | ModelConfig | None = None,
                 binsizes: tuple[int, ...] = DEFAULT_BINSIZES) -> None:
        super().__init__()
        config = model_config(config)
        self.encoder = ChromoformerRegressor(config, binsizes)
        d = len(self.encoder.binsizes) * config.d_emb
        self.diff_head = nn.Sequential(nn.Linear(3 * d, config.d_head), nn.ReLU(), nn.Linear(config.d_head, 1))

    def forward(self, a: dict, b: dict) -> dict[str, Tensor]:
        """Two cells' batches of the same genes -> ``lfc``, ``expr_a``, ``expr_b`` (B, 1) each."""
        ea, eb = self.encoder.embedding(**a), self.encoder.embedding(**b)  # (B, 3 * d_emb) each
        forward = self.diff_head(torch.cat([ea, eb, eb - ea], -1))
        backward = self.diff_head(torch.cat([eb, ea, ea - eb], -1))
        return {"lfc": (forward - backward) / 2, "expr_a": self.encoder.fc_head(ea), "expr_b": self.encoder.fc_head(eb)}
