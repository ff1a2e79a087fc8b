"""Training steps are bit-reproducible whatever the CPU load.

The backward of advanced indexing (``x[idx]``, autograd node ``IndexBackward0``) is
``index_put_(accumulate=True)``, which PyTorch runs with parallel atomic float adds on
CPU for large tensors: the summation order, and so the last bits of the gradients,
then depend on thread timing (seen as ~6e-8 weight differences between identical runs
on a loaded 2-core machine). The model must not put such a node on a gradient path.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from chromoformer.config import DIFF_ARCHS, SINGLE_ARCHS, ChromoformerConfig
from chromoformer.data import ChromoformerDataset, read_metadata
from chromoformer.data.sources import NpyDirSource
from chromoformer.model import build_model

NONDETERMINISTIC_BACKWARD = {"IndexBackward0", "ScatterAddBackward0", "IndexAddBackward0"}


def _graph_nodes(t: torch.Tensor) -> set[str]:
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        stack.extend(f for f, _ in fn.next_functions)
    return names


def test_no_accumulating_index_on_the_gradient_path(synthetic):
    meta, npy = synthetic
    cfg = ChromoformerConfig()
    genes = read_metadata(meta)
    assert sum(len(g.pcres) for g in genes) > len(genes)  # several pCREs share an owner gene
    batch = next(iter(DataLoader(ChromoformerDataset(genes, NpyDirSource(npy), cfg), batch_size=len(genes))))
    n = len(genes) // 2

    def cell(part: list) -> dict:
        return next(iter(DataLoader(ChromoformerDataset(part, NpyDirSource(npy), cfg), batch_size=n)))

    half, other = cell(genes[:n]), cell(genes[n : 2 * n])  # two cells' batches for the pair models
    for arch in (*SINGLE_ARCHS, *DIFF_ARCHS):
        torch.manual_seed(0)
        if arch in DIFF_ARCHS:  # two cells' batches of the same size
            out = sum(v.sum() for v in build_model("diff", cfg, arch=arch)(half, other).values())
        else:
            out = build_model("clf", cfg, arch=arch)(**batch)
        bad = _graph_nodes(out.sum()) & NONDETERMINISTIC_BACKWARD
        assert not bad, f"{arch}: backward uses {bad} (parallel atomic adds on CPU: not bit-reproducible)"
