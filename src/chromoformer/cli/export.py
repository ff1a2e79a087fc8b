"""``chromoformer export``: predictions, pCRE links and attributions as bigWig/bedGraph/bedpe/interact files."""

from __future__ import annotations

import argparse
import logging

from chromoformer.cli import options
from chromoformer.files.checked import not_an_input
from chromoformer.results.browser import chrom_sizes, export_tracks

log = logging.getLogger(__name__)


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer export", description=__doc__)
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


def run(args: argparse.Namespace) -> None:
    if args.predictions is None and args.interpretation is None and args.link_score == "interaction":
        log.info("only pCRE links from the metadata (pass --predictions / --interpretation for more)")
    not_an_input(args.output, [args.chrom_sizes], folders=[args.store])
    export_tracks(args.meta, args.output, predictions=args.predictions, interpretation=args.interpretation,
                  sizes=chrom_sizes(args.chrom_sizes, args.store), width=args.width, link_score=args.link_score)
