"""Train one cross-validation fold of the differential task: two cells' genes -> their log2 fold change.

:func:`train_pair_fold` from files (each cell's metadata csv and signal, as ``chromoformer preprocess`` makes
them for one cell type), :func:`fit_pair_fold` from paired genes and two signal sources. The run directory, its
crash-consistent commit and ``--resume`` are those of a single-cell run (:mod:`chromoformer.training.fit`);
``val_predictions.csv`` holds the observed (``label``) and predicted (``score``) fold change and each cell's
predicted log2(RPKM + 1). Folds are the chromosome folds of cell A's ``split`` column (B's must agree).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from chromoformer.data.folds import FOLDS, held_out_split
from chromoformer.data.marks import select_marks
from chromoformer.data.metadata import Gene
from chromoformer.data.sources import RegionSource
from chromoformer.diff.pairing import PairedDataset, check_same_marks, open_pair_sources, read_pairs
from chromoformer.engine.runtime import DEFAULT_RUNTIME, Runtime
from chromoformer.errors import MetadataError, UsageError
from chromoformer.files.checked import not_an_input
from chromoformer.spec import RunSpec
from chromoformer.training.compare import DIFF_MODELS, compare_models
from chromoformer.training.run_directory import RunDirectory, check_run_output
from chromoformer.training.trainer import Trainer

log = logging.getLogger(__name__)
Pair = tuple[Gene, Gene]


def split_pairs(pairs: Sequence[Pair], fold: int) -> tuple[list[Pair], list[Pair]]:
    """(train, validation) pairs of a fold, by the genes' split (see :func:`chromoformer.data.folds.split_genes`)."""
    val_split = held_out_split(fold)
    for ga, _ in pairs:
        if ga.split not in (1, 2, 3, 4):
            raise MetadataError(f"{ga.where}: split must be 1..4 for the 4 chromosome folds, got {ga.split}")
    return [p for p in pairs if p[0].split != val_split], [p for p in pairs if p[0].split == val_split]


def train_pair_fold(spec: RunSpec, meta_a: str | Path, signal_a: str | Path, meta_b: str | Path,
                    signal_b: str | Path, fold: int, output: str | Path, *, cache_store: bool = True,
                    store_root: str | Path | None = None, row_marks: Sequence[str] | None = None,
                    **fit: object) -> list[dict]:
    """Train one fold of ``spec`` (task ``diff``) on cell A and cell B's files (``row_marks``: see
    :func:`~chromoformer.diff.pairing.open_pair_sources`); keywords go to :func:`fit_pair_fold`. Returns the
    per-epoch history."""
    held_out_split(fold)
    spec.expect_cells(2, "train_pair_fold")
    not_an_input(output, [meta_a, meta_b], folders=[signal_a, signal_b])
    paths = check_run_output(Path(output), bool(fit.get("resume")))
    train, val = split_pairs(read_pairs(spec, meta_a, meta_b), fold)
    if not train or not val:
        raise MetadataError(f"{meta_a}: fold {fold} leaves {len(train)} training and {len(val)} validation genes; "
                            "both must be non-empty")
    root = store_root or paths.run_dir.parent
    src_a, src_b = open_pair_sources(spec, signal_a, signal_b, root if cache_store else None, row_marks=row_marks)
    return fit_pair_fold(spec, train, val, src_a, src_b, output, fold=fold, **fit)  # type: ignore[arg-type]


def fit_pair_fold(spec: RunSpec, train_pairs: Sequence[Pair], val_pairs: Sequence[Pair], source_a: RegionSource,
                  source_b: RegionSource, output: str | Path, *, fold: int = 0, resume: bool = False,
                  runtime: Runtime = DEFAULT_RUNTIME, save_optimizer: str = "all",
                  mark_map: Mapping[str, str] | None = None, init_from: str | Path | None = None) -> list[dict]:
    """Train ``spec`` (task ``diff``: ``chromoformer-diff`` or ``deepdiff``) on paired genes; the keywords are
    :func:`chromoformer.training.fit.fit_fold`'s."""
    spec.expect_cells(2, "fit_pair_fold")
    if not train_pairs or not val_pairs:
        raise UsageError(f"fit_pair_fold: {len(train_pairs)} training and {len(val_pairs)} validation genes; both "
                         "must be non-empty")
    check_same_marks(source_a, source_b)
    run_dir = RunDirectory(output, resume=resume, save_optimizer=save_optimizer)
    src_a, src_b = select_marks(source_a, spec.marks, mark_map), select_marks(source_b, spec.marks, mark_map)

    def datasets() -> tuple[PairedDataset, PairedDataset]:
        return (PairedDataset(train_pairs, src_a, src_b, spec.config, spec.binsizes),
                PairedDataset(val_pairs, src_a, src_b, spec.config, spec.binsizes))

    return Trainer.train(spec, datasets, run_dir, fold=fold, runtime=runtime,
                         what=f"{type(source_a).__name__} x 2 (cells A and B)", init_from=init_from)


def compare_pairs(meta_a: str | Path, signal_a: str | Path, meta_b: str | Path, signal_b: str | Path,
                  out: str | Path, *, models: Sequence[str] = DIFF_MODELS, folds: Sequence[int] = FOLDS,
                  spec: RunSpec, **fit: object) -> pd.DataFrame:
    """:func:`chromoformer.training.compare.compare` of the differential task: each of ``models`` trained on
    cell A and cell B's files on ``folds``; the table's metrics are the fold change's Pearson r, Spearman rho
    and up/down AUROC."""
    spec.expect_cells(2, "compare_pairs")
    return compare_models(train_pair_fold, (meta_a, signal_a, meta_b, signal_b), out, models=models, folds=folds,
                          spec=spec, **fit)
