"""Two cell types, the same genes: the differential task's pairs, target and items.

Format (choice written down): a pair is two ordinary inputs, one per cell, each its own metadata csv
(with ``expression``) and signal (npy directory or store), exactly what ``chromoformer preprocess``
makes for one cell type. Genes are matched by ``gene_id``; their position must agree, their pCREs and
contact scores may differ (contacts are cell-specific). The target is DeepDiff's fold change
``lfc = log2((RPKM_B + 1) / (RPKM_A + 1))`` **on RPKM**, the metadata's ``expression`` column, where DeepDiff's
code takes gene read counts (``log2((e_B + 1) / (e_A + 1))`` of counts; Chromoformer's inputs carry RPKM, see
docs/models.md), and the call is up (+1), down (-1) or unchanged (0) at
``|lfc| >= threshold`` (default 1: two-fold).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from chromoformer.config import DEFAULT_BINSIZES, ChromoformerConfig
from chromoformer.data.dataset import ChromoformerDataset
from chromoformer.data.marks import BY_NAME, select_marks
from chromoformer.data.metadata import Gene, read_metadata
from chromoformer.data.sources import RegionSource, default_store_path, open_source, signal_marks
from chromoformer.errors import DataError, MetadataError
from chromoformer.metrics import DIFF_THRESHOLD, diff_call  # noqa: F401  (the call's one definition)
from chromoformer.spec import RunSpec


def fold_change(expr_a: np.ndarray | float, expr_b: np.ndarray | float) -> np.ndarray:
    """log2((RPKM_B + 1) / (RPKM_A + 1)): RPKM, not DeepDiff's read counts (the module docstring)."""
    return np.log2(np.asarray(expr_b, dtype=np.float64) + 1) - np.log2(np.asarray(expr_a, dtype=np.float64) + 1)


def pair_genes(genes_a: Sequence[Gene], genes_b: Sequence[Gene], *, file_a: str = "cell A metadata",
               file_b: str = "cell B metadata", expression: bool = True) -> list[tuple[Gene, Gene]]:
    """The genes of A with their rows in B, in A's order; every gene must be in both, at one position, in one
    split, and (``expression``) have an expression in both.

    Raises :class:`MetadataError` naming the file and the first gene that breaks a rule.
    """
    by_b = {g.gene_id: g for g in genes_b}
    pairs = []
    for ga in genes_a:
        gb = by_b.pop(ga.gene_id, None)
        if gb is None:
            raise MetadataError(f"{file_b}: gene {ga.gene_id!r} (line {ga.line} of {file_a}) is missing: both cells "
                                "need the same genes")
        if (ga.chrom, ga.tss, ga.strand) != (gb.chrom, gb.tss, gb.strand):
            raise MetadataError(f"{file_b}:{gb.line}: gene {ga.gene_id!r} is at {gb.chrom}:{gb.tss} ({gb.strand}) but "
                                f"at {ga.chrom}:{ga.tss} ({ga.strand}) in {file_a}: the cells disagree on the "
                                "annotation")
        if ga.split != gb.split:
            raise MetadataError(f"{file_b}:{gb.line}: gene {ga.gene_id!r} is in split {gb.split} but in split "
                                f"{ga.split} in {file_a}: a pair's folds must agree")
        for g, f in ((ga, file_a), (gb, file_b)) if expression else ():
            if g.expression is None:
                raise MetadataError(f"{f}:{g.line}: gene {g.gene_id!r} has no expression: the fold change needs it")
        pairs.append((ga, gb))
    if by_b:
        extra = next(iter(by_b.values()))
        raise MetadataError(f"{file_a}: gene {extra.gene_id!r} (line {extra.line} of {file_b}) is missing: both cells "
                            "need the same genes")
    return pairs


def check_same_marks(source_a: RegionSource, source_b: RegionSource, name_a: str = "A", name_b: str = "B") -> None:
    """Both cells' signals must hold the same marks, in the same order."""
    ma, mb = getattr(source_a, "marks", None), getattr(source_b, "marks", None)
    if source_a.n_feats != source_b.n_feats or (ma is not None and mb is not None and tuple(ma) != tuple(mb)):
        raise DataError(f"the two cells' signals hold different marks: {name_a} has "
                        f"{', '.join(ma) if ma else f'{source_a.n_feats} unnamed'}, {name_b} has "
                        f"{', '.join(mb) if mb else f'{source_b.n_feats} unnamed'}")


