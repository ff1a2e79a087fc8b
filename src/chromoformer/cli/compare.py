"""``chromoformer compare``: Chromoformer, its ablations and the baselines trained on the same folds, one table.

Held-out performance is read from each fold's last epoch (no model selection on the held-out fold): mean and sd
over folds and pooled AUROC (classification), Pearson r (regression), or for ``--task diff`` (two cells: -m/-d
cell A, --meta-b/--npy-dir-b cell B) the fold change's Pearson r, Spearman rho and up/down AUROC. Writes
comparison.tsv, comparison_folds.tsv and comparison.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chromoformer.cli import options
from chromoformer.cli.train import config_from_args
from chromoformer.config import default_marks
from chromoformer.data.folds import FOLDS, held_out_split
from chromoformer.data.sources import signal_marks
from chromoformer.diff.fitting import compare_pairs
from chromoformer.errors import ConfigError, UsageError
from chromoformer.files.checked import read_table
from chromoformer.files.layouts import CompareFiles
from chromoformer.results.plots import comparison_plot
from chromoformer.spec import RunSpec, config_for_marks
from chromoformer.training.compare import DEFAULT_MODELS, DIFF_MODELS, compare


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer compare", description=__doc__)
    options.meta(p)
    options.signal(p)
    options.output(p, help="directory for all runs and comparison.tsv")
    p.add_argument("--models", nargs="+", default=None,
                   help=f"architectures to train (see train --model; default {' '.join(DEFAULT_MODELS)}, for --task "
                        f"diff {' '.join(DIFF_MODELS)})")
    p.add_argument("--folds", nargs="+", type=int, default=list(FOLDS), help="folds to train (1..4)")
    options.regression(p)
    options.pair(p)
    options.protocol(p)
    options.epochs(p)
    options.config(p)
    options.resources(p, batch_size=False)
    return p


def run(args: argparse.Namespace) -> None:
    options.check_resources(args)
    cfg = config_from_args(args)
    for fold in args.folds:
        held_out_split(fold)
    task = options.task_of(args)
    options.check_pair(args, task)
    for what, xs in (("--folds", args.folds), ("--models", args.models or [])):
        if len(set(xs)) != len(xs):
            raise UsageError(f"{what} lists {next(x for x in xs if xs.count(x) > 1)} twice")
    marks = signal_marks(args.npy_dir) or default_marks(cfg.n_feats)
    cfg = config_for_marks(cfg, marks, from_user=args.config is not None)
    models = args.models or list(DIFF_MODELS if task == "diff" else DEFAULT_MODELS)
    try:
        spec = RunSpec(cfg, marks=marks, task=task, arch=models[0] if task == "diff" else "chromoformer",
                       protocol=args.protocol)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    run = dict(models=models, folds=args.folds, spec=spec, num_workers=args.num_workers, device=args.device)
    if spec.cells == 2:
        t = compare_pairs(args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.output, **run)
    else:
        t = compare(args.meta, args.npy_dir, args.output, **run)
    files = CompareFiles(Path(args.output))
    comparison_plot(read_table(files.folds, UsageError, "comparison", sep="\t"), files.plot,
                    title=f"held-out performance ({task}, {len(args.folds)} folds)")
    print(t.drop(columns=["protocol"]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for name, how in zip(t.model, t.protocol, strict=True):
        print(f"{name}: trained under protocol {how}")
