"""``chromoformer report``: an HTML page of a run (training curves, ROC/PR or scatter, calibration, tables)."""

from __future__ import annotations

import argparse

from chromoformer.results.report import report


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer report", description=__doc__)
    p.add_argument("run_dir", help="a run directory written by chromoformer train -o")
    p.add_argument("--interpretation", default=None, help="a folder written by chromoformer interpret: per-gene pages")
    return p


def run(args: argparse.Namespace) -> None:
    print(report(args.run_dir, args.interpretation))
