"""pcHi-C (or Hi-C) contacts -> each gene's putative cis-regulatory elements (docs/original.md §5.2).

Input, tab-separated with a header, one of:

* ``bait_chrom bait_start bait_end oe_chrom oe_start oe_end score`` (0-based, half-open);
* CHiCAGO ``ibed``: ``bait_chr bait_start bait_end bait_name otherEnd_chr otherEnd_start
  otherEnd_end otherEnd_name N_reads score``.

For every TSS of a gene, the bait fragments containing it are looked up; their cis
other ends with ``score > min_score`` (default 1.5) and length <= ``w_max`` are pooled,
de-duplicated (highest score kept), and the ``i_max`` best by score (descending, ties
by position) become ``neighbors`` / ``scores``. Interactions whose other end is itself
the bait are ignored.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import DEFAULT_CONFIG
from chromoformer.data.genome import chrom_renaming
from chromoformer.errors import InteractionError
from chromoformer.files.checked import read_table, require_file, shown_cell

log = logging.getLogger(__name__)

COLUMNS = ["bait_chrom", "bait_start", "bait_end", "oe_chrom", "oe_start", "oe_end", "score"]
IBED = {"bait_chr": "bait_chrom", "otherEnd_chr": "oe_chrom", "otherEnd_start": "oe_start",
        "otherEnd_end": "oe_end"}
MIN_SCORE = 1.5  # the interaction score a pCRE must exceed (the original's cut-off)


def read_interactions(path: str | Path) -> pd.DataFrame:
    path = require_file(path, "interaction table", InteractionError)
    df = read_table(path, InteractionError, "interaction table", sep="\t").rename(columns=IBED)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InteractionError(f"{path}: missing column(s) {', '.join(missing)}; expected {' '.join(COLUMNS)} "
                               "or a CHiCAGO ibed header")
    if df.empty:
        raise InteractionError(f"{path}: the interaction table is empty")
    df = df[COLUMNS].copy()
    df["bait_chrom"], df["oe_chrom"] = df.bait_chrom.astype(str), df.oe_chrom.astype(str)  # '1' and 1 alike
    df.attrs["path"] = str(path)
    for c in ("bait_start", "bait_end", "oe_start", "oe_end", "score"):
        v = pd.to_numeric(df[c], errors="coerce")
        bad = ~np.isfinite(v.to_numpy(dtype=float))
        if c != "score":
            bad |= v.to_numpy(dtype=float) % 1 != 0
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            what = "a finite number" if c == "score" else "an integer"
            raise InteractionError(f"{path}: line {i + 2}: {c} {shown_cell(df[c].iloc[i])} is not {what}")
        df[c] = v.astype(np.int64) if c != "score" else v.astype(float)
    bad = df[(df.bait_end <= df.bait_start) | (df.oe_end <= df.oe_start) | (df.bait_start < 0) | (df.oe_start < 0)]
    if len(bad):
        raise InteractionError(f"{path}: line {bad.index[0] + 2}: empty, reversed or negative interval")
    return df


def _named_as(interactions: pd.DataFrame, gene_chroms: set[str]) -> pd.DataFrame:
    """The interactions with their chromosomes spelled as the genes' (``1`` -> ``chr1``, with a warning);
    a warning when no interaction is on any gene's chromosome (no gene gets a pCRE)."""
    src = getattr(interactions, "attrs", {}).get("path", "the interactions")
    names = set(interactions.bait_chrom.astype(str)) | set(interactions.oe_chrom.astype(str))
    rename = chrom_renaming(names, gene_chroms)
    if rename:
        shown = ", ".join(f"{a} -> {b}" for a, b in sorted(rename.items())[:5])
        log.warning("%s: chromosome names spelled as the genes' (%s%s)", src, shown, " ..." if len(rename) > 5 else "")
        interactions = interactions.assign(bait_chrom=interactions.bait_chrom.astype(str).replace(rename),
                                           oe_chrom=interactions.oe_chrom.astype(str).replace(rename))
        names = {rename.get(n, n) for n in names}
    if len(interactions) and not names & gene_chroms:
        log.warning("%s: no interaction is on a gene's chromosome (interactions name %s; genes name %s): no gene "
                    "gets a pCRE; are the files of one assembly and naming?", src, ", ".join(sorted(names)[:5]),
                    ", ".join(sorted(gene_chroms)[:5]))
    return interactions


def gene_neighbors(
    genes: pd.DataFrame, interactions: pd.DataFrame, *, min_score: float = MIN_SCORE, w_max: int = DEFAULT_CONFIG.w_max,
    i_max: int = DEFAULT_CONFIG.i_max,
) -> pd.DataFrame:
    """Add ``neighbors`` and ``scores`` columns (';'-joined, best first; empty when none) to ``genes``."""
    if not math.isfinite(min_score) or w_max < 1 or i_max < 1:
        raise InteractionError(f"--min-score must be finite, --w-max >= 1 bp and --i-max >= 1; got {min_score}, "
                               f"{w_max}, {i_max}")
    interactions = _named_as(interactions, set(genes.chrom.astype(str)))
    cis = interactions[(interactions.bait_chrom == interactions.oe_chrom) & (interactions.score > min_score)
                       & (interactions.oe_end - interactions.oe_start <= w_max)]
    cis = cis[~((cis.oe_start == cis.bait_start) & (cis.oe_end == cis.bait_end))]
    by_chrom = {c: g.sort_values("bait_start").reset_index(drop=True) for c, g in cis.groupby("bait_chrom")}
    max_bait = {c: int((g.bait_end - g.bait_start).max()) for c, g in by_chrom.items()}
    out_nb, out_sc = [], []
    for g in genes.itertuples():
        table = by_chrom.get(g.chrom)
        best: dict[tuple[int, int], float] = {}
        if table is not None:
            starts = table.bait_start.to_numpy()
            for tss in (int(t) for t in str(g.tss_all).split(";")):
                lo = np.searchsorted(starts, tss - max_bait[g.chrom], side="left")
                hi = np.searchsorted(starts, tss, side="right")
                hit = table.iloc[lo:hi]
                hit = hit[hit.bait_end > tss]
                for oe_s, oe_e, sc in zip(hit.oe_start, hit.oe_end, hit.score, strict=True):
                    key = (int(oe_s), int(oe_e))
                    best[key] = max(best.get(key, -np.inf), float(sc))
        top = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:i_max]
        out_nb.append(";".join(f"{g.chrom}:{s}-{e}" for (s, e), _ in top))
        out_sc.append(";".join(f"{sc:.6g}" for _, sc in top))
    n_with = sum(1 for x in out_nb if x)
    log.info("%d of %d genes have at least one pCRE (score > %g, <= %d bp, top %d)", n_with, len(genes),
             min_score, w_max, i_max)
    return genes.assign(neighbors=out_nb, scores=out_sc)
