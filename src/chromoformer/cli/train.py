"""``chromoformer train`` and ``python -m chromoformer.train``: one cross-validation fold from files (see
:data:`TRAIN_DESCRIPTION`).

``chromoformer compare``: Chromoformer, its ablations and the baselines trained on the same folds, one table.

Held-out performance is read from each fold's last epoch (no model selection on the held-out fold): mean and sd
over folds and pooled AUROC (classification), Pearson r (regression), or for ``--task diff`` (two cells: -m/-d
cell A, --meta-b/--npy-dir-b cell B) the fold change's Pearson r, Spearman rho and up/down AUROC. Writes
comparison.tsv, comparison_folds.tsv and comparison.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chromoformer.cli import command_help, options
from chromoformer.config import (
    ARCHS,
    DEFAULT_BINSIZES,
    FREEZE_PARTS,
    MARK_SETS,
    ORIGINAL_INIT_SEED,
    ChromoformerConfig,
    default_marks,
    load_config,
    mark_names,
)
from chromoformer.data.folds import FOLDS, held_out_split
from chromoformer.data.marks import parse_mark_map
from chromoformer.data.sources import signal_marks
from chromoformer.diff.fitting import compare_pairs, train_pair_fold
from chromoformer.engine import distributed
from chromoformer.engine.runtime import Runtime
from chromoformer.errors import ConfigError, UsageError
from chromoformer.files.checked import read_table
from chromoformer.files.layouts import CompareFiles
from chromoformer.results.plots import comparison_plot
from chromoformer.spec import RunSpec, config_for_marks
from chromoformer.training.compare import DEFAULT_MODELS, DIFF_MODELS, compare
from chromoformer.training.finetune import parent_id, read_parent
from chromoformer.training.fit import train_fold

# ``python -m chromoformer.train --help`` (the original's command) describes training as the original did.
TRAIN_DESCRIPTION = """One cross-validation fold from files.

