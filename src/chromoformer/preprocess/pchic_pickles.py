"""The original's precomputed pcHi-C pickles -> an interaction table (:mod:`chromoformer.preprocess.pcres`).

The original Snakefile downloads, per tissue, ``{tissue}_frag2neighbors.pickle`` (a dict: bait fragment ->
set of interacting fragments) and ``{tissue}_pair2score.pickle`` (a dict: (bait, other) -> normalised
interaction frequency); fragments are ``chrom:start-end`` strings (docs/original.md §5.2). They are read
with the restricted unpickler (:func:`chromoformer.files.checked.read_plain_pickle`: plain data only, never
code) and written as ``bait_chrom bait_start bait_end oe_chrom oe_start oe_end score`` rows, one per pair
that has a score, sorted; what pcres then keeps (score > 1.5, length <= w_max, the top i_max) is the
original's rule applied to the original's pairs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import InteractionError
from chromoformer.files.atomic import write_table
from chromoformer.files.checked import read_plain_pickle
from chromoformer.preprocess.pcres import COLUMNS

log = logging.getLogger(__name__)

FRAGMENT = re.compile(r"([A-Za-z0-9_.]+):(\d+)-(\d+)")


def _fragment(text: object, path: Path) -> tuple[str, int, int]:
    m = FRAGMENT.fullmatch(text) if isinstance(text, str) else None
    if m is None or int(m.group(3)) <= int(m.group(2)):
        raise InteractionError(f"{path}: fragment {str(text)[:80]!r} is not chrom:start-end with start < end")
    return m.group(1), int(m.group(2)), int(m.group(3))


def pickles_to_table(frag2neighbors: str | Path, pair2score: str | Path, out: str | Path) -> int:
    """Write the interaction table of the two pickles to ``out`` (tsv, atomically); returns its rows."""
    f2n_path, p2s_path = Path(frag2neighbors), Path(pair2score)
    f2n = read_plain_pickle(f2n_path, InteractionError, "pcHi-C frag2neighbors pickle")
    p2s = read_plain_pickle(p2s_path, InteractionError, "pcHi-C pair2score pickle")
    if not isinstance(f2n, dict) or not all(isinstance(v, (set, frozenset, list, tuple)) for v in f2n.values()):
        raise InteractionError(f"{f2n_path}: expected a dict of fragment -> set of fragments")
    if not isinstance(p2s, dict) or not all(isinstance(k, tuple) and len(k) == 2 for k in p2s):
        raise InteractionError(f"{p2s_path}: expected a dict of (fragment, fragment) -> score")
    rows, unscored = [], 0
    for bait, others in f2n.items():
        b = _fragment(bait, f2n_path)
        for other in others:
            score = p2s.get((bait, other))
            if score is None:
                unscored += 1
                continue
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
                raise InteractionError(f"{p2s_path}: the score of ({bait}, {other}) is {score!r}, not a finite number")
            rows.append((*b, *_fragment(other, f2n_path), float(score)))
    if not rows:
        raise InteractionError(f"{f2n_path}: no fragment pair has a score in {p2s_path}")
    if unscored:
        log.warning("%s: %d pair(s) without a score in %s were left out", f2n_path, unscored, p2s_path)
    table = pd.DataFrame(rows, columns=COLUMNS).sort_values(COLUMNS[:6], kind="stable")
    write_table(table, out, sep="\t", float_format="%.6g")
    return len(table)
