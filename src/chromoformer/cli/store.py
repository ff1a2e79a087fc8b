"""``chromoformer build-store``: an npy directory -> a compact pre-binned store (training builds one itself)."""

from __future__ import annotations

import argparse
import logging

from chromoformer.cli import options
from chromoformer.data.sources import build_store_from_npy
from chromoformer.errors import UsageError
from chromoformer.files.checked import not_an_input

log = logging.getLogger(__name__)


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer build-store", description=__doc__)
    p.add_argument("-d", "--npy-dir", required=True, help="directory of the original chrom:start-end.npy files")
    options.output(p, help="store directory to write")
    p.add_argument("--base", type=int, default=100, help="base bin (bp); every bin size must be a multiple")
    p.add_argument("--n-feats", type=int, default=7, help="number of marks (rows) in each npy file")
    p.add_argument("--marks", nargs="+", default=None,
                   help="names of the npy rows, in order (default: the paper's 7 marks, or mark1..markN)")
    return p


def run(args: argparse.Namespace) -> None:
    if args.marks and len(args.marks) != args.n_feats:
        raise UsageError(f"--marks names {len(args.marks)} marks but --n-feats is {args.n_feats}")
    not_an_input(args.output, [], folders=[args.npy_dir])
    s = build_store_from_npy(args.npy_dir, args.output, base=args.base, n_feats=args.n_feats, marks=args.marks)
    log.info("wrote store %s: %d regions, %d base bins of %d bp", s.path, len(s), s.sums.shape[0], s.base)
