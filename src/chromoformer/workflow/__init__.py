"""``chromoformer workflow``: run the packaged Snakefile on a YAML sample sheet."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path


def snakefile() -> Path:
    return Path(str(resources.files("chromoformer.workflow").joinpath("Snakefile")))


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer workflow", description=__doc__)
    p.add_argument("--config", help="sample sheet YAML (see docs/workflow.md)")
    p.add_argument("--directory", default=".", help="working directory for all outputs")
    p.add_argument("--cores", default="all")
    p.add_argument("--print-snakefile", action="store_true", help="print the Snakefile path and exit")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="after '--': passed to snakemake")
    return p


def run(args: argparse.Namespace) -> None:
    if args.print_snakefile:
        print(snakefile())
        return
    if not args.config:
        raise SystemExit("chromoformer workflow: --config is required")
    exe = shutil.which("snakemake")
    if exe is None:
        raise SystemExit("snakemake is not installed: pip install 'snakemake>=9'")
    extra = [a for a in args.snakemake_args if a != "--"]
    cmd = [exe, "-s", str(snakefile()), "--configfile", str(Path(args.config).resolve()),
           "--directory", args.directory, "--cores", str(args.cores), "--rerun-incomplete", *extra]
    sys.exit(subprocess.call(cmd))
