"""Interpretation of the differential task: which marks and which pCREs, in which cell, explain the *difference*.

Everything explains the pair model's predicted log2 fold change ``lfc`` (B's expression over A's). Each cell's
inputs are edited or differentiated on their own, so a row says what that cell's mark or pCRE contributes to
the fold change: zeroing H3K4me3 at cell B's promoter lowers a gene's predicted ``lfc`` where B's promoter is
active; in cell A it raises it. Edits are :mod:`chromoformer.inference.attribution`'s, applied to one cell's
batch (``pair["a"]`` or ``pair["b"]``).

The differential interpretation folder: :func:`interpret_pair` (``chromoformer interpret --meta-b --npy-dir-b``).

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
import pandas as pd
import torch
from torch import Tensor, nn

from chromoformer.config import default_marks
from chromoformer.engine.batches import forward
from chromoformer.errors import UsageError
from chromoformer.files.atomic import atomic_write, write_table, write_text
from chromoformer.files.checked import not_an_input
from chromoformer.files.layouts import InterpretationFiles
from chromoformer.files.locking import locked_folder
from chromoformer.inference.attribution import check_interpretation_size, drop_pcre, shift_score, zero_mark
from chromoformer.results.interpretation import choose_genes

CELLS = {"a": "A", "b": "B"}
FEATS = ("promoter_feats", "pcre_feats")


def lfc_score(model: nn.Module, pair: dict) -> Tensor:
    """(B,) the predicted log2 fold change of a pair batch."""
    return forward(model, pair)["lfc"][:, 0]


def _with(pair: dict, cell: str, batch: dict) -> dict:
    return {**pair, cell: batch}


@torch.no_grad()
def pair_perturbation_table(model: nn.Module, pair: dict, score_delta: float = 1.0,
                            marks: Sequence[str] | None = None) -> pd.DataFrame:
    """Change of the predicted ``lfc`` by every single edit of one cell's inputs, per gene.

    Columns: gene_id, perturbation (drop_pcre, score_shift, zero_mark_pcre, zero_mark_promoter), target (the
    cell then the element: ``B:pcre0``, ``A:H3K4me3``, ``B:pcre1:H3K27ac``), score, perturbed, delta.
    """
    n_feats = next(iter(pair["a"]["promoter_feats"].values())).shape[-1]
    marks = tuple(marks) if marks is not None else default_marks(n_feats)
    if len(marks) != n_feats:
        raise UsageError(f"{len(marks)} mark names ({', '.join(marks)}) for {n_feats} signal columns")
    model.eval()
    base = lfc_score(model, pair)
    rows = []

    def add(kind: str, target: str, new: Tensor, valid: Tensor | None = None) -> None:
        for i, gid in enumerate(pair["gene_id"]):
            if valid is None or bool(valid[i]):
                rows.append({"gene_id": gid, "perturbation": kind, "target": target, "score": float(base[i]),
                             "perturbed": float(new[i]), "delta": float(new[i] - base[i])})

    for cell, name in CELLS.items():
        batch = pair[cell]
        n = batch["n_pcres"]
        for j in range(batch["interaction_freq"].shape[1]):
            if not (n > j).any():
                break
            add("drop_pcre", f"{name}:pcre{j}", lfc_score(model, _with(pair, cell, drop_pcre(batch, j))), n > j)
            add("score_shift", f"{name}:pcre{j}",
                lfc_score(model, _with(pair, cell, shift_score(batch, j, score_delta))), n > j)
            for m, mark in enumerate(marks):
                add("zero_mark_pcre", f"{name}:pcre{j}:{mark}",
                    lfc_score(model, _with(pair, cell, zero_mark(batch, m, "pcre", j))), n > j)
        for m, mark in enumerate(marks):
            add("zero_mark_promoter", f"{name}:{mark}",
                lfc_score(model, _with(pair, cell, zero_mark(batch, m, "promoter"))))
    return pd.DataFrame(rows, columns=["gene_id", "perturbation", "target", "score", "perturbed", "delta"])


def pair_attributions(model: nn.Module, pair: dict, steps: int = 0) -> dict[str, dict[str, dict[int, Tensor]]]:
    """Gradient x input (``steps=0``) or integrated gradients from zero signal in both cells (``steps>0``,
    midpoint rule) of the predicted ``lfc``: ``{"a"|"b": {"promoter": {b: (B, nb, F)}, "pcre": {b: (B, i_max,
    nb, F)}}}``. Inputs a model never reads (DeepDiff's pCREs) get 0."""
    if steps < 0:
        raise UsageError(f"integrated-gradients steps must be >= 0, got {steps}")
    model.eval()
    inputs = {c: {k: {b: t.detach() for b, t in pair[c][k].items()} for k in FEATS} for c in CELLS}
    total = {c: {k: {b: torch.zeros_like(t) for b, t in inputs[c][k].items()} for k in FEATS} for c in CELLS}
    alphas = [1.0] if steps == 0 else [(i + 0.5) / steps for i in range(steps)]
    for alpha in alphas:
        scaled = {c: {k: {b: (t * alpha).requires_grad_(True) for b, t in inputs[c][k].items()} for k in FEATS}
                  for c in CELLS}
        lfc_score(model, {**pair, **{c: {**pair[c], **scaled[c]} for c in CELLS}}).sum().backward()
        for c in CELLS:
            for k in FEATS:
                for b, t in scaled[c][k].items():
                    if t.grad is not None:
                        total[c][k][b] += t.grad / len(alphas)
    return {c: {part: {b: total[c][k][b] * inputs[c][k][b] for b in inputs[c][k]}
                for part, k in (("promoter", "promoter_feats"), ("pcre", "pcre_feats"))} for c in CELLS}


def difference_summary(attr: dict[str, dict[str, dict[int, Tensor]]], gene_ids: Sequence[str],
                       n_pcres: Tensor, marks: Sequence[str]) -> pd.DataFrame:
    """Per gene, cell, region (``promoter`` or ``pcre<j>``) and mark: the attribution summed over bins and bin
    sizes (columns gene_id, cell, region, mark, attribution). One gene's rows add up to its whole gradient x
    input (for integrated gradients: ``lfc(x) - lfc(0)``, completeness)."""
    rows = []
    for c, name in CELLS.items():
        prom = sum(t.sum(1) for t in attr[c]["promoter"].values())  # (B, F)
        pcre = sum(t.sum(2) for t in attr[c]["pcre"].values())  # (B, i_max, F)
        for i, gid in enumerate(gene_ids):
            for m, mark in enumerate(marks):
                rows.append({"gene_id": gid, "cell": name, "region": "promoter", "mark": mark,
                             "attribution": float(prom[i, m])})
                rows += [{"gene_id": gid, "cell": name, "region": f"pcre{j}", "mark": mark,
                          "attribution": float(pcre[i, j, m])} for j in range(int(n_pcres[i]))]
    return pd.DataFrame(rows, columns=["gene_id", "cell", "region", "mark", "attribution"])


def interpret_pair(meta_a: str | Path, signal_a: str | Path, meta_b: str | Path, signal_b: str | Path,
                   checkpoint: str | Path, out: str | Path, *, genes: Sequence[str] | None = None,
                   ig_steps: int = 0, score_delta: float = 1.0) -> InterpretationFiles:
    """Explain a differential checkpoint's predicted fold change for ``genes`` (default: the first 8 shared
    genes) by each cell's marks and pCREs; writes the folder ``out`` (see the module docstring), holding its lock.

    ``ig_steps``: 0 = gradient x input, > 0 = integrated gradients from zero signal in both cells;
    ``score_delta``: the interaction-score shift of the perturbation table."""
    not_an_input(out, [meta_a, meta_b, checkpoint], folders=[signal_a, signal_b])
    with locked_folder(InterpretationFiles(Path(out)).dir, f"interpretation folder {out}"):
        return _interpret_pair(meta_a, signal_a, meta_b, signal_b, checkpoint, out, genes=genes, ig_steps=ig_steps,
                               score_delta=score_delta)


def _interpret_pair(meta_a: str | Path, signal_a: str | Path, meta_b: str | Path, signal_b: str | Path,
                   checkpoint: str | Path, out: str | Path, *, genes: Sequence[str] | None = None,
                   ig_steps: int = 0, score_delta: float = 1.0) -> InterpretationFiles:
    """:func:`interpret_pair` without the lock."""
    import torch

    from chromoformer.data.store import file_sha256
    from chromoformer.diff.pairing import PairedDataset, open_pair_sources, read_pairs
    from chromoformer.engine.loading import load_model
    from chromoformer.results import plots

    check_interpretation_size(ig_steps, len(genes or ()))
    if not math.isfinite(score_delta):
        raise UsageError(f"--score-delta must be a finite number, got {score_delta}")
    lm = load_model(checkpoint)
    lm.spec.expect_cells(2, checkpoint)
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
        "checkpoint": str(lm.path), "checkpoint_sha256": file_sha256(lm.path), "task": "diff",
        "cells": ["A", "B"], "marks": list(marks),
        "binsizes": list(lm.binsizes), "w_prom": c.w_prom, "w_max": c.w_max, "i_max": c.i_max,
        "genes": [p[0].gene_id for p in chosen], "ig_steps": ig_steps,
        "method": "integrated-gradients" if ig_steps else "gradient-x-input",
        "score": "predicted log2 fold change (B vs A)"}, indent=1) + "\n")
    for p in chosen:
        plots.difference_bars(summary, p[0].gene_id, files.plot("difference", p[0].gene_id))
    return files
