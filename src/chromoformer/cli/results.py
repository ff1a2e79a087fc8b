"""``chromoformer evaluate``: pool the folds' held-out predictions into metrics, calibration and plots.

``chromoformer report``: an HTML page of a run (training curves, ROC/PR or scatter, calibration, tables).

``chromoformer export``: predictions, pCRE links and attributions as bigWig/bedGraph/bedpe/interact files.

``chromoformer interpret``: attention, in-silico perturbation and attributions for chosen genes.

Writes attention.tsv, perturbation.tsv, attributions.npz, interpret.json and per-gene PNGs into ``-o``. With a
differential checkpoint (``--task diff``) and cell B's ``--meta-b``/``--npy-dir-b`` it explains the predicted fold
change by each cell's marks and pCREs (difference.tsv, difference_GENE.png; -m/-d are cell A's).
"""

from __future__ import annotations

import argparse
import logging

from chromoformer.cli import command_help, options
from chromoformer.config import LIMITS
from chromoformer.data.marks import parse_mark_map
from chromoformer.diff.explanation import interpret_pair
from chromoformer.errors import UsageError
from chromoformer.files.checked import not_an_input
from chromoformer.results.browser import chrom_sizes, export_tracks
from chromoformer.results.evaluate import evaluate
from chromoformer.results.interpretation import interpret
from chromoformer.results.report import report


def build_evaluate_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer evaluate", description=command_help("evaluate"))
    p.add_argument("--runs", nargs="+", required=True, help="val_predictions.csv of each fold")
    options.output(p, help="output directory")
    p.add_argument("--temperature", action="store_true",
                   help="classifier: fit temperature scaling (cross-fitted ECE; temperature.json for predict)")
    options.parquet(p)
    return p


def run_evaluate(args: argparse.Namespace) -> None:
    m = evaluate(args.runs, args.output, args.temperature, parquet=args.parquet)
    print(m.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def build_report_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer report", description=command_help("report"))
    p.add_argument("run_dir", help="a run directory written by chromoformer train -o")
    p.add_argument("--interpretation", default=None, help="a folder written by chromoformer interpret: per-gene pages")
    return p


def run_report(args: argparse.Namespace) -> None:
    print(report(args.run_dir, args.interpretation))


log = logging.getLogger(__name__)


def build_export_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer export", description=command_help("export"))
    options.meta(p, help="metadata csv (TSSs and pCREs)")
    options.output(p, help="output directory")
    p.add_argument("--predictions", default=None, help="csv written by chromoformer predict")
    p.add_argument("--interpretation", default=None, help="folder written by chromoformer interpret")
    p.add_argument("--chrom-sizes", default=None, help="chrom<TAB>size file (for the bigWigs)")
    options.store(p, help="binned store whose manifest gives the chromosome sizes")
    p.add_argument("--width", type=int, default=1000, help="bp drawn around each TSS for its prediction")
    p.add_argument("--link-score", choices=("interaction", "attention", "drop"), default="interaction",
                   help="pCRE link value: pcHi-C frequency, regulation attention, or in-silico drop effect")
    return p


def run_export(args: argparse.Namespace) -> None:
    if args.predictions is None and args.interpretation is None and args.link_score == "interaction":
        log.info("only pCRE links from the metadata (pass --predictions / --interpretation for more)")
    not_an_input(args.output, [args.chrom_sizes], folders=[args.store])
    export_tracks(args.meta, args.output, predictions=args.predictions, interpretation=args.interpretation,
                  sizes=chrom_sizes(args.chrom_sizes, args.store), width=args.width, link_score=args.link_score)


def build_interpret_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer interpret", description=command_help("interpret"))
    options.meta(p)
    options.signal(p)
    options.checkpoints(p, several=False)
    options.output(p, help="output directory")
    p.add_argument("--genes", nargs="*", default=None,
                   help=f"gene ids (default: the first 8; at most {LIMITS['interpret_genes']})")
    p.add_argument("--ig-steps", type=int, default=0,
                   help=f"integrated-gradients steps, 0..{LIMITS['ig_steps']} (0: gradient x input)")
    p.add_argument("--method", default=None,
                   choices=("gradient-x-input", "integrated-gradients", "deeplift", "feature-ablation"),
                   help="attribution method (default: gradient x input, or integrated gradients with --ig-steps); "
                        "deeplift and feature-ablation use Captum")
    p.add_argument("--score-delta", type=float, default=1.0, help="interaction-score shift for perturbation")
    options.mark_map(p)
    options.pair(p)
    options.precision(p)
    return p


def run_interpret(args: argparse.Namespace) -> None:
    if args.meta_b is not None or args.npy_dir_b is not None:
        options.check_pair(args, "diff", unsupported=("mark_map",))
        if args.precision != "fp32":
            raise UsageError("--precision: a differential interpretation runs in fp32; drop the flag")
        if args.method in ("deeplift", "feature-ablation"):
            raise UsageError(f"--method {args.method}: a differential (two-cell) interpretation explains the fold "
                             "change by gradient x input or integrated gradients (--ig-steps); the Captum methods "
                             "take one cell's model")
        if args.method == "integrated-gradients" and args.ig_steps < 1:
            raise UsageError("--method integrated-gradients needs --ig-steps >= 1")
        if args.method == "gradient-x-input":
            args.ig_steps = 0
        interpret_pair(args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.checkpoint, args.output,
                       genes=args.genes, ig_steps=args.ig_steps, score_delta=args.score_delta)
        return
    interpret(args.meta, args.npy_dir, args.checkpoint, args.output, genes=args.genes, ig_steps=args.ig_steps,
              method=args.method, score_delta=args.score_delta, mark_map=parse_mark_map(args.mark_map),
              precision=args.precision)
