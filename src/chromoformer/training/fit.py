"""Train one cross-validation fold (docs/original.md §3.5, §4): :func:`train_fold` from files, :func:`fit_fold`
from genes and a signal source. Each writes a run directory (``chromoformer.files.layouts.RunPaths``) and can resume
it bit-identically; the command line over them is :mod:`chromoformer.cli.train`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from chromoformer.data import ChromoformerDataset, Gene, read_metadata
from chromoformer.data.folds import describe_empty_fold, held_out_split, split_fraction, split_genes
from chromoformer.data.marks import BY_NAME, select_marks
from chromoformer.data.sources import RegionSource, default_store_path, open_source, signal_marks
from chromoformer.engine import distributed
from chromoformer.engine.runtime import DEFAULT_RUNTIME, Runtime
from chromoformer.errors import MetadataError, UsageError
from chromoformer.files.checked import not_an_input
from chromoformer.spec import RunSpec
from chromoformer.training.run_directory import RunDirectory, check_run_output
from chromoformer.training.trainer import Trainer

log = logging.getLogger(__name__)


def train_fold(spec: RunSpec, meta: str | Path, signal: str | Path, fold: int, output: str | Path, *,
               store: str | Path | None = None, cache_store: bool = True, store_root: str | Path | None = None,
               eid: str | None = None, val_fraction: float | None = None,
               mark_map: Mapping[str, str] | str | None = None, row_marks: Sequence[str] | None = None,
               **fit: object) -> list[dict]:
    """Train one cross-validation fold from files: metadata csv + signal (npy directory or store).

    ``fold`` (0..4) validates on split ``(fold + 3) % 4 + 1`` and trains on the other three.
    An npy directory is read through a binned store built once (``store``, default a cache
    under ``store_root``, default ``output``'s parent; ``cache_store=False`` reads the npy files).
    ``val_fraction`` holds out that seeded random fraction of the genes instead of the fold's split
    (:func:`chromoformer.data.folds.split_fraction`). ``mark_map``:
    see :func:`chromoformer.data.marks.select_marks`. ``row_marks``: the names of the signal's marks (an npy directory's
    rows) when the model reads some of them: ``spec.marks`` are then picked by name (default: the signal's marks
    are the model's). Other keywords go to :func:`fit_fold`.
    Returns the per-epoch history.
    """
    held_out_split(fold)
    spec.expect_cells(1, "train_fold")
    not_an_input(output, [meta], folders=[signal, store])
    paths = check_run_output(Path(output), bool(fit.get("resume")))
    genes = read_metadata(meta, i_max=spec.config.i_max, w_max=spec.config.w_max,
                          require=("split", "expression" if spec.task == "reg" else "label"), eid=eid)
    if val_fraction is not None:
        train_genes, val_genes = split_fraction(genes, val_fraction, spec.config.seed)
    else:
        train_genes, val_genes = split_genes(genes, fold)
    if not train_genes or not val_genes:
        raise MetadataError(describe_empty_fold(genes, fold, str(meta)))
    if spec.task == "clf":
        _warn_one_class(meta, fold, "training", train_genes)
        _warn_one_class(meta, fold, "validation", val_genes)
    runtime = fit.get("runtime", DEFAULT_RUNTIME)
    d, _ = distributed.from_env(runtime.device)  # type: ignore[union-attr]
    rows = tuple(row_marks) if row_marks is not None else spec.marks
    if row_marks is not None:
        mark_map = mark_map or BY_NAME
    if store is None and cache_store and signal_marks(signal) is None:
        store = default_store_path(signal, store_root or paths.run_dir.parent, base=spec.base,
                                   n_feats=len(rows), marks=rows)

    def source() -> RegionSource:
        return open_source(signal, store=store, n_feats=len(rows), base=spec.base, marks=rows)

    opened = d.on_main(source)  # rank 0 builds a missing store; the others then open it
    src = select_marks(opened if d.main else source(), spec.marks, mark_map)
    return fit_fold(spec, train_genes, val_genes, src, output, fold=fold, **fit)  # type: ignore[arg-type]


def _warn_one_class(meta: str | Path, fold: int, which: str, genes: Sequence[Gene]) -> None:
    """A split of one class trains (the original would too) but its AUC is undefined: say so once."""
    labels = {g.label for g in genes}
    if len(labels) < 2:
        log.warning("%s: fold %d: all %d %s genes have label %s: the %s AUC is undefined (NaN); check the labels "
                    "or the split column", meta, fold, len(genes), which, labels.pop(), which)


def fit_fold(spec: RunSpec, train_genes: Sequence[Gene], val_genes: Sequence[Gene], source: RegionSource,
             output: str | Path, *, fold: int = 0, resume: bool = False, runtime: Runtime = DEFAULT_RUNTIME,
             save_optimizer: str = "all", init_from: str | Path | None = None) -> list[dict]:
    """Train ``spec`` on ``train_genes``, validating on ``val_genes`` after every epoch.

    Parameters
    ----------
    source : signal whose marks are ``spec.marks`` (see :func:`chromoformer.data.marks.select_marks`)
    output : run directory (``last.pt``, ``best.pt``, ``metrics.tsv``, ``val_predictions.csv``,
        ``train.log``), or ``NAME.pt`` for the original's one-file layout
    fold : recorded in the checkpoints and log
    resume : continue the run in ``output`` (bit-identical to an uninterrupted run)
    runtime : device, loader workers and threads (:class:`chromoformer.engine.runtime.Runtime`)
    save_optimizer : ``all`` or ``last-only`` (``best.pt`` without optimizer state)
    init_from : a parent checkpoint to start from (fine-tuning; ``spec.parent`` names it, ``spec.freeze`` the
        parts kept as they were): :mod:`chromoformer.training.finetune`

    Returns
    -------
    list of dict
        The per-epoch history, as in ``metrics.tsv``. Logging goes to ``train.log`` for the duration of the
        call only.
    """
    if not train_genes or not val_genes:
        raise UsageError(f"fit_fold: {len(train_genes)} training and {len(val_genes)} validation genes; both must "
                         "be non-empty")
    spec.expect_cells(1, "fit_fold")
    if spec.arch == "gcmerge" and not any(g.pcres for g in train_genes):
        raise UsageError(f"gcmerge is a graph of each promoter and its pCREs; none of the {len(train_genes)} "
                         "training genes has a pCRE (empty 'neighbors'), so it has no edge to learn from: give "
                         "pcHi-C interactions, or choose a promoter-only model (deepchrome, attentivechrome, hmcrnn)")
    source = select_marks(source, spec.marks)
    run_dir = RunDirectory(output, resume=resume, save_optimizer=save_optimizer)

    def datasets() -> tuple[ChromoformerDataset, ChromoformerDataset]:
        return (ChromoformerDataset(train_genes, source, spec.config, spec.binsizes, spec.task),
                ChromoformerDataset(val_genes, source, spec.config, spec.binsizes, spec.task))

    return Trainer.train(spec, datasets, run_dir, fold=fold, runtime=runtime, what=type(source).__name__,
                         init_from=init_from)
