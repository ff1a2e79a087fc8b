"""``chromoformer compare``: Chromoformer, its ablations and the baselines trained on the same folds, one table.

Held-out performance is read from each fold's last epoch (no model selection on the held-out fold): mean
per-fold and pooled AUROC (classification) or Pearson r (regression).
"""

from __future__ import annotations

import argparse

from chromoformer.cli import options
from chromoformer.cli.train import config_from_args
from chromoformer.config import default_marks
from chromoformer.data.folds import FOLDS, held_out_split
from chromoformer.data.signal import signal_marks
from chromoformer.errors import UsageError
from chromoformer.spec import RunSpec, config_for_marks
from chromoformer.training.compare import DEFAULT_MODELS, compare


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer compare", description=__doc__)
    options.meta(p)
    options.signal(p)
    options.output(p, help="directory for all runs and comparison.tsv")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help="architectures to train (see train --model)")
    p.add_argument("--folds", nargs="+", type=int, default=list(FOLDS), help="folds to train (1..4)")
    options.regression(p)
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
    for what, xs in (("--folds", args.folds), ("--models", args.models)):
        if len(set(xs)) != len(xs):
            raise UsageError(f"{what} lists {next(x for x in xs if xs.count(x) > 1)} twice")
    marks = signal_marks(args.npy_dir) or default_marks(cfg.n_feats)
    cfg = config_for_marks(cfg, marks, from_user=args.config is not None)
    spec = RunSpec(cfg, marks=marks, task="reg" if args.regression else "clf", protocol=args.protocol)
    t = compare(args.meta, args.npy_dir, args.output, models=args.models, folds=args.folds, spec=spec,
                num_workers=args.num_workers, device=args.device)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
