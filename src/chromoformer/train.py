"""Train Chromoformer with chromosome-wise cross-validation (SPEC §3.5, §4).

Kept from the original: the flags, AdamW(lr), StepLR(1, gamma) per epoch, CE / MSE on
log2(RPKM + 1), the fold -> held-out split mapping and the checkpoint keys. Fixed:
all ``num_epoch`` epochs run, ``--binsizes`` are ints, the regression validation loss
does not broadcast, no anomaly detection, best and last checkpoints are written
atomically, ``--resume`` continues an interrupted run, and the run is deterministic
on CPU for a fixed seed (the shuffle order of epoch e depends only on seed and e).

Run as ``python -m chromoformer.train`` or ``chromoformer train`` (either under
``torchrun --nproc_per_node N`` for data-parallel training); from Python, call
:func:`fit_fold` or :func:`train_fold`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import yaml

from chromoformer import distributed
from chromoformer.config import ARCHS, DEFAULT_BINSIZES, ChromoformerConfig, default_marks, load_config
from chromoformer.data import ChromoformerDataset, Gene, read_metadata
from chromoformer.data.marks import parse_mark_map, select_marks
from chromoformer.data.sources import RegionSource
from chromoformer.data.store import BinnedStore
from chromoformer.data.store_writer import default_store_path, open_source
from chromoformer.errors import ConfigError, MetadataError, RunError, UsageError
from chromoformer.io import check_free_space, writable_output, write_text
from chromoformer.locking import FileLock
from chromoformer.run_files import RunPaths, clean_leftovers
from chromoformer.spec import RunSpec, config_for_marks
from chromoformer.trainer import Trainer

log = logging.getLogger("chromoformer.train")  # not __name__: also run as __main__


def held_out_split(fold: int) -> int:
    """The original's mapping: fold 1..3 validate on split 1..3; fold 4 or 0 on split 4."""
    if not 0 <= fold <= 4:
        raise UsageError(f"--fold must be 0..4, got {fold}")
    return (fold + 3) % 4 + 1


def split_genes(genes: list[Gene], fold: int) -> tuple[list[Gene], list[Gene]]:
    """(train, validation) genes for a fold; every gene needs a ``split`` in 1..4."""
    val_split = held_out_split(fold)
    for g in genes:
        if g.split not in (1, 2, 3, 4):
            raise MetadataError(f"{g.where}: split must be 1..4 for the 4 chromosome folds, got {g.split}")
    return [g for g in genes if g.split != val_split], [g for g in genes if g.split == val_split]


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(
        prog="python -m chromoformer.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-c", "--config", default=None, help="config YAML (default: packaged default.yaml)")
    p.add_argument("-m", "--meta", required=True, help="metadata csv")
    p.add_argument("-d", "--npy-dir", required=True, help="npy directory (or binned store)")
    p.add_argument("--fold", type=int, required=True, choices=range(5), metavar="{0..4}",
                   help="0..4; validates on split (fold+3)%%4+1")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="run directory (default runs/{exp-id}-{clf|reg}-fold{fold}); a path ending in "
        ".pt is the original's checkpoint path: the run directory is its parent",
    )
    p.add_argument("--exp-id", default="chromoformer", help="experiment name (run directory, wandb group)")
    p.add_argument("--binsizes", type=int, nargs="+", default=list(DEFAULT_BINSIZES),
        help="bin sizes (bp) of the resolutions, coarse to fine; each must divide w_max")
    p.add_argument("--regression", action="store_true", help="regress log2(RPKM+1) instead of classifying")
    p.add_argument("--model", default="chromoformer", choices=ARCHS,
                   help="architecture: Chromoformer, its no-pCRE ablation, or the DeepChrome/AttentiveChrome "
                        "baselines (single-resolution ablation: --binsizes 100)")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last.pt")
    p.add_argument(
        "--store",
        default=None,
        help="binned store (default: built once in {output parent}/.stores/, reused by later runs)",
    )
    p.add_argument("--no-store", action="store_true", help="read npy files directly (slower)")
    p.add_argument("--eid", default=None, help="keep only metadata rows of this eid")
    p.add_argument("--epochs", type=int, default=None, help="override num_epoch of the config")
    p.add_argument("--init-seed", type=int, default=None,
                   help="torch.manual_seed before the model is built (default 42, as the original's train.py)")
    p.add_argument("--marks", nargs="+", default=None,
                   help="mark names the model reads, in order (default: the store's marks; for an npy "
                        "directory, its rows named by the paper's 7 marks)")
    p.add_argument("--mark-map", nargs="+", default=None, metavar="MODEL_MARK=STORE_MARK",
                   help="read a store mark under another name, or 'by-name' to pick --marks from the store "
                        "by name")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--num-workers", type=int, default=min(4, max(0, (os.cpu_count() or 1) - 1)),
        help="DataLoader worker processes")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--save-optimizer", choices=("all", "last-only"), default="all",
                   help="'last-only': best.pt without the optimizer state (a third of the size); last.pt keeps it "
                        "for --resume")
    p.add_argument("--use-wandb", action="store_true", help=argparse.SUPPRESS)  # the original's; refused
    return p