def read_pairs(spec: RunSpec, meta_a: str | Path, meta_b: str | Path, *, require_split: bool = True,
               require_expression: bool = True) -> list[tuple[Gene, Gene]]:
    """Both cells' metadata, paired by gene id (:func:`pair_genes`); training needs ``split`` and
    ``expression``, prediction neither."""
    need = tuple(c for c, on in (("split", require_split), ("expression", require_expression)) if on)
    genes_a = read_metadata(meta_a, i_max=spec.config.i_max, w_max=spec.config.w_max, require=need)
    genes_b = read_metadata(meta_b, i_max=spec.config.i_max, w_max=spec.config.w_max, require=need)
    return pair_genes(genes_a, genes_b, file_a=str(meta_a), file_b=str(meta_b), expression=require_expression)


def open_pair_sources(spec: RunSpec, signal_a: str | Path, signal_b: str | Path, cache_dir: Path | None, *,
                      build: bool = True, row_marks: Sequence[str] | None = None
                      ) -> tuple[RegionSource, RegionSource]:
    """Each cell's signal, read through a cached binned store under ``cache_dir`` when it is an npy directory,
    checked to hold the same marks and narrowed to ``spec.marks`` (``row_marks``: the signal's marks, an npy
    directory's rows, when the model reads some of them: picked by name)."""
    sources, mark_map = [], (None if row_marks is None else BY_NAME)
    rows = tuple(row_marks) if row_marks is not None else spec.marks
    for signal in (signal_a, signal_b):
        store = None
        if cache_dir is not None and build and signal_marks(signal) is None:
            store = default_store_path(signal, cache_dir, base=spec.base, n_feats=len(rows), marks=rows)
        sources.append(open_source(signal, store=store, build=build, n_feats=len(rows), base=spec.base, marks=rows))
    check_same_marks(sources[0], sources[1], f"cell A ({signal_a})", f"cell B ({signal_b})")
    return select_marks(sources[0], spec.marks, mark_map), select_marks(sources[1], spec.marks, mark_map)


class PairedDataset(Dataset):
    """Items ``{"a": item, "b": item, "lfc", "expr_a", "expr_b", "gene_id"}`` for paired genes, each cell's
    item as :class:`ChromoformerDataset` makes it; ``expr_*`` = log2(RPKM + 1)."""

    def __init__(self, pairs: Sequence[tuple[Gene, Gene]], source_a: RegionSource, source_b: RegionSource,
                 config: ChromoformerConfig, binsizes: Sequence[int] = DEFAULT_BINSIZES) -> None:
        check_same_marks(source_a, source_b)
        self.pairs = list(pairs)
        self.a = ChromoformerDataset([p[0] for p in self.pairs], source_a, config, binsizes, "reg")
        self.b = ChromoformerDataset([p[1] for p in self.pairs], source_b, config, binsizes, "reg")

    @property
    def genes(self) -> list[Gene]:
        """Cell A's rows of the genes (their ids and positions are B's too)."""
        return self.a.genes

    @property
    def source(self) -> RegionSource:
        """Cell A's signal (where a run records its data's provenance from)."""
        return self.a.source

    @property
    def presence(self) -> torch.Tensor | None:
        return self.a.presence

    @presence.setter
    def presence(self, value: torch.Tensor | None) -> None:  # mark dropout hides the same marks in both cells
        self.a.presence = self.b.presence = value

    def validate(self) -> None:
        self.a.validate()
        self.b.validate()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        a, b = self.a[i], self.b[i]
        ga, gb = self.pairs[i]
        return {"a": a, "b": b, "gene_id": ga.gene_id, "expr_a": a["label"], "expr_b": b["label"],
                "lfc": torch.tensor(fold_change(ga.expression, gb.expression), dtype=torch.float32)}
