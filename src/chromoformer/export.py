"""``chromoformer export``: predictions, pCRE links and attributions as genome-browser files.

See :mod:`chromoformer.browser` for what each file holds. Inputs: the metadata csv (gene
TSSs and pCREs), a ``predict`` csv, an ``interpret`` output folder, and chromosome sizes
(``--chrom-sizes``, or ``--store`` for the contigs its manifest records) for the bigWigs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from chromoformer import browser
from chromoformer.data import read_metadata
from chromoformer.errors import UsageError
from chromoformer.interpretation import Interpretation, read_interpretation
from chromoformer.io import numeric_column, read_table, require_file

log = logging.getLogger(__name__)


def chrom_sizes(path: str | Path | None = None, store: str | Path | None = None) -> dict[str, int] | None:
    """Sizes from a chrom-sizes file or a store's manifest (``contigs``); None if neither is given."""
    if path is not None:
        from chromoformer.preprocess.assembly import read_chrom_sizes

        return read_chrom_sizes(path)
    if store is not None:
        from chromoformer.data.store import BinnedStore

        contigs = BinnedStore(store, verify=False).manifest.get("contigs") or {}
        if not contigs:
            raise UsageError(f"{store}: its manifest records no chromosome sizes (a store built from npy files); "
                             "pass --chrom-sizes")
        return {str(c): int(n) for c, n in contigs.items()}
    return None


def export_tracks(meta: str | Path, out: str | Path, predictions: str | Path | None = None,
                  interpretation: str | Path | None = None, sizes: dict[str, int] | None = None,
                  width: int = 1000, link_score: str = "interaction") -> list[Path]:
    """Write the browser files the inputs allow into ``out``; returns their paths. Every input is
    read and checked before the first file is written."""
    genes = read_metadata(meta)
    pred = _predictions(predictions, meta, genes) if predictions is not None else None
    it = read_interpretation(interpretation, need_perturbation=True) if interpretation is not None else None
    linked, tracks = genes, None
    if it is not None:
        by_id = {g.gene_id: g for g in genes}
        missing = [x for x in it.genes if x not in by_id]
        if missing:
            raise UsageError(f"{it.path}: interpreted gene {missing[0]} is not in {meta}")
        linked = [by_id[x] for x in it.genes]
        if sizes:
            tracks = _attribution_intervals(it, linked)
        else:
            log.warning("no chromosome sizes (--chrom-sizes or --store): attribution bigWigs are not written")
    if sizes:  # the genes drawn into bigWigs must lie within the sizes
        _check_sizes([g for g in genes if pred is not None and g.gene_id in pred.index]
                     + (linked if it is not None else []), sizes, meta)
    links = browser.link_table(linked, link_score, it.attention if it else None, it.perturbation if it else None)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"-o {out}: cannot create the output directory ({e.strerror})") from None
    written: list[Path] = []
    if pred is not None:
        pred_genes = [g for g in genes if g.gene_id in pred.index]
        for col in [c for c in ("prediction", "prediction_sd") if c in pred]:
            iv = browser.prediction_intervals(pred_genes, pred[col], width)
            iv = browser.clip_to_sizes(iv, sizes) if sizes else iv
            if col == "prediction":
                written.append(browser.write_bedgraph(iv, out / "predictions.bedGraph", "chromoformer prediction",
                                                      sizes))
            if sizes:
                written.append(browser.write_bigwig(iv, out / f"{col}.bw", sizes))
    if tracks is not None:
        for mark, iv in zip(it.info["marks"], tracks, strict=True):  # type: ignore[union-attr]
            written.append(browser.write_bigwig(browser.summed(iv), out / f"attribution.{mark}.bw", sizes))
    written += browser.write_links(links, out, link_score)
    for p in written:
        log.info("wrote %s", p)
    return written


def _predictions(path: str | Path, meta: str | Path, genes: list) -> pd.DataFrame:
    """A ``chromoformer predict`` csv, checked: finite predictions, spreads >= 0, one row per gene."""
    pred = read_table(require_file(path, "prediction csv", UsageError), UsageError, "prediction csv",
                      dtype={"gene_id": str})
    if "gene_id" not in pred or "prediction" not in pred:
        raise UsageError(f"{path}: expected a 'chromoformer predict' csv (gene_id, ..., prediction)")
    for col in [c for c in ("prediction", "prediction_sd") if c in pred]:
        pred[col] = numeric_column(pred, col, path, UsageError, minimum=0 if col == "prediction_sd" else None)
    dup = pred.gene_id[pred.gene_id.duplicated()]
    if len(dup):
        raise UsageError(f"{path}: gene {dup.iloc[0]} has more than one prediction")
    pred = pred.set_index("gene_id", drop=False)
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
    return browser.attribution_intervals(genes, promoter, pcre, b, it.info["w_prom"])


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer export", description=__doc__)
    p.add_argument("-m", "--meta", required=True, help="metadata csv (TSSs and pCREs)")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--predictions", default=None, help="csv written by chromoformer predict")
    p.add_argument("--interpretation", default=None, help="folder written by chromoformer interpret")
    p.add_argument("--chrom-sizes", default=None, help="chrom<TAB>size file (for the bigWigs)")
    p.add_argument("--store", default=None, help="binned store whose manifest gives the chromosome sizes")
    p.add_argument("--width", type=int, default=1000, help="bp drawn around each TSS for its prediction")
    p.add_argument("--link-score", choices=("interaction", "attention", "drop"), default="interaction",
                   help="pCRE link value: pcHi-C frequency, regulation attention, or in-silico drop effect")
    return p


def run(args: argparse.Namespace) -> None:
    if args.predictions is None and args.interpretation is None and args.link_score == "interaction":
        log.info("only pCRE links from the metadata (pass --predictions / --interpretation for more)")
    export_tracks(args.meta, args.out, args.predictions, args.interpretation,
                  chrom_sizes(args.chrom_sizes, args.store), args.width, args.link_score)
