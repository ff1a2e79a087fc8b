"""Chromoformer-diff: one Chromoformer encoder shared by two cell types (Siamese), for the fold change.

Each cell's gene goes through the same :class:`ChromoformerRegressor`; its multi-scale embedding
``e`` (B, 3 * d_emb) feeds two heads:

* the regressor's own ``fc_head``, the cell's log2(RPKM + 1): the single-cell model comes with it
  (``model.encoder`` is a plain regressor, loadable and usable alone);
* ``diff_head`` on ``[e_a, e_b, e_b - e_a]``: Linear(3 * 3 * d_emb -> d_head), ReLU,
  Linear(d_head -> 1), the log fold change log2((RPKM_B + 1) / (RPKM_A + 1)).

Swapping the cells changes the inputs of ``diff_head`` but nothing is forced to be antisymmetric;
the training pairs decide.
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
        """Two cells' batches of the same genes -> ``lfc``, ``expr_a``, ``expr_b`` (B, 1)."""
        ea, eb = self.encoder.embedding(**a), self.encoder.embedding(**b)
        return {"lfc": self.diff_head(torch.cat([ea, eb, eb - ea], -1)),
                "expr_a": self.encoder.fc_head(ea), "expr_b": self.encoder.fc_head(eb)}
