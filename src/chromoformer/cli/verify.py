"""``chromoformer verify``: recompute a checkpoint's stored validation metrics and re-predict its scores.

Prints a table of checks and exits 1 when one does not hold.
"""

from __future__ import annotations

import argparse
import math
import sys

from chromoformer.cli import options
from chromoformer.errors import UsageError
from chromoformer.inference.verify import format_report, verify


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer verify", description=__doc__)
    options.checkpoints(p, several=True, positional=True)
    options.meta(p, required=False, help="metadata csv of the fold (enables re-prediction)")
    options.signal(p, required=False)
    p.add_argument("--fold", type=int, choices=range(5), default=None, metavar="{0..4}",
                   help="the checkpoint's fold (default: stored, or 'foldN' in the file name)")
    p.add_argument("--metric-tol", type=float, default=1e-4, help="largest |stored - recomputed| metric")
    p.add_argument("--score-tol", type=float, default=1e-4, help="largest |val_score - re-predicted| score")
    options.resources(p, workers=False)
    return p


def run(args: argparse.Namespace) -> None:
    for name, tol in (("--metric-tol", args.metric_tol), ("--score-tol", args.score_tol)):
        if not (math.isfinite(tol) and tol >= 0):
            raise UsageError(f"{name} must be a finite number >= 0, got {tol}")
    options.check_resources(args)
    checks = verify(options.checkpoint_list(args, several=True), meta=args.meta, signal=args.npy_dir, fold=args.fold,
                    metric_tol=args.metric_tol, score_tol=args.score_tol, batch_size=args.batch_size,
                    device=args.device)
    print(format_report(checks))
    failed = [c for c in checks if c.ok is False]
    if failed:
        print(f"chromoformer verify: {len(failed)} check(s) do not hold", file=sys.stderr)
        sys.exit(1)
