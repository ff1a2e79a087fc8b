"""``chromoformer train`` and ``python -m chromoformer.train``: one cross-validation fold from files.

Kept from the original: the flags, AdamW(lr), StepLR(1, gamma) per epoch, CE / MSE on
log2(RPKM + 1), the fold -> held-out split mapping and the checkpoint keys. Fixed:
all ``num_epoch`` epochs run, ``--binsizes`` are ints, the regression validation loss
does not broadcast, no anomaly detection, best and last checkpoints are written
atomically, ``--resume`` continues an interrupted run, and the run is deterministic
on CPU for a fixed seed (the shuffle order of epoch e depends only on seed and e).
Also under ``torchrun --nproc_per_node N`` for data-parallel training. The library is
:func:`chromoformer.training.fit.train_fold`.
"""

from __future__ import annotations

import argparse
import sys

from chromoformer.cli import options
from chromoformer.config import (
    ARCHS,
    DEFAULT_BINSIZES,
    ORIGINAL_INIT_SEED,
    ChromoformerConfig,
    default_marks,
    load_config,
)
from chromoformer.data.folds import held_out_split
from chromoformer.data.marks import parse_mark_map
from chromoformer.data.sources import signal_marks
from chromoformer.diff.fitting import train_pair_fold
from chromoformer.engine import distributed
from chromoformer.errors import ConfigError, UsageError
from chromoformer.spec import RunSpec, config_for_marks
from chromoformer.training.fit import train_fold


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="python -m chromoformer.train", description=__doc__,
                                     formatter_class=options.RawDescriptionHelpFormatter)
    options.config(p)
    options.meta(p)
    options.signal(p)
    p.add_argument("--fold", type=int, required=True, choices=range(5), metavar="{0..4}",
                   help="0..4; validates on split (fold+3)%%4+1")
    options.output(p, required=False, help="run directory (default runs/{exp-id}-{clf|reg}-fold{fold}); a path "
                   "ending in .pt is the original's checkpoint path: the run directory is its parent")
    p.add_argument("--exp-id", default="chromoformer", help="experiment name (run directory, wandb group)")
    p.add_argument("--binsizes", type=int, nargs="+", default=list(DEFAULT_BINSIZES),
                   help="bin sizes (bp) of the resolutions, coarse to fine; each must divide w_max")
    options.regression(p)
    options.pair(p)
    p.add_argument("--model", default=None, choices=ARCHS,
                   help="architecture: Chromoformer, its no-pCRE ablation, or the DeepChrome, AttentiveChrome, "
                        "HM-CRNN and GC-MERGE baselines (single-resolution ablation: --binsizes 100); for --task "
                        "diff chromoformer-diff or deepdiff (default: chromoformer, chromoformer-diff for diff)")
    options.protocol(p)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last.pt")
    options.store(p, help="binned store (default: built once in {output parent}/.stores/, reused by later runs)")
    p.add_argument("--no-store", action="store_true", help="read npy files directly (slower)")
    options.eid(p)
    options.epochs(p)
    p.add_argument("--init-seed", type=int, default=None,
                   help="torch.manual_seed before the model is built (default 42, as the original's train.py)")
    p.add_argument("--marks", nargs="+", default=None,
                   help="mark names the model reads, in order (default: the store's marks; for an npy "
                        "directory, its rows named by the paper's 7 marks)")
    options.mark_map(p)
    options.resources(p, batch_size=False)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--save-optimizer", choices=("all", "last-only"), default="all",
                   help="'last-only': best.pt without the optimizer state (a third of the size); last.pt keeps it "
                        "for --resume")
    p.add_argument("--use-wandb", action="store_true", help=argparse.SUPPRESS)  # the original's; refused
    return p


def check_args(args: argparse.Namespace) -> None:
    """Impossible option values are errors before anything is read or created."""
    held_out_split(args.fold)
    options.check_resources(args)
    if args.use_wandb:
        raise UsageError("--use-wandb is not supported by this version (metrics go to metrics.tsv); drop the flag")
    if not args.exp_id or "/" in args.exp_id or "\\" in args.exp_id or args.exp_id in (".", ".."):
        raise UsageError(f"--exp-id {args.exp_id!r}: a name, not a path (it names the run directory under runs/)")
    distributed.resolve_device(args.device)
    options.check_pair(args, options.task_of(args), unsupported=("store", "eid", "mark_map", "no_store"))


def config_from_args(args: argparse.Namespace) -> ChromoformerConfig:
    """``--config`` (or the packaged default) with ``--epochs`` applied (``train`` and ``compare``)."""
    cfg = load_config(args.config)
    if args.epochs is not None:
        cfg = ChromoformerConfig.from_dict({**cfg.to_dict(), "num_epoch": args.epochs})
    return cfg


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The run spec of a ``train`` command line (config file, --binsizes, --marks, ...)."""
    cfg = config_from_args(args)
    marks = tuple(args.marks) if args.marks else None
    if marks is None and not args.mark_map:
        marks = signal_marks(args.npy_dir) or (signal_marks(args.store) if args.store else None)
    cfg = config_for_marks(cfg, marks or default_marks(cfg.n_feats), from_user=args.config is not None)
    task = options.task_of(args)
    try:
        return RunSpec(cfg, tuple(args.binsizes), marks or default_marks(cfg.n_feats), task,
                       args.model or ("chromoformer-diff" if task == "diff" else "chromoformer"),
                       ORIGINAL_INIT_SEED if args.init_seed is None else args.init_seed, args.protocol)
    except ConfigError as e:
        raise UsageError(str(e).replace("binsizes:", "--binsizes:")) from None


def run(args: argparse.Namespace) -> list[dict]:
    """``chromoformer train``: the command line over :func:`train_fold`."""
    check_args(args)
    spec = spec_from_args(args)
    out = args.output or f"runs/{args.exp_id}-{spec.task}-fold{args.fold}"
    if spec.task == "diff":
        history = train_pair_fold(spec, args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.fold, out,
                                  resume=args.resume, device=args.device, num_workers=args.num_workers,
                                  threads=args.threads, save_optimizer=args.save_optimizer)
        distributed.shutdown()
        return history
    history = train_fold(spec, args.meta, args.npy_dir, args.fold, out, store=args.store,
                         cache_store=not args.no_store, eid=args.eid, mark_map=parse_mark_map(args.mark_map),
                         resume=args.resume, device=args.device, num_workers=args.num_workers, threads=args.threads,
                         save_optimizer=args.save_optimizer)
    # Under torchrun: end the process group this command started. Not on an error: the group then
    # lives until the process exits, after its one-line message, so that rank 0's message is printed
    # before the other ranks (waiting on it) stop.
    distributed.shutdown()
    return history


def main(argv: list[str] | None = None) -> None:
    """``python -m chromoformer.train ARGS``, also under ``torchrun``: same flags as ``chromoformer train``."""
    from chromoformer.cli.entry import run_command

    run_command(build_parser(), run, sys.argv[1:] if argv is None else argv)