Kept from the original: the flags, AdamW(lr), StepLR(1, gamma) per epoch, CE / MSE on
log2(RPKM + 1), the fold -> held-out split mapping and the checkpoint keys. Fixed:
all ``num_epoch`` epochs run, ``--binsizes`` are ints, the regression validation loss
does not broadcast, no anomaly detection, best and last checkpoints are written
atomically, ``--resume`` continues an interrupted run, and the run is deterministic
on CPU for a fixed seed (the shuffle order of epoch e depends only on seed and e).
Also under ``torchrun --nproc_per_node N`` for data-parallel training. The library is
:func:`chromoformer.training.fit.train_fold`."""


def build_train_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="python -m chromoformer.train", description=TRAIN_DESCRIPTION,
                                     formatter_class=options.RawDescriptionHelpFormatter)
    options.config(p)
    options.meta(p)
    options.signal(p)
    p.add_argument("--fold", type=int, required=True, choices=range(5), metavar="{0..4}",
                   help="0..4; validates on split (fold+3)%%4+1")
    options.output(p, required=False, help="run directory (default runs/{exp-id}-{clf|reg}-fold{fold}); a path "
                   "ending in .pt is the original's checkpoint path: the run directory is its parent")
    p.add_argument("--exp-id", default="chromoformer",
                   help="experiment name: the default run directory is runs/{exp-id}-{task}-fold{fold}")
    p.add_argument("--binsizes", type=int, nargs="+", default=None,
                   help=f"bin sizes (bp) of the resolutions, coarse to fine; each must divide w_max (default: "
                        f"{' '.join(map(str, DEFAULT_BINSIZES))}, or the --init-from checkpoint's)")
    options.regression(p)
    options.pair(p)
    p.add_argument("--model", default=None, choices=ARCHS,
                   help="architecture: Chromoformer, its no-pCRE ablation, or the DeepChrome, AttentiveChrome, "
                        "HM-CRNN and GC-MERGE baselines (single-resolution ablation: --binsizes 100); for --task "
                        "diff chromoformer-diff or deepdiff (default: chromoformer, chromoformer-diff for diff)")
    options.protocol(p)
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last.pt")
    p.add_argument("--val-fraction", type=float, default=None, metavar="F",
                   help="hold out a seeded random fraction F of the genes instead of the fold's chromosome split "
                        "(for metadata whose genes lie in one split, like the original's 100 demo genes; "
                        "optimistic next to a chromosome fold)")
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
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="fine-tune: start from this checkpoint's weights (ours, the original's format, or "
                        "pretrained:EID/foldK); its task, model, bin sizes, marks and model config are taken unless "
                        "given, and must match if given")
    p.add_argument("--freeze", nargs="+", default=(), choices=FREEZE_PARTS, metavar="PART",
                   help=f"with --init-from: keep these parts as the parent had them ({', '.join(FREEZE_PARTS)}; "
                        "every resolution)")
    options.precision(p)
    options.loggers(p)
    return p


def check_args(args: argparse.Namespace) -> Runtime:
    """Impossible option values are errors before anything is read or created; the checked runtime."""
    held_out_split(args.fold)
    runtime = options.runtime(args)
    if not args.exp_id or "/" in args.exp_id or "\\" in args.exp_id or args.exp_id in (".", ".."):
        raise UsageError(f"--exp-id {args.exp_id!r}: a name, not a path (it names the run directory under runs/)")
    options.check_pair(args, options.task_of(args),
                       unsupported=("store", "eid", "mark_map", "no_store", "val_fraction"))
    return runtime


def config_from_args(args: argparse.Namespace) -> ChromoformerConfig:
    """``--config`` (or the packaged default) with ``--epochs`` applied (``train`` and ``compare``)."""
    cfg = load_config(args.config)
    if args.epochs is not None:
        cfg = ChromoformerConfig.from_dict({**cfg.to_dict(), "num_epoch": args.epochs})
    return cfg


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """The run spec of a ``train`` command line (config file, --binsizes, --marks, ...); with ``--init-from``,
    what the command line leaves out is the parent's (:mod:`chromoformer.training.finetune`)."""
    if args.freeze and not args.init_from:
        raise UsageError("--freeze keeps parts of a parent's weights: give the parent with --init-from")
    parent = read_parent(args.init_from) if args.init_from else None
    cfg = config_from_args(args) if parent is None or args.config else parent.spec.config
    if parent is not None and args.epochs is not None:
        cfg = ChromoformerConfig.from_dict({**cfg.to_dict(), "num_epoch": args.epochs})
    marks = tuple(args.marks) if args.marks else (parent.spec.marks if parent is not None else None)
    if marks is None and not args.mark_map:
        marks = signal_marks(args.npy_dir) or (signal_marks(args.store) if args.store else None)
    cfg = config_for_marks(cfg, marks or default_marks(cfg.n_feats), from_user=args.config is not None)
    task = options.task_of(args)
    binsizes = args.binsizes or (parent.spec.binsizes if parent is not None else DEFAULT_BINSIZES)
    arch = args.model or (parent.spec.arch if parent is not None else None)
    try:
        return RunSpec(cfg, tuple(binsizes), marks or default_marks(cfg.n_feats), task,
                       arch or ("chromoformer-diff" if task == "diff" else "chromoformer"),
                       ORIGINAL_INIT_SEED if args.init_seed is None else args.init_seed, args.protocol,
                       parent=parent_id(args.init_from) if parent is not None else "", freeze=tuple(args.freeze))
    except ConfigError as e:
        raise UsageError(str(e).replace("binsizes:", "--binsizes:")) from None


def run_train(args: argparse.Namespace) -> list[dict]:
    """``chromoformer train``: the command line over :func:`train_fold`."""
    runtime = check_args(args)
    spec = spec_from_args(args)
    out = args.output or f"runs/{args.exp_id}-{spec.task}-fold{args.fold}"
    if spec.task == "diff":
        history = train_pair_fold(spec, args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.fold, out,
                                  resume=args.resume, runtime=runtime, save_optimizer=args.save_optimizer,
                                  init_from=args.init_from)
        distributed.shutdown()
        return history
    history = train_fold(spec, args.meta, args.npy_dir, args.fold, out, store=args.store,
                         cache_store=not args.no_store, eid=args.eid, mark_map=parse_mark_map(args.mark_map),
                         val_fraction=args.val_fraction, resume=args.resume, runtime=runtime,
                         save_optimizer=args.save_optimizer, init_from=args.init_from)
    # Under torchrun: end the process group this command started. Not on an error: the group then
    # lives until the process exits, after its one-line message, so that rank 0's message is printed
    # before the other ranks (waiting on it) stop.
    distributed.shutdown()
    return history


