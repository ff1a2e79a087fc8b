"""Genome-browser files: predictions, pCRE links and attributions (IGV / UCSC conventions).

* Predictions (``predictions.bedGraph``, ``prediction.bw``, ``prediction_sd.bw`` for an
  ensemble): each gene covers TSS +- ``width``/2, cut at the midpoint between neighbouring
  TSSs so that no two genes overlap; genes sharing a TSS show their mean.
* pCRE links (``pcre_links.bedpe``, ``pcre_links.interact``): one line per gene and pCRE,
  from the pCRE to the TSS (1 bp), scored by the pcHi-C ``interaction`` frequency, the
  regulation ``attention`` (promoter token to the pCRE, mean over bin sizes, layers and
  heads) or the in-silico ``drop`` effect (score change when the pCRE is removed). The
  interact file is UCSC's bed5+13 ``interact`` format, directional, score 0..1000 scaled
  from |value|. (bigInteract needs UCSC's bedToBigBed, which no pip or Debian package has.)
* Attributions (``attribution.{mark}.bw``): each bin of the finest resolution at its genomic
  position (minus-strand promoters mirrored back); where genes overlap the values add up.

bigWig files need chromosome sizes: a chrom-sizes file, or the ``contigs`` a binned store's
manifest records. Every interval is checked against them; files are written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.metadata import Gene
from chromoformer.errors import UsageError
from chromoformer.files.io import atomic_path, write_text
from chromoformer.files.layouts import TrackFiles
from chromoformer.files.names import check_label, track_text

Intervals = pd.DataFrame  # chrom, start, end, value


BIGWIG_MAX_SIZE = 2**32  # bigWig stores chromosome sizes and positions as uint32


def _sorted(df: Intervals, sizes: dict[str, int] | None) -> Intervals:
    order = {c: i for i, c in enumerate(sizes)} if sizes else {c: i for i, c in enumerate(sorted(set(df.chrom)))}
    return df.assign(_o=df.chrom.map(order)).sort_values(["_o", "start"]).drop(columns="_o").reset_index(drop=True)


def prediction_intervals(genes: Sequence[Gene], values: pd.Series, width: int = 1000) -> Intervals:
    """Non-overlapping (chrom, start, end, value) per TSS: see the module docstring. ``values`` by gene id."""
    if width < 2:
        raise UsageError(f"--width must be >= 2 bp, got {width}")
    missing = [g.gene_id for g in genes if g.gene_id not in values.index]
    if missing:
        raise UsageError(f"{len(missing)} gene(s) of the metadata have no prediction (e.g. {missing[0]})")
    df = pd.DataFrame({"chrom": [g.chrom for g in genes], "tss": [g.tss for g in genes],
                       "value": [float(values[g.gene_id]) for g in genes]})
    df = df.groupby(["chrom", "tss"], as_index=False, sort=True).value.mean()
    rows = []
    for chrom, g in df.groupby("chrom", sort=True):
        t = g.tss.to_numpy()
        mid = (t[:-1] + t[1:] + 1) // 2  # boundary between neighbours
        lo = np.maximum(t - width // 2, np.r_[0, mid])
        hi = np.minimum(t + width - width // 2, np.r_[mid, np.iinfo(np.int64).max])
        rows.append(pd.DataFrame({"chrom": chrom, "start": lo, "end": hi, "value": g.value.to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def summed(df: Intervals) -> Intervals:
    """Overlapping intervals -> non-overlapping ones holding the sum of the values covering them."""
    out = []
    for chrom, g in df.groupby("chrom", sort=False):
        edges = np.unique(np.r_[g.start.to_numpy(), g.end.to_numpy()])
        acc = np.zeros(len(edges))
        np.add.at(acc, np.searchsorted(edges, g.start.to_numpy()), g.value.to_numpy())
        np.add.at(acc, np.searchsorted(edges, g.end.to_numpy()), -g.value.to_numpy())
        level = np.cumsum(acc)[:-1]
        cover = np.zeros(len(edges))
        np.add.at(cover, np.searchsorted(edges, g.start.to_numpy()), 1)
        np.add.at(cover, np.searchsorted(edges, g.end.to_numpy()), -1)
        keep = np.cumsum(cover)[:-1] > 0
        out.append(pd.DataFrame({"chrom": chrom, "start": edges[:-1][keep], "end": edges[1:][keep],
                                 "value": level[keep]}))
    return pd.concat(out, ignore_index=True) if out else df.iloc[:0]


def check_in_sizes(df: Intervals, sizes: dict[str, int], what: str) -> None:
    unknown = sorted(set(df.chrom) - set(sizes))
    if unknown:
        raise UsageError(f"{what}: chromosome {unknown[0]} is not in the chromosome sizes "
                         f"({', '.join(list(sizes)[:3])}...); check the naming and assembly")
    past = df[df.end.to_numpy() > df.chrom.map(sizes).to_numpy()]
    if len(past):
        r = past.iloc[0]
        raise UsageError(f"{what}: {r.chrom}:{r.start}-{r.end} runs past the end of {r.chrom} ({sizes[r.chrom]} bp); "
                         "are the sizes of the same assembly?")


def clip_to_sizes(df: Intervals, sizes: dict[str, int]) -> Intervals:
    ends = np.minimum(df.end.to_numpy(), df.chrom.map(sizes).to_numpy())
    df = df.assign(end=ends)
    return df[df.end > df.start]


def write_bedgraph(df: Intervals, path: str | Path, name: str, sizes: dict[str, int] | None = None) -> Path:
    df = _sorted(df, sizes)
    lines = [f'track type=bedGraph name="{track_text(name)}" visibility=full']
    lines += [_fields((c, s, e, float(v)), Path(path)) for c, s, e, v in
              df[["chrom", "start", "end", "value"]].itertuples(False)]
    write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def check_bigwig_sizes(sizes: dict[str, int], where: str) -> None:
    """Every size fits bigWig's uint32 positions, else :class:`UsageError` naming the chromosome."""
    big = [(c, n) for c, n in sizes.items() if not 0 < int(n) < BIGWIG_MAX_SIZE]
    if big:
        raise UsageError(f"{where}: chromosome {big[0][0]} size {big[0][1]} is outside bigWig's 32-bit range "
                         f"(1..{BIGWIG_MAX_SIZE - 1}); check the chromosome sizes file")


