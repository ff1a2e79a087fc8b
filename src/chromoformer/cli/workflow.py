"""``chromoformer workflow``: run the packaged Snakefile on a YAML sample sheet (docs/workflow.md)."""

from __future__ import annotations

import argparse

from chromoformer.errors import UsageError
from chromoformer.workflow import run_workflow, snakefile


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer workflow", description=__doc__)
    p.add_argument("--config", help="sample sheet YAML (see docs/workflow.md)")
    p.add_argument("--directory", default=".", help="working directory for all outputs")
    p.add_argument("--cores", default="all", help="cores snakemake may use ('all' = every core)")
    p.add_argument("--print-snakefile", action="store_true", help="print the Snakefile path and exit")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after '--': passed to snakemake")
    return p


def run(args: argparse.Namespace) -> None:
    if args.print_snakefile:
        print(snakefile())
        return
    if not args.config:
        raise UsageError("chromoformer workflow: --config is required")
    run_workflow(args.config, args.directory, args.cores, [a for a in args.snakemake_args if a != "--"])
