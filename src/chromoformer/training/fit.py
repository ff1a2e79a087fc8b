"""Train one cross-validation fold (SPEC §3.5, §4): :func:`train_fold` from files, :func:`fit_fold` from genes and
a signal source. Each writes a run directory (``chromoformer.files.layouts.RunPaths``) and can resume it
bit-identically; the command line over them is :mod:`chromoformer.cli.train`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from chromoformer.data import ChromoformerDataset, Gene, read_metadata
from chromoformer.data.folds import held_out_split, split_genes
from chromoformer.data.loader import check_workers
from chromoformer.data.marks import select_marks
from chromoformer.data.sources import RegionSource, default_store_path, open_source, signal_marks
from chromoformer.engine import distributed
from chromoformer.errors import MetadataError, RunError, UsageError
from chromoformer.files.atomic import writable_output
from chromoformer.files.checked import not_an_input
from chromoformer.files.layouts import RunPaths
from chromoformer.files.locking import FileLock
from chromoformer.spec import RunSpec
from chromoformer.training import objective
from chromoformer.training.trainer import Trainer

log = logging.getLogger(__name__)


def train_fold(spec: RunSpec, meta: str | Path, signal: str | Path, fold: int, output: str | Path, *,
               store: str | Path | None = None, cache_store: bool = True, eid: str | None = None,
               mark_map: Mapping[str, str] | str | None = None, **fit: object) -> list[dict]:
    """Train one cross-validation fold from files: metadata csv + signal (npy directory or store).

    ``fold`` (0..4) validates on split ``(fold + 3) % 4 + 1`` and trains on the other three.
    An npy directory is read through a binned store built once (``store``, default a cache
    under ``output``'s parent; ``cache_store=False`` reads the npy files). ``mark_map``:
    see :func:`chromoformer.data.marks.select_marks`. Other keywords go to :func:`fit_fold`.
    Returns the per-epoch history.
    """
    held_out_split(fold)
    spec.expect_cells(1, "train_fold")
    not_an_input(output, [meta], folders=[signal, store])
    paths = check_run_output(Path(output), bool(fit.get("resume")))
    genes = read_metadata(meta, i_max=spec.config.i_max, w_max=spec.config.w_max,
                          require=("split", "expression" if spec.task == "reg" else "label"), eid=eid)
    train_genes, val_genes = split_genes(genes, fold)
    if not train_genes or not val_genes:
        raise MetadataError(f"{meta}: fold {fold} leaves {len(train_genes)} training and {len(val_genes)} "
                            "validation genes; both must be non-empty")
    if spec.task == "clf":
        _warn_one_class(meta, fold, "training", train_genes)
        _warn_one_class(meta, fold, "validation", val_genes)
    d, _ = distributed.from_env(fit.get("device"))  # type: ignore[arg-type]
    if store is None and cache_store and signal_marks(signal) is None:
        store = default_store_path(signal, paths.run_dir.parent, base=spec.base, n_feats=spec.config.n_feats,
                                   marks=spec.marks)

    def source() -> RegionSource:
        return open_source(signal, store=store, n_feats=spec.config.n_feats, base=spec.base, marks=spec.marks)

    opened = d.on_main(source)  # rank 0 builds a missing store; the others then open it
    src = select_marks(opened if d.main else source(), spec.marks, mark_map)
    return fit_fold(spec, train_genes, val_genes, src, output, fold=fold, **fit)  # type: ignore[arg-type]


def _warn_one_class(meta: str | Path, fold: int, which: str, genes: Sequence[Gene]) -> None:
    """A split of one class trains (the original would too) but its AUC is undefined: say so once."""
    labels = {g.label for g in genes}
    if len(labels) < 2:
        log.warning("%s: fold %d: all %d %s genes have label %s: the %s AUC is undefined (NaN); check the labels "
                    "or the split column", meta, fold, len(genes), which, labels.pop(), which)


def check_run_output(out: Path, resume: bool) -> RunPaths:
    if out.suffix != ".pt" and out.is_file():
        raise UsageError(f"--output {out} is a file; give a run directory (or a NAME.pt checkpoint path)")
    paths = RunPaths.from_output(out)
    writable_output(paths.last, "run")
    if paths.last.exists() and not resume:
        raise RunError(f"{paths.last} exists: pass --resume to continue that run, or choose another --output")
    found = [f.name for f in (paths.best, paths.metrics, paths.val_predictions) if f.exists()]
    if found and not resume and not paths.last.exists():  # not a run's (no last.pt): they would be overwritten
        raise RunError(f"{paths.run_dir} already holds {', '.join(found)} but no {paths.last.name}: a new run would "
                       "overwrite them; choose another --output (or pass --resume if they are an interrupted "
                       "run's)")
    return paths


def fit_fold(spec: RunSpec, train_genes: Sequence[Gene], val_genes: Sequence[Gene], source: RegionSource,
             output: str | Path, *, fold: int = 0, resume: bool = False, device: str | None = None,
             num_workers: int | None = 0, threads: int | None = None, save_optimizer: str = "all") -> list[dict]:
    """Train ``spec`` on ``train_genes``, validating on ``val_genes`` after every epoch.

    Parameters
    ----------
    source : signal whose marks are ``spec.marks`` (see :func:`chromoformer.data.marks.select_marks`)
    output : run directory (``last.pt``, ``best.pt``, ``metrics.tsv``, ``val_predictions.csv``,
        ``train.log``), or ``NAME.pt`` for the original's one-file layout
    fold : recorded in the checkpoints and log
    resume : continue the run in ``output`` (bit-identical to an uninterrupted run)
    device : ``cpu``, ``cuda``, ``cuda:1``...; under torchrun each rank takes its local GPU
    save_optimizer : ``all`` or ``last-only`` (``best.pt`` without optimizer state)

    Returns the per-epoch history (list of dicts, as in ``metrics.tsv``). Logging goes to
    ``train.log`` for the duration of the call only.
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

    def datasets() -> tuple[ChromoformerDataset, ChromoformerDataset]:
        return (ChromoformerDataset(train_genes, source, spec.config, spec.binsizes, spec.task),
                ChromoformerDataset(val_genes, source, spec.config, spec.binsizes, spec.task))

    return run_fit(spec, datasets, len(train_genes), len(val_genes), output, fold=fold, resume=resume,
                   device=device, num_workers=num_workers, threads=threads, save_optimizer=save_optimizer,
                   what=type(source).__name__)


def run_fit(spec: RunSpec, datasets: Callable[[], tuple[Dataset, Dataset]], n_train: int, n_val: int,
            output: str | Path, *, fold: int, resume: bool, device: str | None, num_workers: int | None,
            threads: int | None, save_optimizer: str, what: str) -> list[dict]:
    """The run of :func:`fit_fold` (and of a pair's, :func:`chromoformer.diff.fitting.fit_pair_fold`):
    check the options, lock and log into the run directory, train ``datasets()`` (train, validation), and leave
    nothing behind when no epoch committed. ``what`` names the data in the log."""
    check_workers(num_workers, "fit_fold")
    if (threads is not None and threads < 1) or save_optimizer not in ("all", "last-only"):
        raise UsageError(f"fit_fold: threads >= 1 and save_optimizer 'all' or 'last-only' needed, got {threads}, "
                         f"{save_optimizer!r}")
    out = Path(output)
    paths = check_run_output(out, resume)
    d, dev = distributed.from_env(device)
    if d.active and min(n_train, n_val, spec.config.bsz) < d.world:
        raise UsageError(f"{d.world} processes need at least as many training genes, validation genes and "
                         f"batch size (bsz); got {n_train}, {n_val} and {spec.config.bsz}")
    created = not paths.run_dir.exists()
    try:
        with contextlib.ExitStack() as stack:
            d.on_main(lambda: _open_run(paths, out, resume, stack))
            if threads:
                torch.set_num_threads(threads)
            log.info("fold %d: %d train / %d validation genes (split %d), source %s, %d process(es); model %s, "
                     "protocol %s", fold, n_train, n_val, held_out_split(fold) if 0 <= fold <= 4 else -1, what,
                     d.world, spec.arch, objective.describe(spec))
            train_ds, val_ds = datasets()
            d.on_main(lambda: (train_ds.validate(), val_ds.validate()))
            tr = Trainer(spec, train_ds, val_ds, paths, fold, dev, num_workers, save_optimizer == "all", d)
            tr.start(resume=resume and paths.last.exists())
            return tr.fit()
    except RuntimeError as e:
        lost = distributed.lost_peer(e, d)
        _discard_uncommitted(paths, d, created)
        if lost is not None:
            raise lost from None
        raise
    except BaseException:
        _discard_uncommitted(paths, d, created)
        raise


def _discard_uncommitted(paths: RunPaths, d: distributed.Dist, created: bool) -> None:
    """After a failure: nothing committed means no half-made run is left behind."""
    if d.main and not paths.last.exists():
        for f in (paths.log, paths.config):
            f.unlink(missing_ok=True)
        if created:
            shutil.rmtree(paths.run_dir, ignore_errors=True)


def _open_run(paths: RunPaths, out: Path, resume: bool, stack: contextlib.ExitStack) -> None:
    """Rank 0: create and lock the run directory; log into its train.log until the run ends."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    stack.enter_context(FileLock(paths.lock, f"run directory {paths.run_dir}" if out.suffix != ".pt" else
                                 f"run {out}"))
    if paths.last.exists() and not resume:  # another run committed while we were starting
        raise RunError(f"{paths.last} exists: pass --resume to continue that run, or choose another --output")
    handler = logging.FileHandler(paths.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("chromoformer")
    root.addHandler(handler)
    stack.callback(handler.close)
    stack.callback(root.removeHandler, handler)
    if root.getEffectiveLevel() > logging.INFO:  # a library caller who set up no logging still gets train.log
        stack.callback(root.setLevel, root.level)
        root.setLevel(logging.INFO)