def write_bigwig(df: Intervals, path: str | Path, sizes: dict[str, int]) -> Path:
    """Non-overlapping intervals -> bigWig (header in ``sizes`` order; temp file + rename)."""
    import pyBigWig

    check_bigwig_sizes(sizes, str(path))
    check_in_sizes(df, sizes, str(path))
    df = _sorted(df, sizes)
    with atomic_path(path) as tmp:  # a file Python could create: pyBigWig crashes on one it cannot open
        bw = pyBigWig.open(str(tmp), "w")
        if bw is None:
            raise UsageError(f"{path}: pyBigWig cannot write {tmp}")
        try:
            bw.addHeader([(c, int(n)) for c, n in sizes.items()])
            if len(df):
                bw.addEntries(df.chrom.astype(str).tolist(), df.start.astype(int).tolist(),
                              ends=df.end.astype(int).tolist(), values=df.value.astype(float).tolist())
        finally:
            bw.close()
    return Path(path)


def link_table(genes: Sequence[Gene], score: str = "interaction", attention: pd.DataFrame | None = None,
               perturbation: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (gene, pCRE): the pCRE, the TSS and the link's value (see the module docstring)."""
    if score == "attention":
        if attention is None:
            raise UsageError("--link-score attention needs the interpretation's attention.tsv")
        val = attention.groupby(["gene_id", "pcre"]).weight.mean()
    elif score == "drop":
        if perturbation is None:
            raise UsageError("--link-score drop needs the interpretation's perturbation.tsv")
        d = perturbation[perturbation.perturbation == "drop_pcre"]
        val = d.set_index(["gene_id", d.target.str.removeprefix("pcre").astype(int)]).delta
    elif score != "interaction":
        raise UsageError(f"--link-score must be interaction, attention or drop, got {score!r}")
    rows = []
    for g in genes:
        for j, (r, f) in enumerate(zip(g.pcres, g.scores, strict=True)):
            v = f if score == "interaction" else val.get((g.gene_id, j), math.nan)
            if not math.isnan(v):
                rows.append((r.chrom, r.start, r.end, g.chrom, g.tss, g.tss + 1, f"{g.gene_id}:pcre{j}", v, g.strand,
                             g.gene_id, f"pcre{j}"))
    return pd.DataFrame(rows, columns=["chrom1", "start1", "end1", "chrom2", "start2", "end2", "name", "value",
                                       "strand2", "gene_id", "pcre"])


def _fields(row: Sequence[object], path: Path) -> str:
    """One tab-separated line; a text field holding a TAB, newline or other control character (a
    gene id made by hand, not read from a metadata csv, which refuses them) is an error, never a
    silently split row."""
    for v in row:
        if isinstance(v, str):
            check_label(v, "field", str(path), UsageError)
    return "\t".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row)


