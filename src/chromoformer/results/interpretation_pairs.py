"""The differential interpretation folder: :func:`interpret_pair` (``chromoformer interpret --meta-b --npy-dir-b``).

Same files as :mod:`chromoformer.results.interpretation`, read back by the same reader, with the pair model's
predicted log2 fold change as the score: ``perturbation.tsv`` (targets name the cell: ``B:H3K4me3``,
``A:pcre0``), ``attributions.npz`` (``A_promoter_<b>``, ``B_pcre_<b>``, ...), ``difference.tsv`` (per gene,
cell, region and mark: the attribution summed over bins and bin sizes) and ``difference_<gene>.png``;
``interpret.json`` records ``task: diff``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chromoformer.errors import UsageError
from chromoformer.files.io import atomic_write, not_an_input, write_table, write_text
from chromoformer.files.layouts import InterpretationFiles
from chromoformer.results.interpretation import choose_genes


def interpret_pair(meta_a: str | Path, signal_a: str | Path, meta_b: str | Path, signal_b: str | Path,
                   checkpoint: str | Path, out: str | Path, *, genes: Sequence[str] | None = None,
                   ig_steps: int = 0, score_delta: float = 1.0) -> InterpretationFiles:
    """Explain a differential checkpoint's predicted fold change for ``genes`` (default: the first 8 shared
    genes) by each cell's marks and pCREs; writes the folder ``out`` (see the module docstring).

    ``ig_steps``: 0 = gradient x input, > 0 = integrated gradients from zero signal in both cells;
    ``score_delta``: the interaction-score shift of the perturbation table."""
    import torch

    from chromoformer.data.pairs import PairedDataset, open_pair_sources, read_pairs
    from chromoformer.engine.checkpoint import load_model
    from chromoformer.inference.interpret_pairs import difference_summary, pair_attributions, pair_perturbation_table
    from chromoformer.results import plots

    if ig_steps < 0:
        raise UsageError(f"--ig-steps must be >= 0, got {ig_steps}")
    if not math.isfinite(score_delta):
        raise UsageError(f"--score-delta must be a finite number, got {score_delta}")
    not_an_input(out, [meta_a, meta_b, checkpoint], folders=[signal_a, signal_b])
    lm = load_model(checkpoint)
    if lm.spec.task != "diff":
        raise UsageError(f"{checkpoint}: a {lm.spec.task} ({lm.arch}) checkpoint predicts one cell; drop "
                         "--meta-b/--npy-dir-b, or give a --task diff checkpoint")
    spec, marks = lm.spec, lm.marks
    pairs = read_pairs(spec, meta_a, meta_b, require_split=False, require_expression=False)
    chosen = choose_genes(pairs, genes, meta_a, key=lambda p: p[0].gene_id)
    src_a, src_b = open_pair_sources(spec, signal_a, signal_b, None, build=False)
    ds = PairedDataset(chosen, src_a, src_b, spec.config, spec.binsizes)
    ds.validate()
    pair = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(chosen))))
    files = InterpretationFiles(Path(out))
    files.dir.mkdir(parents=True, exist_ok=True)
    write_table(pair_perturbation_table(lm.model, pair, score_delta, marks), files.perturbation, sep="\t",
                float_format="%.6g")
    attr = pair_attributions(lm.model, pair, ig_steps)
    arrays = {f"{cell.upper()}_{part}_{b}": a.detach().numpy()
              for cell, per in attr.items() for part, d in per.items() for b, a in d.items()}
    atomic_write(files.attributions, lambda f: np.savez_compressed(f, gene_id=np.array(pair["gene_id"]), **arrays))
    summary = difference_summary(attr, pair["gene_id"], pair["a"]["n_pcres"], marks)
    write_table(summary, files.difference, sep="\t", float_format="%.6g")
    c = spec.config
    write_text(files.record, json.dumps({
        "checkpoint": str(lm.path), "task": "diff", "cells": ["A", "B"], "marks": list(marks),
        "binsizes": list(lm.binsizes), "w_prom": c.w_prom, "w_max": c.w_max, "i_max": c.i_max,
        "genes": [p[0].gene_id for p in chosen], "ig_steps": ig_steps,
        "method": "integrated-gradients" if ig_steps else "gradient-x-input",
        "score": "predicted log2 fold change (B vs A)"}, indent=1) + "\n")
    for p in chosen:
        plots.difference_bars(summary, p[0].gene_id, files.plot("difference", p[0].gene_id))
    return files
