"""Hi-C contacts (.cool, .mcool::resolutions/N, .hic) -> TSS-bin "interactions" scored observed/expected.

Each TSS bin is a bait; every cis bin within ``max_distance`` (and at least ``min_distance``
bins away) becomes an other end scored by its contact frequency over the expected
frequency at that distance, so the 1.5 cut-off reads "1.5x the expected".

* ``weight``: the balancing weights (a ``.cool`` bins column such as ``weight``, as ``cooler
  balance`` writes it; a ``.hic`` normalisation such as ``KR``), or ``None`` for raw counts.
  Bins whose weight is NaN are masked. Readers: :mod:`chromoformer.preprocess.hic_files`.
* expected(d) = sum of valid pixels at distance d / number of valid bin pairs at distance d,
  over each chromosome (cooltools' ``balanced.avg``: masked bins count neither as zeros
  nor as pairs).
* The pixel table is streamed in chunks, so memory does not grow with the matrix: only
  the bins table, one chunk of pixels and the per-distance sums are held.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import InteractionError
from chromoformer.preprocess.hic_files import CoolContacts, HicContacts, open_contacts
from chromoformer.preprocess.pcres import COLUMNS

log = logging.getLogger(__name__)
MAX_DISTANCE = 2_000_000  # bp between a TSS bin and an other end; beyond, Hi-C O/E is mostly noise


def interactions_from_cool(path: str | Path, genes: pd.DataFrame, *, weight: str | None = "weight",
                           max_distance: int = MAX_DISTANCE, min_distance: int = 1,
                           w_max: int | None = None, min_score: float = 0.0) -> pd.DataFrame:
    """A Hi-C file -> the bait table of :mod:`chromoformer.preprocess.pcres` (see module docstring).

    ``genes`` needs ``chrom`` and ``tss_all``. Bins larger than ``w_max`` are an error:
    every other end would be longer than a pCRE may be. Only contacts scoring above
    ``min_score`` are returned (pass the pCRE cut-off: the rest would be dropped anyway, and
    keeping them costs memory at genome scale). Two passes over the pixels: the expected
    values, then the TSS bins' observed/expected.
    """
    if not max_distance > 0 or min_distance < 0 or not math.isfinite(min_score):
        raise InteractionError(f"--max-distance must be > 0, the minimum distance >= 0 and --min-score finite; got "
                               f"{max_distance}, {min_distance}, {min_score}")
    with contextlib.closing(open_contacts(path)) as clr:
        return _from_contacts(clr, path, genes, weight, max_distance, min_distance, w_max, min_score)


def _from_contacts(clr: CoolContacts | HicContacts, path: str | Path, genes: pd.DataFrame, weight: str | None,
                   max_distance: int, min_distance: int, w_max: int | None, min_score: float) -> pd.DataFrame:
    res = clr.binsize
    if res is None:
        raise InteractionError(f"{path}: variable-size bins are not supported; use a fixed-resolution file")
    if w_max is not None and res > w_max:
        raise InteractionError(f"{path}: its bins are {res} bp, longer than w_max={w_max} bp, so no other end "
                               "can be a pCRE; use a finer resolution (e.g. FILE.mcool::resolutions/10000)")
    bins = clr.bins
    names = set(clr.chromsizes)
    chroms = [c for c in dict.fromkeys(genes.chrom.astype(str)) if c in names]
    missing = sorted(set(genes.chrom.astype(str)) - names)
    if not chroms:
        raise InteractionError(f"{path}: none of the genes' chromosomes ({', '.join(missing[:3])}...) are in the "
                               f"Hi-C file ({', '.join(list(clr.chromsizes)[:3])}...); check the naming and assembly")
    if missing:
        log.warning("%s: no contacts for %d chromosome(s) of the genes (%s...)", path, len(missing), missing[0])
    w = np.ones(len(bins)) if weight is None else clr.weights(weight)
    valid = np.isfinite(w) & (w > 0)
    k = max_distance // res
    extent = {c: clr.extent(c) for c in chroms}
    tss_bins = set()
    for c, g in genes[genes.chrom.isin(chroms)].groupby("chrom"):
        lo, size = extent[c][0], clr.chromsizes[c]
        tss = [int(t) for ts in g.tss_all for t in str(ts).split(";")]
        if max(tss) >= size:
            raise InteractionError(f"{path}: a TSS at {c}:{max(tss)} lies past the end of {c} ({size} bp in the Hi-C "
                                   "file): the genes and the contacts come from different assemblies")
        tss_bins |= {lo + t // res for t in tss}
    sums = np.zeros(len(chroms) * (k + 1))  # (chromosome, distance) flattened
    hits: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (tss bin, other bin, observed/expected)
    is_tss = np.zeros(len(bins), bool)
    is_tss[list(tss_bins)] = True
    chrom_of = np.full(len(bins), -1)
    for i, c in enumerate(chroms):
        chrom_of[extent[c][0] : extent[c][1]] = i

    def chunks():  # cis pixels between valid bins within k bins: (bin1, bin2, distance, balanced value)
        for b1, b2, count in clr.pixels(chroms, k):
            d = b2 - b1
            keep = (chrom_of[b1] >= 0) & (chrom_of[b1] == chrom_of[b2]) & (d <= k) & valid[b1] & valid[b2]
            b1, b2, d = b1[keep], b2[keep], d[keep]
            yield b1, b2, d, count[keep] * w[b1] * w[b2]

    for b1, _, d, v in chunks():  # pass 1: expected per distance
        sums += np.bincount(chrom_of[b1] * (k + 1) + d, weights=v, minlength=len(sums))
    sums = sums.reshape(len(chroms), k + 1)
    table = np.zeros((len(chroms), k + 1))
    for i, c in enumerate(chroms):
        m = valid[extent[c][0] : extent[c][1]]
        pairs = np.array([(m[: len(m) - dd] & m[dd:]).sum() if dd < len(m) else 0 for dd in range(k + 1)], float)
        with np.errstate(divide="ignore", invalid="ignore"):
            table[i] = np.where(pairs > 0, sums[i] / pairs, 0.0)
    for b1, b2, d, v in chunks():  # pass 2: observed / expected of the TSS bins' contacts above min_score
        with np.errstate(divide="ignore", invalid="ignore"):
            exp = table[chrom_of[b1], d]
            oe = np.where(exp > 0, v / exp, 0.0)
        for a, b in ((b1, b2), (b2, b1)):
            sel = (d >= min_distance) & is_tss[a] & (oe > min_score)
            hits.append((a[sel], b[sel], oe[sel]))
    t, o, oe = (np.concatenate(x) for x in zip(*hits, strict=True))
    names = pd.Categorical(bins.chrom.astype(str))
    out = pd.DataFrame({"bait_chrom": np.asarray(names[t], dtype=object), "bait_start": bins.start.to_numpy()[t],
                        "bait_end": bins.end.to_numpy()[t], "oe_chrom": np.asarray(names[o], dtype=object),
                        "oe_start": bins.start.to_numpy()[o], "oe_end": bins.end.to_numpy()[o], "score": oe})
    log.info("%s: %d TSS bins, %d cis contacts within %d bp with observed/expected > %g (%s)", path,
             len(tss_bins), len(out), max_distance, min_score, f"weights {weight!r}" if weight else "raw counts")
    return out[COLUMNS]
