"""The cross-validation folds (docs/original.md §4): the one definition of which chromosomes form which split, and which
split each fold holds out.

Split 1 = chr1, 5, 6, 8, 14, Y; 2 = chr7, 10, 11, 12, 15, 21; 3 = chr2, 3, 4, 16, 18, 20;
4 = chr9, 13, 17, 19, 22, X. Fold 1, 2, 3 hold out split 1, 2, 3 and fold 4 (or 0, the original's spelling)
holds out split 4.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chromoformer.errors import MetadataError, UsageError

if TYPE_CHECKING:
    from chromoformer.data.metadata import Gene

SPLITS: dict[int, tuple[str, ...]] = {
    1: ("chr1", "chr6", "chr5", "chr8", "chr14", "chrY"),
    2: ("chr7", "chr10", "chr11", "chr12", "chr15", "chr21"),
    3: ("chr2", "chr3", "chr4", "chr16", "chr18", "chr20"),
    4: ("chr9", "chr13", "chr17", "chr19", "chr22", "chrX"),
}
FOLDS = (1, 2, 3, 4)  # the four folds a full cross-validation trains (fold 0 is fold 4's other name)


def chrom_split(chrom: str, splits: dict[int, tuple[str, ...]] = SPLITS) -> int | None:
    """CV split of a chromosome ('chr1' or '1' naming); None for chromosomes in no split."""
    name = chrom if chrom.startswith("chr") else f"chr{chrom}"
    return next((k for k, v in splits.items() if name in v), None)


def chroms_of_split(split: int, n: int | None = None) -> tuple[str, ...]:
    """The first ``n`` (all when None) chromosomes of ``split``, in the order :data:`SPLITS` lists them."""
    return SPLITS[split][:n]


def held_out_split(fold: int) -> int:
    """The original's mapping: fold 1..3 validate on split 1..3; fold 4 or 0 on split 4."""
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold <= 4:
        raise UsageError(f"--fold must be 0..4, got {fold!r}")
    return (fold + 3) % 4 + 1


def split_genes(genes: Sequence[Gene], fold: int) -> tuple[list[Gene], list[Gene]]:
    """(train, validation) genes for a fold; every gene needs a ``split`` in 1..4."""
    val_split = held_out_split(fold)
    for g in genes:
        if g.split not in (1, 2, 3, 4):
            raise MetadataError(f"{g.where}: split must be 1..4 for the 4 chromosome folds, got {g.split}")
    return [g for g in genes if g.split != val_split], [g for g in genes if g.split == val_split]


def split_fraction(genes: Sequence[Gene], fraction: float, seed: int) -> tuple[list[Gene], list[Gene]]:
    """(train, validation): a seeded random ``fraction`` of the genes held out, whatever their split.

    For metadata whose genes lie in one chromosome split (the original's 100 demo genes are all in split 1),
    where no fold has genes on both sides. Genes of one chromosome then sit on both sides, so the held-out
    figure is optimistic next to a chromosome fold's. The same genes and seed give the same split."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise UsageError(f"--val-fraction must be between 0 and 1, got {fraction!r}")
    order = list(range(len(genes)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, round(fraction * len(genes)))])
    return [g for i, g in enumerate(genes) if i not in held], [g for i, g in enumerate(genes) if i in held]


def describe_empty_fold(genes: Sequence[Gene], fold: int, where: str) -> str:
    """Why ``fold`` leaves one side empty, naming the splits the genes lie in, and the ways out."""
    counts = Counter(g.split for g in genes)
    present = ", ".join(f"{s} ({n} genes)" for s, n in sorted(counts.items()))
    train, val = split_genes(genes, fold)
    return (f"{where}: fold {fold} holds out split {held_out_split(fold)} and leaves {len(train)} training and "
            f"{len(val)} validation genes: the metadata's genes lie in split {present}. Choose a fold whose split "
            "has genes while others do too (--fold K holds out split K; 4 or 0 split 4), or hold out a random "
            "fraction of the genes with --val-fraction 0.25 (optimistic: one chromosome on both sides)")
