"""``chromoformer workflow``: run the packaged Snakefile on a YAML sample sheet (docs/workflow.md).

``chromoformer demo``: simulate, preprocess, train, evaluate and predict on CPU (see
:mod:`chromoformer.workflow.demo`).
"""

from __future__ import annotations

import argparse

import pandas as pd

from chromoformer import workflow
from chromoformer.cli import command_help, options
from chromoformer.errors import UsageError
from chromoformer.workflow.demo import demo


def build_workflow_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer workflow", description=command_help("workflow"))
    p.add_argument("--config", help="sample sheet YAML (see docs/workflow.md)")
    p.add_argument("--preset", choices=("roadmap",), default=None,
                   help="instead of --config: the paper's public inputs for --samples (roadmap: the 7 marks' "
                        "consolidated tagAligns, the RPKM matrix, GENCODE v19, hg19 sizes and the original's "
                        "pcHi-C of each EID's tissue), written to DIRECTORY/roadmap.samples.yaml and run")
    p.add_argument("--samples", nargs="+", default=None, metavar="EID", help="--preset roadmap: the epigenomes "
                   "(E003 E004 E005 E006 E007 E016 E066 E087 E114 E116 E118)")
    p.add_argument("--epochs", type=int, default=None, help="--preset: epochs per fold (default: the config's 10)")
    p.add_argument("--directory", default=".", help="working directory for all outputs")
    p.add_argument("--cores", default="all", help="cores snakemake may use ('all' = every core)")
    p.add_argument("--network-jobs", type=int, default=2, help="downloads at once (public files the sheet names)")
    p.add_argument("--print-snakefile", action="store_true", help="print the Snakefile path and exit")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after '--': passed to snakemake")
    return p


def run_workflow(args: argparse.Namespace) -> None:
    if args.print_snakefile:
        print(workflow.snakefile())
        return
    if args.preset and args.config:
        raise UsageError("chromoformer workflow: give --config or --preset, not both")
    if (args.samples or args.epochs is not None) and not args.preset:
        raise UsageError("chromoformer workflow: --samples and --epochs go with --preset")
    config = args.config
    if args.preset:
        if not args.samples:
            raise UsageError("chromoformer workflow --preset roadmap: name the epigenomes with --samples E003 ...")
        config = workflow.write_preset(args.preset, args.samples, args.directory, epochs=args.epochs)
    if not config:
        raise UsageError("chromoformer workflow: --config (or --preset) is required")
    workflow.run_workflow(config, directory=args.directory, cores=args.cores,
                          snakemake_args=[a for a in args.snakemake_args if a != "--"], network_jobs=args.network_jobs)
    for line in workflow.summary(args.directory):
        print(line)


def build_demo_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer demo", description=command_help("demo"))
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


def run_demo(args: argparse.Namespace) -> pd.DataFrame:
    res = demo(args.output, genes=args.genes, epochs=args.epochs, fold=args.fold, quick=args.quick,
               span_mb=args.span_mb, cores=args.cores, reference_demo=args.reference_demo)
    for part in res.summary:
        print(part)
    return res.predictions