def main(argv: list[str] | None = None) -> None:
    """``python -m chromoformer.train ARGS``, also under ``torchrun``: same flags as ``chromoformer train``."""
    from chromoformer.cli import run_command

    run_command(build_train_parser(), run_train, sys.argv[1:] if argv is None else argv)


def build_compare_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer compare", description=command_help("compare"))
    options.meta(p)
    options.signal(p)
    options.output(p, help="directory for all runs and comparison.tsv")
    p.add_argument("--models", nargs="+", default=None,
                   help=f"architectures to train (see train --model; default {' '.join(DEFAULT_MODELS)}, for --task "
                        f"diff {' '.join(DIFF_MODELS)})")
    p.add_argument("--folds", nargs="+", type=int, default=list(FOLDS), help="folds to train (1..4)")
    p.add_argument("--marks", nargs="+", default=None, metavar="MARK",
                   help="the marks every model reads, picked by name from the signal (an npy directory's rows are "
                        "the paper's 7 marks), or one of " + ", ".join(MARK_SETS) + " for that original's own "
                        "input set: " + "; ".join(f"{k} = {' '.join(v)}" for k, v in MARK_SETS.items())
                        + " (default: every mark of the signal)")
    options.regression(p)
    options.pair(p)
    options.protocol(p)
    options.epochs(p)
    options.config(p)
    options.resources(p, batch_size=False)
    options.precision(p)
    options.loggers(p)
    options.parquet(p)
    return p


def run_compare(args: argparse.Namespace) -> None:
    runtime = options.runtime(args)
    cfg = config_from_args(args)
    for fold in args.folds:
        held_out_split(fold)
    task = options.task_of(args)
    options.check_pair(args, task)
    for what, xs in (("--folds", args.folds), ("--models", args.models or [])):
        if len(set(xs)) != len(xs):
            raise UsageError(f"{what} lists {next(x for x in xs if xs.count(x) > 1)} twice")
    rows = signal_marks(args.npy_dir) or default_marks(cfg.n_feats)
    marks = mark_names(args.marks) if args.marks else rows
    if missing := [m for m in marks if m not in rows]:
        raise UsageError(f"--marks: {', '.join(missing)} not in {args.npy_dir} (its marks: {', '.join(rows)})")
    if len(set(marks)) != len(marks):
        raise UsageError(f"--marks lists {next(m for m in marks if marks.count(m) > 1)} twice")
    cfg = config_for_marks(cfg, marks, from_user=args.config is not None and not args.marks)
    models = args.models or list(DIFF_MODELS if task == "diff" else DEFAULT_MODELS)
    try:
        spec = RunSpec(cfg, marks=marks, task=task, arch=models[0] if task == "diff" else "chromoformer",
                       protocol=args.protocol)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    run = dict(models=models, folds=args.folds, spec=spec, runtime=runtime, parquet=args.parquet)
    if tuple(marks) != tuple(rows):
        run["row_marks"] = rows
    if spec.cells == 2:
        t = compare_pairs(args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.output, **run)
    else:
        t = compare(args.meta, args.npy_dir, args.output, **run)
    files = CompareFiles(Path(args.output))
    folds = len(args.folds)
    untrained = list(t.model[~t.trained])
    comparison_plot(read_table(files.folds, UsageError, "comparison", sep="\t"), files.plot,
                    title=f"held-out performance ({task}, {folds} fold{'s' if folds != 1 else ''})",
                    untrained=untrained)
    print(t.drop(columns=["protocol"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for name, how in zip(t.model, t.protocol, strict=True):
        print(f"{name}: trained under protocol {how}")
    for name in untrained:
        print(f"{name}: its held-out scores are all but constant: it did not train, and its metrics rank noise "
              "(more epochs, a higher lr, or its own --protocol)")
