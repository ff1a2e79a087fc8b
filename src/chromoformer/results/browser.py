"""Genome-browser files: predictions, pCRE links and attributions (IGV / UCSC conventions).

* Predictions (``predictions.bedGraph``, ``prediction.bw``, ``prediction_sd.bw`` for an ensemble): each gene
  covers TSS +- ``width``/2, cut at the midpoint between neighbouring TSSs so that no two genes overlap; genes
  sharing a TSS show their mean. A differential table draws its ``lfc`` (and ``lfc_sd``).
* pCRE links (``pcre_links.bedpe``, ``pcre_links.interact``): one line per gene and pCRE, from the pCRE to the
  TSS (1 bp), scored by the pcHi-C ``interaction`` frequency, the regulation ``attention`` (promoter token to the
  pCRE, mean over bin sizes, layers and heads) or the in-silico ``drop`` effect (score change when the pCRE is
  removed). The interact file is UCSC's bed5+13 ``interact``, directional, score 0..1000 scaled from |value|.
  With chromosome sizes also as bigInteract, and the predictions as bigBed (:mod:`chromoformer.results.bigbed`).
* Attributions (``attribution.{mark}.bw``): each bin of the finest resolution at its genomic position
  (minus-strand promoters mirrored back); where genes overlap the values add up.

bigWig files need chromosome sizes: a chrom-sizes file, or the ``contigs`` a binned store's manifest records.
Every interval is checked against them; files are written atomically. :func:`export_tracks` (``chromoformer
export``) writes them from the metadata csv, a ``predict`` table, an ``interpret`` folder and the sizes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data import read_metadata
from chromoformer.data.metadata import Gene
from chromoformer.errors import UsageError
from chromoformer.files.atomic import atomic_path, write_text
from chromoformer.files.checked import not_an_input
from chromoformer.files.layouts import TrackFiles
from chromoformer.files.names import check_label, track_text
from chromoformer.files.predictions import read_predictions, value_columns
from chromoformer.results.bigbed import have_pybigtools, write_biginteract, write_prediction_bigbed
from chromoformer.results.interpretation import Interpretation, read_interpretation

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


def interact_rows(links: pd.DataFrame, score: str) -> list[tuple]:
    """UCSC ``interact`` (bed5+13) records of :func:`link_table`'s links, sorted by position."""
    top = float(links.value.abs().max()) if len(links) else 1.0
    rows = []
    for r in links.itertuples():
        lo, hi = min(r.start1, r.start2), max(r.end1, r.end2)
        s = int(round(1000 * abs(r.value) / top)) if top > 0 else 0
        rows.append((r.chrom1, lo, hi, r.name, s, float(r.value), score, "0", r.chrom1, r.start1, r.end1, r.pcre,
                     ".", r.chrom2, r.start2, r.end2, r.gene_id, r.strand2))
    rows.sort(key=lambda x: (x[0], x[1]))
    return rows


def write_links(links: pd.DataFrame, out: Path, score: str) -> tuple[Path, Path]:
    """``pcre_links.bedpe`` (pCRE, TSS) and UCSC ``pcre_links.interact``, both sorted by position."""
    links = links.sort_values(["chrom1", "start1", "start2"]).reset_index(drop=True)
    files = TrackFiles(out)
    bedpe = [f'# bedpe: pCRE -> TSS, score = {score}']
    bedpe += [_fields((r.chrom1, r.start1, r.end1, r.chrom2, r.start2, r.end2, r.name, float(r.value), ".", r.strand2),
                      files.links_bedpe) for r in links.itertuples()]
    rows = interact_rows(links, score)
    inter = [f'track type=interact name="chromoformer pCREs" description="pCRE -> TSS links, {score}" '
             "interactDirectional=true visibility=full"]
    inter += [_fields(row, files.links_interact) for row in rows]
    write_text(files.links_bedpe, "\n".join(bedpe) + "\n")
    write_text(files.links_interact, "\n".join(inter) + "\n")
    return files.links_bedpe, files.links_interact


def attribution_intervals(genes: Sequence[Gene], promoter: np.ndarray, pcre: np.ndarray, b: int, w_prom: int,
                          ) -> list[Intervals]:
    """Per mark, the (chrom, start, end, value) of every valid bin. ``promoter`` (G, nb, F), ``pcre``
    (G, i_max, nb, F): one resolution of :func:`chromoformer.inference.attribution.attributions` for ``genes``."""
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


log = logging.getLogger(__name__)


def chrom_sizes(path: str | Path | None = None, store: str | Path | None = None) -> dict[str, int] | None:
    """Sizes from a chrom-sizes file or a store's manifest (``contigs``); None if neither is given."""
    if path is not None:
        from chromoformer.data.genome import read_chrom_sizes

        return read_chrom_sizes(path)
    if store is not None:
        from chromoformer.data.store import BinnedStore

        contigs = BinnedStore(store, verify=False).manifest.get("contigs") or {}
        if not contigs:
            raise UsageError(f"{store}: its manifest records no chromosome sizes (a store built from npy files); "
                             "pass --chrom-sizes")
        return {str(c): int(n) for c, n in contigs.items()}
    return None


