"""``chromoformer interpret``: attention, in-silico perturbation and attributions for chosen genes.

Writes attention.tsv, perturbation.tsv, attributions.npz, interpret.json and per-gene PNGs into ``-o``. With a
differential checkpoint (``--task diff``) and cell B's ``--meta-b``/``--npy-dir-b`` it explains the predicted fold
change by each cell's marks and pCREs (difference.tsv, difference_GENE.png; -m/-d are cell A's).
"""

from __future__ import annotations

import argparse

from chromoformer.cli import options
from chromoformer.data.marks import parse_mark_map
from chromoformer.diff.explanation import interpret_pair
from chromoformer.results.interpretation import interpret


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer interpret", description=__doc__)
    options.meta(p)
    options.signal(p)
    options.checkpoints(p, several=False)
    options.output(p, help="output directory")
    p.add_argument("--genes", nargs="*", default=None, help="gene ids (default: the first 8)")
    p.add_argument("--ig-steps", type=int, default=0, help="integrated-gradients steps (0: gradient x input)")
    p.add_argument("--method", default=None,
                   choices=("gradient-x-input", "integrated-gradients", "deeplift", "feature-ablation"),
                   help="attribution method (default: gradient x input, or integrated gradients with --ig-steps); "
                        "deeplift and feature-ablation use Captum")
    p.add_argument("--score-delta", type=float, default=1.0, help="interaction-score shift for perturbation")
    options.mark_map(p)
    options.pair(p)
    return p


def run(args: argparse.Namespace) -> None:
    if args.meta_b is not None or args.npy_dir_b is not None:
        options.check_pair(args, "diff", unsupported=("method", "mark_map"))
        interpret_pair(args.meta, args.npy_dir, args.meta_b, args.npy_dir_b, args.checkpoint, args.output,
                       genes=args.genes, ig_steps=args.ig_steps, score_delta=args.score_delta)
        return
    interpret(args.meta, args.npy_dir, args.checkpoint, args.output, genes=args.genes, ig_steps=args.ig_steps,
              method=args.method, score_delta=args.score_delta, mark_map=parse_mark_map(args.mark_map))
