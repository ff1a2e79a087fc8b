"""``chromoformer evaluate``: pool the folds' held-out predictions into metrics, calibration and plots."""

from __future__ import annotations

import argparse

from chromoformer.cli import options
from chromoformer.results.evaluate import evaluate


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer evaluate", description=__doc__)
    p.add_argument("--runs", nargs="+", required=True, help="val_predictions.csv of each fold")
    options.output(p, help="output directory")
    p.add_argument("--temperature", action="store_true",
                   help="classifier: fit temperature scaling (cross-fitted ECE; temperature.json for predict)")
    return p


def run(args: argparse.Namespace) -> None:
    m = evaluate(args.runs, args.output, args.temperature)
    print(m.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