def check_args(args: argparse.Namespace) -> None:
    """Impossible option values are errors before anything is read or created."""
    held_out_split(args.fold)
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.num_workers < 0:
        raise UsageError(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.use_wandb:
        raise UsageError("--use-wandb is not supported by this version (metrics go to metrics.tsv); drop the flag")
    if not args.exp_id or "/" in args.exp_id or "\\" in args.exp_id or args.exp_id in (".", ".."):
        raise UsageError(f"--exp-id {args.exp_id!r}: a name, not a path (it names the run directory under runs/)")
    distributed.resolve_device(args.device)


def signal_marks(signal: str | Path) -> tuple[str, ...] | None:
    """The mark names a binned store records (None for an npy directory)."""
    if (Path(signal) / "manifest.json").is_file():
        return BinnedStore(signal, verify=False).marks
    return None


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The run spec of a ``train`` command line (config file, --binsizes, --marks, ...)."""
    cfg = load_config(args.config)
    if args.epochs is not None:
        cfg = ChromoformerConfig.from_dict({**cfg.to_dict(), "num_epoch": args.epochs})
    marks = tuple(args.marks) if args.marks else None
    if marks is None and not args.mark_map:
        marks = signal_marks(args.npy_dir) or (signal_marks(args.store) if args.store else None)
    cfg = config_for_marks(cfg, marks or default_marks(cfg.n_feats), from_user=args.config is not None)
    try:
        return RunSpec(cfg, tuple(args.binsizes), marks or default_marks(cfg.n_feats),
                       "reg" if args.regression else "clf", args.model,
                       *(() if args.init_seed is None else (args.init_seed,)))
    except ConfigError as e:
        raise UsageError(str(e).replace("binsizes:", "--binsizes:")) from None


def run(args: argparse.Namespace) -> list[dict]:
    """``chromoformer train``: the command line over :func:`train_fold`."""
    check_args(args)
    spec = spec_from_args(args)
    out = args.output or f"runs/{args.exp_id}-{spec.task}-fold{args.fold}"
    history = train_fold(spec, args.meta, args.npy_dir, args.fold, out, store=args.store,
                         cache_store=not args.no_store, eid=args.eid, mark_map=parse_mark_map(args.mark_map),
                         resume=args.resume, device=args.device, num_workers=args.num_workers, threads=args.threads,
                         save_optimizer=args.save_optimizer)
    # Under torchrun: end the process group this command started. Not on an error: the group then
    # lives until the process exits, after its one-line message, so that rank 0's message is printed
    # before the other ranks (waiting on it) stop.
    distributed.shutdown()
    return history


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
    paths = _check_output(Path(output), bool(fit.get("resume")))
    genes = read_metadata(meta, spec.config.i_max, spec.config.w_max,
                          require=("split", "expression" if spec.task == "reg" else "label"), eid=eid)
    train_genes, val_genes = split_genes(genes, fold)
    if not train_genes or not val_genes:
        raise MetadataError(f"{meta}: fold {fold} leaves {len(train_genes)} training and {len(val_genes)} "
                            "validation genes; both must be non-empty")
    d, _ = distributed.from_env(fit.get("device"))  # type: ignore[arg-type]
    if store is None and cache_store and signal_marks(signal) is None:
        store = default_store_path(signal, paths.run_dir.parent, spec.base, spec.config.n_feats, spec.marks)

    def source() -> RegionSource:
        return open_source(signal, store, n_feats=spec.config.n_feats, base=spec.base, marks=spec.marks)

    opened = d.on_main(source)  # rank 0 builds a missing store; the others then open it
    src = select_marks(opened if d.main else source(), spec.marks, mark_map)
    return fit_fold(spec, train_genes, val_genes, src, output, fold=fold, **fit)  # type: ignore[arg-type]


def _check_output(out: Path, resume: bool) -> RunPaths:
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
             num_workers: int = 0, threads: int | None = None, save_optimizer: str = "all") -> list[dict]:
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
    if num_workers < 0 or (threads is not None and threads < 1) or save_optimizer not in ("all", "last-only"):
        raise UsageError(f"fit_fold: num_workers >= 0, threads >= 1 and save_optimizer 'all' or 'last-only' "
                         f"needed, got {num_workers}, {threads}, {save_optimizer!r}")
    if not train_genes or not val_genes:
        raise UsageError(f"fit_fold: {len(train_genes)} training and {len(val_genes)} validation genes; both must "
                         "be non-empty")
    out = Path(output)
    paths = _check_output(out, resume)
    source = select_marks(source, spec.marks)
    d, dev = distributed.from_env(device)
    if d.active and min(len(train_genes), len(val_genes), spec.config.bsz) < d.world:
        raise UsageError(f"{d.world} processes need at least as many training genes, validation genes and "
                         f"batch size (bsz); got {len(train_genes)}, {len(val_genes)} and {spec.config.bsz}")
    created = not paths.run_dir.exists()
    try:
        with contextlib.ExitStack() as stack:
            d.on_main(lambda: _open_run(paths, out, resume, stack))
            return _fit(spec, train_genes, val_genes, source, paths, fold, resume, dev, d, num_workers, threads,
                        save_optimizer)
    except BaseException:
        if d.main and not paths.last.exists():  # nothing committed: leave no half-made run behind
            for f in (paths.log, paths.config):
                f.unlink(missing_ok=True)
            if created:
                shutil.rmtree(paths.run_dir, ignore_errors=True)
        raise


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


def _fit(spec, train_genes, val_genes, source, paths: RunPaths, fold, resume, dev, d, num_workers, threads,
         save_optimizer) -> list[dict]:
    if threads:
        torch.set_num_threads(threads)
    log.info("fold %d: %d train / %d validation genes (split %d), source %s, %d process(es)", fold,
             len(train_genes), len(val_genes), held_out_split(fold) if 0 <= fold <= 4 else -1,
             type(source).__name__, d.world)
    train_ds = ChromoformerDataset(train_genes, source, spec.config, spec.binsizes, spec.task)
    val_ds = ChromoformerDataset(val_genes, source, spec.config, spec.binsizes, spec.task)
    d.on_main(lambda: (train_ds.validate(), val_ds.validate()))
    tr = Trainer(spec, train_ds, val_ds, paths, fold, dev, num_workers, save_optimizer == "all", d)
    resuming = resume and paths.last.exists()

    def prepare() -> None:  # rank 0: the run's files
        if resuming:
            tr.resume(paths.last)
        else:
            clean_leftovers(paths, staged=True)  # a run killed before its first epoch committed
        if tr.epoch < spec.config.num_epoch:
            check_free_space(paths.run_dir, tr.space_needed(), "the run's checkpoints")
        write_text(paths.config, yaml.safe_dump(spec.config.to_dict(), sort_keys=False))

    d.on_main(prepare)
    if resuming and not d.main:
        tr.resume(paths.last, repair=False)
    return tr.fit()


def main(argv: list[str] | None = None) -> None:
    """``python -m chromoformer.train ARGS``, also under ``torchrun``: same flags as ``chromoformer train``."""
    from chromoformer.entry import run_command

    run_command(build_parser(), run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
