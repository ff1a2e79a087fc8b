"""``chromoformer export``: predictions, pCRE links and attributions as genome-browser files.

See :mod:`chromoformer.results.tracks` for what each file holds. Inputs: the metadata csv (gene
TSSs and pCREs), a ``predict`` csv, an ``interpret`` output folder, and chromosome sizes
(``--chrom-sizes``, or ``--store`` for the contigs its manifest records) for the bigWigs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from chromoformer.data import read_metadata
from chromoformer.errors import UsageError
from chromoformer.files.io import not_an_input
from chromoformer.files.layouts import TrackFiles
from chromoformer.files.predictions import read_predictions
from chromoformer.results import tracks
from chromoformer.results.interpretation import Interpretation, read_interpretation

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
        tracks.check_bigwig_sizes(sizes, "--chrom-sizes")
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
    links = tracks.link_table(linked, link_score, it.attention if it else None, it.perturbation if it else None)
    out = Path(out)
    files = TrackFiles(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"-o {out}: cannot create the output directory ({e.strerror})") from None
    written: list[Path] = []
    if pred is not None:
        pred_genes = [g for g in genes if g.gene_id in pred.index]
        for col in [c for c in ("prediction", "prediction_sd") if c in pred]:
            iv = tracks.prediction_intervals(pred_genes, pred[col], width)
            iv = tracks.clip_to_sizes(iv, sizes) if sizes else iv
            if col == "prediction":
                written.append(tracks.write_bedgraph(iv, files.predictions_bedgraph, "chromoformer prediction",
                                                      sizes))
            if sizes:
                written.append(tracks.write_bigwig(iv, files.bigwig(col), sizes))
    if attribution is not None:
        for mark, iv in zip(it.info["marks"], attribution, strict=True):  # type: ignore[union-attr]
            written.append(tracks.write_bigwig(tracks.summed(iv), files.attribution(mark), sizes))
    written += tracks.write_links(links, out, link_score)
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
    return tracks.attribution_intervals(genes, promoter, pcre, b, it.info["w_prom"])
