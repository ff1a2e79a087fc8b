"""``chromoformer demo``: simulate, preprocess, train, evaluate and predict on CPU (see
:mod:`chromoformer.workflow.demo`)."""

from __future__ import annotations

import argparse

import pandas as pd

from chromoformer.cli import options
from chromoformer.workflow.demo import demo


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer demo", description=__doc__)
    options.output(p, help="output directory", required=False, default="chromoformer-demo")
    p.add_argument("--genes", type=int, default=160, help="number of synthetic genes (--quick)")
    p.add_argument("--epochs", type=int, default=6, help="epochs per fold")
    p.add_argument("--fold", type=int, default=1, help="fold trained by --quick")
    p.add_argument("--quick", action="store_true", help="in-process synthetic npy demo, no snakemake")
    p.add_argument("--span-mb", type=float, default=40.0, help="simulated genome size (full path)")
    p.add_argument("--cores", default="2", help="cores for the snakemake workflow")
    p.add_argument("--reference-demo", default=None,
                   help="folder with demo_meta.csv, demo_data/ and a checkpoint (*.pt) in the original format")
    return p


def run(args: argparse.Namespace) -> pd.DataFrame:
    res = demo(args.output, genes=args.genes, epochs=args.epochs, fold=args.fold, quick=args.quick,
               span_mb=args.span_mb, cores=args.cores, reference_demo=args.reference_demo)
    for part in res.summary:
        print(part)
    return res.predictions
