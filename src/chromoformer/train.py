"""Train Chromoformer with chromosome-wise cross-validation (SPEC §3.5, §4).

Kept from the original: the flags, AdamW(lr), StepLR(1, gamma) per epoch, CE / MSE on
log2(RPKM + 1), the fold -> held-out split mapping and the checkpoint keys. Fixed:
all ``num_epoch`` epochs run, ``--binsizes`` are ints, the regression validation loss
does not broadcast, no anomaly detection, best and last checkpoints are written
atomically, ``--resume`` continues an interrupted run, and the run is deterministic
on CPU for a fixed seed (the shuffle order of epoch e depends only on seed and e).

Run as ``python -m chromoformer.train`` or ``chromoformer train``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
from pathlib import Path

import torch
import yaml

from chromoformer.config import DEFAULT_BINSIZES, ChromoformerConfig, load_config
from chromoformer.data import ChromoformerDataset, Gene, read_metadata
from chromoformer.data.store_writer import default_store_path, open_source
from chromoformer.errors import MetadataError, RunError, UsageError
from chromoformer.io import check_free_space, writable_output, write_text
from chromoformer.locking import FileLock
from chromoformer.model import ARCHS
from chromoformer.trainer import RunPaths, Trainer, clean_leftovers

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
    p.add_argument(
        "--init-seed",
        type=int,
        default=None,
        help="seed for the initial weights (default: config seed; 42 reproduces the original's)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--num-workers", type=int, default=min(4, max(0, (os.cpu_count() or 1) - 1)),
        help="DataLoader worker processes")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--save-optimizer", choices=("all", "last-only"), default="all",
                   help="'last-only': best.pt without the optimizer state (a third of the size); last.pt keeps it "
                        "for --resume")
    p.add_argument("--use-wandb", action="store_true", help=argparse.SUPPRESS)  # the original's; refused
    return p


def check_args(args: argparse.Namespace, cfg: ChromoformerConfig) -> None:
    """Impossible option values are errors before anything is read or created."""
    held_out_split(args.fold)
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be >= 1, got {args.epochs}")
    for b in args.binsizes:
        if b < 1 or cfg.w_max % b:
            raise UsageError(f"--binsizes: {b} must be a positive divisor of w_max={cfg.w_max} (e.g. 2000 500 100)")
    if len(set(args.binsizes)) != len(args.binsizes):
        raise UsageError(f"--binsizes: repeated bin size in {args.binsizes}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.num_workers < 0:
        raise UsageError(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.use_wandb:
        raise UsageError("--use-wandb is not supported by this version (metrics go to metrics.tsv); drop the flag")


def run(args: argparse.Namespace) -> list[dict]:
    cfg = load_config(args.config)
    if args.epochs is not None and args.epochs >= 1:
        cfg = ChromoformerConfig.from_dict({**cfg.to_dict(), "num_epoch": args.epochs})
    check_args(args, cfg)
    task = "reg" if args.regression else "clf"
    out = Path(args.output or f"runs/{args.exp_id}-{task}-fold{args.fold}")
    if out.suffix != ".pt" and out.is_file():
        raise UsageError(f"--output {out} is a file; give a run directory (or a NAME.pt checkpoint path)")
    paths = RunPaths.from_output(out)
    writable_output(paths.last, "run")
    if paths.last.exists() and not args.resume:
        raise RunError(f"{paths.last} exists: pass --resume to continue that run, or choose another --output")

    genes = read_metadata(
        args.meta, cfg.i_max, cfg.w_max, require=("split", "expression" if args.regression else "label"), eid=args.eid
    )
    train_genes, val_genes = split_genes(genes, args.fold)
    if not train_genes or not val_genes:
        raise MetadataError(
            f"{args.meta}: fold {args.fold} leaves {len(train_genes)} training and "
            f"{len(val_genes)} validation genes; both must be non-empty"
        )
    created = not paths.run_dir.exists()
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("chromoformer")
    try:
        with FileLock(paths.lock, f"run directory {paths.run_dir}" if out.suffix != ".pt" else f"run {out}"):
            if paths.last.exists() and not args.resume:  # another run committed while we were starting
                raise RunError(f"{paths.last} exists: pass --resume to continue that run, or choose another --output")
            handler = logging.FileHandler(paths.log)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(handler)
            try:
                return _train(args, cfg, task, paths, train_genes, val_genes)
            finally:
                root.removeHandler(handler)
                handler.close()
    except BaseException:
        if not paths.last.exists():  # nothing committed: leave no half-made run behind
            for f in (paths.log, paths.config):
                f.unlink(missing_ok=True)
            if created:
                shutil.rmtree(paths.run_dir, ignore_errors=True)
        raise


def _train(args, cfg, task, paths: RunPaths, train_genes, val_genes) -> list[dict]:
    if args.threads:
        torch.set_num_threads(args.threads)
    store = None if args.no_store else (
        args.store or default_store_path(args.npy_dir, paths.run_dir.parent, math.gcd(100, *args.binsizes),
                                         cfg.n_feats))
    source = open_source(args.npy_dir, store, n_feats=cfg.n_feats, base=math.gcd(100, *args.binsizes))
    binsizes = tuple(args.binsizes)
    log.info(
        "fold %d: %d train / %d validation genes (split %d), source %s",
        args.fold,
        len(train_genes),
        len(val_genes),
        held_out_split(args.fold),
        type(source).__name__,
    )
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train_ds = ChromoformerDataset(train_genes, source, cfg, binsizes, task)
    val_ds = ChromoformerDataset(val_genes, source, cfg, binsizes, task)
    train_ds.validate()
    val_ds.validate()
    tr = Trainer(cfg, task, binsizes, train_ds, val_ds, paths, args.fold, device, args.num_workers, args.init_seed,
                 arch=args.model, marks=getattr(source, "marks", None),
                 best_optimizer=args.save_optimizer == "all")
    if args.resume and paths.last.exists():
        tr.resume(paths.last)
    else:
        clean_leftovers(paths, staged=True)  # a run killed before its first epoch committed
    if tr.epoch < cfg.num_epoch:
        check_free_space(paths.run_dir, tr.space_needed(), "the run's checkpoints")
    write_text(paths.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return tr.fit()


def main(argv: list[str] | None = None) -> None:
    """``python -m chromoformer.train ARGS`` is ``chromoformer train ARGS``."""
    from chromoformer.cli import main as cli_main

    cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