def export_tracks(meta: str | Path, out: str | Path, *, predictions: str | Path | None = None,
                  interpretation: str | Path | None = None, sizes: dict[str, int] | None = None,
                  width: int = 1000, link_score: str = "interaction") -> list[Path]:
    """Write the browser files the inputs allow into ``out``; returns their paths. Every input is
    read and checked before the first file is written."""
    if width < 1:
        raise UsageError(f"--width must be >= 1 bp (drawn around each TSS), got {width}")
    not_an_input(out, [meta, predictions], folders=[interpretation])
    if sizes is not None:
        check_bigwig_sizes(sizes, "--chrom-sizes")
    genes = read_metadata(meta)
    pred = _predictions(predictions, meta, genes) if predictions is not None else None
    it = read_interpretation(interpretation, need_perturbation=True) if interpretation is not None else None
    if it is not None and it.is_pair:
        raise UsageError(f"{interpretation}: a differential (two-cell) interpretation; browser tracks are drawn "
                         "from one cell's (chromoformer interpret without --meta-b)")
    linked, attribution = genes, None
    if it is not None:
        by_id = {g.gene_id: g for g in genes}
        missing = [x for x in it.genes if x not in by_id]
        if missing:
            raise UsageError(f"{it.path}: interpreted gene {missing[0]} is not in {meta}")
        linked = [by_id[x] for x in it.genes]
        if sizes:
            attribution = _attribution_intervals(it, linked)
        else:
            log.warning("no chromosome sizes (--chrom-sizes or --store): attribution bigWigs are not written")
    if sizes:  # the genes drawn into bigWigs must lie within the sizes
        _check_sizes([g for g in genes if pred is not None and g.gene_id in pred.index]
                     + (linked if it is not None else []), sizes, meta)
    links = link_table(linked, link_score, it.attention if it else None, it.perturbation if it else None)
    out = Path(out)
    files = TrackFiles(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"-o {out}: cannot create the output directory ({e.strerror})") from None
    written: list[Path] = []
    big = have_pybigtools()
    if sizes and not big:
        log.warning("pybigtools is not installed: no bigBed/bigInteract (pip install 'chromoformer-ng[bigbed]')")
    if pred is not None:
        pred_genes = [g for g in genes if g.gene_id in pred.index]
        value, spread = value_columns(pred)
        for col in [c for c in (value, spread) if c in pred]:
            iv = prediction_intervals(pred_genes, pred[col], width)
            iv = clip_to_sizes(iv, sizes) if sizes else iv
            if col == value:
                name = "chromoformer prediction" if value == "prediction" else "chromoformer log2 fold change"
                written.append(write_bedgraph(iv, files.predictions_bedgraph, name, sizes))
            if sizes:
                written.append(write_bigwig(iv, files.bigwig(col), sizes))
        if sizes and big:
            written.append(write_prediction_bigbed(pred_genes, pred[value], files.predictions_bigbed, sizes, width))
    if attribution is not None:
        for mark, iv in zip(it.info["marks"], attribution, strict=True):  # type: ignore[union-attr]
            written.append(write_bigwig(summed(iv), files.attribution(mark), sizes))
    written += write_links(links, out, link_score)
    if sizes and big:
        written.append(write_biginteract(interact_rows(links, link_score), files.links_biginteract, sizes))
    for p in written:
        log.info("wrote %s", p)
    return written


def _predictions(path: str | Path, meta: str | Path, genes: list) -> pd.DataFrame:
    """A ``chromoformer predict`` csv, checked: finite predictions, spreads >= 0, one row per gene."""
    pred = read_predictions(path)
    ids = {g.gene_id for g in genes}
    n = sum(1 for g in genes if g.gene_id in pred.index)
    if not n:
        raise UsageError(f"{path}: none of its genes are in {meta}")
    if n < len(ids):
        log.warning("%d metadata genes have no prediction and are left out", len(ids) - n)
    return pred


def _check_sizes(genes: list, sizes: dict[str, int], meta: str | Path) -> None:
    """Every TSS and pCRE of ``genes`` lies within the chromosome sizes (else they are another assembly's)."""
    for g in genes:
        for what, chrom, end in [("TSS", g.chrom, g.tss + 1), *[("pCRE", r.chrom, r.end) for r in g.pcres]]:
            if chrom not in sizes:
                raise UsageError(f"{meta}: gene {g.gene_id}: {chrom} is not in the chromosome sizes "
                                 f"({', '.join(list(sizes)[:4])}...): sizes of another assembly or naming?")
            if end > sizes[chrom]:
                raise UsageError(f"{meta}: gene {g.gene_id}: its {what} ends at {chrom}:{end}, past the "
                                 f"chromosome's size {sizes[chrom]}: sizes of another assembly?")


def _attribution_intervals(it: Interpretation, genes: list) -> list:
    """Per mark, the attribution intervals at the finest bin size (checked against the record)."""
    b = min(it.info["binsizes"])
    promoter, pcre = it.attributions(b)
    if promoter.shape[2] != len(it.info["marks"]) or pcre.shape[3] != len(it.info["marks"]):
        raise UsageError(f"{it.path}: attributions.npz has {promoter.shape[2]} marks, interpret.json "
                         f"{len(it.info['marks'])}; re-run chromoformer interpret")
    return attribution_intervals(genes, promoter, pcre, b, it.info["w_prom"])
