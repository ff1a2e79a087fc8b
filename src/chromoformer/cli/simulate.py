"""``chromoformer simulate``: a read-level synthetic dataset (BAMs, GTF, pcHi-C, expression), or a whole hg19
genome with ``--genome-scale``."""

from __future__ import annotations

import argparse

from chromoformer.cli import options


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer simulate", description=__doc__)
    options.output(p, help="output directory")
    p.add_argument("--span-mb", type=float, default=60.0, help="Mb of real chr11 mark layout to use")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    p.add_argument("--genome-scale", action="store_true",
                   help="a whole hg19 genome: real TSSs, 23 chromosomes, ~19,000 genes, 25 M reads per mark")
    p.add_argument("--fraction", type=float, default=1.0, help="--genome-scale: this share of every chromosome")
    p.add_argument("--reads-per-mark", type=int, default=25_000_000,
                   help="--genome-scale: reads per mark at fraction 1")
    p.add_argument("--genes", type=int, default=19_000, help="--genome-scale: genes at fraction 1")
    return p


def run(args: argparse.Namespace) -> None:
    if args.genome_scale:
        from chromoformer.preprocess.simulate_genome import GenomeSimConfig, simulate_genome

        paths = simulate_genome(args.output, GenomeSimConfig(fraction=args.fraction,
                                                             reads_per_mark=args.reads_per_mark, genes=args.genes,
                                                             seed=args.seed))
    else:
        from chromoformer.preprocess.simulate import SimConfig, simulate

        paths = simulate(args.output, SimConfig(span_mb=args.span_mb, seed=args.seed))
    for k, v in paths.items():
        print(f"{k:<14} {v}")