def write_links(links: pd.DataFrame, out: Path, score: str) -> tuple[Path, Path]:
    """``pcre_links.bedpe`` (pCRE, TSS) and UCSC ``pcre_links.interact``, both sorted by position."""
    links = links.sort_values(["chrom1", "start1", "start2"]).reset_index(drop=True)
    files = TrackFiles(out)
    bedpe = [f'# bedpe: pCRE -> TSS, score = {score}']
    bedpe += [_fields((r.chrom1, r.start1, r.end1, r.chrom2, r.start2, r.end2, r.name, float(r.value), ".", r.strand2),
                      files.links_bedpe) for r in links.itertuples()]
    top = float(links.value.abs().max()) if len(links) else 1.0
    rows = []
    for r in links.itertuples():
        lo, hi = min(r.start1, r.start2), max(r.end1, r.end2)
        s = int(round(1000 * abs(r.value) / top)) if top > 0 else 0
        rows.append((r.chrom1, lo, hi, r.name, s, float(r.value), score, "0", r.chrom1, r.start1, r.end1, r.pcre,
                     ".", r.chrom2, r.start2, r.end2, r.gene_id, r.strand2))
    rows.sort(key=lambda x: (x[0], x[1]))
    inter = [f'track type=interact name="chromoformer pCREs" description="pCRE -> TSS links, {score}" '
             "interactDirectional=true visibility=full"]
    inter += [_fields(row, files.links_interact) for row in rows]
    write_text(files.links_bedpe, "\n".join(bedpe) + "\n")
    write_text(files.links_interact, "\n".join(inter) + "\n")
    return files.links_bedpe, files.links_interact


def attribution_intervals(genes: Sequence[Gene], promoter: np.ndarray, pcre: np.ndarray, b: int, w_prom: int,
                          ) -> list[Intervals]:
    """Per mark, the (chrom, start, end, value) of every valid bin. ``promoter`` (G, nb, F), ``pcre``
    (G, i_max, nb, F): one resolution of :func:`chromoformer.inference.interpret.attributions` for ``genes``."""
    nb, n_feats = promoter.shape[1], promoter.shape[2]
    rows: list[list[tuple]] = [[] for _ in range(n_feats)]

    def place(chrom: str, start: int, end: int, frame: np.ndarray, flip: bool) -> None:
        n = math.ceil((end - start) / b)
        left = math.ceil((nb - n) / 2)
        for i in range(n):
            j = (nb - 1 - (left + i)) if flip else left + i
            s, e = start + i * b, min(start + (i + 1) * b, end)
            for m in range(n_feats):
                rows[m].append((chrom, s, e, float(frame[j, m])))

    for k, g in enumerate(genes):
        place(g.chrom, g.tss - w_prom // 2, g.tss + w_prom // 2, promoter[k], g.strand == "-")
        for j, r in enumerate(g.pcres):
            place(r.chrom, r.start, r.end, pcre[k, j], False)
    return [pd.DataFrame(r, columns=["chrom", "start", "end", "value"]) for r in rows]
