"""``chromoformer`` command line: a thin layer over the library.

One table of subcommands (:data:`SUBCOMMANDS`); each names the module holding its ``build_parser`` and ``run``,
imported only when that command runs, so ``chromoformer --help`` stays fast. Errors in user input are printed as
one line (``chromoformer: error: ...``), exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from chromoformer import __version__
from chromoformer.cli.entry import run_command
from chromoformer.cli.options import HelpFormatter

# (name, module, build_parser, run, help)
SUBCOMMANDS = [
    ("train", "chromoformer.cli.train", "build_parser", "run", "train one cross-validation fold"),
    ("predict", "chromoformer.cli.predict", "build_parser", "run",
     "predict genes with one checkpoint or a fold ensemble"),
    ("evaluate", "chromoformer.cli.evaluate", "build_parser", "run",
     "pool the folds' held-out predictions: metrics and ROC/scatter plots"),
    ("compare", "chromoformer.cli.compare", "build_parser", "run",
     "train Chromoformer, its ablations and the baselines on the same folds"),
    ("interpret", "chromoformer.cli.interpret", "build_parser", "run",
     "attention, in-silico perturbation and attributions for chosen genes"),
    ("report", "chromoformer.cli.report", "build_parser", "run",
     "HTML page of a run: training curves, ROC/PR or scatter, tables"),
    ("demo", "chromoformer.cli.demo", "build_parser", "run",
     "simulate, preprocess, train, evaluate and predict on CPU"),
    ("workflow", "chromoformer.cli.workflow", "build_parser", "run", "run the snakemake workflow on a sample sheet"),
    ("preprocess", "chromoformer.cli.preprocess", "build_parser", "run",
     "preprocessing steps (annotation, labels, interactions, signals)"),
    ("export", "chromoformer.cli.export", "build_parser", "run",
     "predictions, pCRE links and attributions as bigWig/bedGraph/bedpe/interact"),
    ("verify", "chromoformer.cli.verify", "build_parser", "run",
     "recompute a checkpoint's stored validation metrics and re-predict its scores"),
    ("build-store", "chromoformer.cli.store", "build_parser", "run", "convert an npy directory into a binned store"),
    ("simulate", "chromoformer.cli.simulate", "build_parser", "run",
     "write a read-level synthetic dataset (BAMs, GTF, pcHi-C, expression)"),
    ("export-weights", "chromoformer.cli.checkpoints", "build_export_parser", "export",
     "a checkpoint's weights and run spec as .safetensors (for sharing)"),
    ("inspect", "chromoformer.cli.checkpoints", "build_inspect_parser", "inspect",
     "describe a checkpoint (ours or the original format)"),
]


def _wanted(argv: list[str] | None) -> str | None:
    """The subcommand named on the command line (None for ``--help``, ``--version``, nothing)."""
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chromoformer", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"chromoformer {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    wanted = _wanted(argv)
    for name, module, build, run, text in SUBCOMMANDS:
        sp = sub.add_parser(name, help=text, description=text, formatter_class=HelpFormatter)
        if name == wanted:
            mod = importlib.import_module(module)
            getattr(mod, build)(sp)
            sp.set_defaults(func=getattr(mod, run))
    return p


def main(argv: list[str] | None = None) -> None:
    """Run a subcommand; user errors print one line and exit 2 (an interrupt exits 130)."""
    args = sys.argv[1:] if argv is None else argv
    run_command(build_parser(args), None, args)


if __name__ == "__main__":
    main()
