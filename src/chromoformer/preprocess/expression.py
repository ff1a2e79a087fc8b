"""Expression table -> ``expression`` and ``label`` columns, and the final metadata csv.

The table is genes x samples (first column = gene id, one column per sample; csv, tsv,
GTEx .gct or featureCounts output, gzip or not, told by content; samples x genes is detected
and transposed). Values are RPKM/FPKM/TPM, or read counts (``unit="counts"``: RPKM from the
exon-union lengths, featureCounts' own ``Length`` column where the table has one, else the
annotation's). Gene ids are matched without Ensembl version suffixes
(ENSG...15 == ENSG...). ``label = 1`` when the gene's value is >= the median over the genes
kept (docs/original.md §5.2); a median of 0 (every gene in one class) is an error.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import ExpressionError
from chromoformer.files.checked import read_table, require_file, shown_cell

log = logging.getLogger(__name__)

METADATA_COLUMNS = ["gene_id", "label", "expression", "eid", "chrom", "start", "end", "strand", "split",
                    "neighbors", "scores"]


def _unversioned(ids: pd.Series) -> pd.Series:
    """Gene ids without surrounding whitespace (a trailing space from a spreadsheet) or version suffix."""
    return ids.astype(str).str.strip().str.replace(r"\.\d+$", "", regex=True)


UNITS = ("rpkm", "fpkm", "tpm", "counts")


FEATURECOUNTS = ("geneid", "chr", "start", "end", "strand", "length")  # then one column per BAM


def _separator(path: Path) -> tuple[str, int]:
    """The delimiter of a csv/tsv (gzip or not), from its content, and the rows to skip: GCT's
    2-line header, or leading '#' comment lines (featureCounts' '# Program:...' line)."""
    import gzip

    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rt") if gz else open(path)) as f:
            first = f.readline()
            skip = 0
            if first.startswith("#1."):  # GTEx .gct: '#1.2', then 'rows<TAB>columns'
                f.readline()
                first, skip = f.readline(), 2
            while first.startswith("#") and skip < 1000:
                first, skip = f.readline(), skip + 1
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ExpressionError(f"{path}: unreadable expression table ({' '.join(str(e).split())})") from None
    return ("\t" if first.count("\t") >= first.count(",") else ","), skip


def _sample_column(tab: pd.DataFrame, column: str, path: Path) -> str | None:
    """``column``, or the one column whose file name stem is ``column`` (featureCounts names its
    columns by the BAM paths it was given: ``/data/E003.bam`` for sample ``E003``)."""
    if column in tab.columns:
        return column
    stems = [c for c in map(str, tab.columns) if Path(c).name.removesuffix(".bam") in (column, f"{column}.bam")]
    if len(stems) == 1:
        log.info("%s: sample %r read from column %r", path, column, stems[0])
        return stems[0]
    return None


def read_expression(path: str | Path, column: str) -> pd.Series:
    """One sample's values by unversioned gene id from a genes x samples table (csv/tsv/gct or
    featureCounts output, gzip or not); see :func:`read_expression_table`."""
    return read_expression_table(path, column)[0]


def read_expression_table(path: str | Path, column: str) -> tuple[pd.Series, pd.Series | None]:
    """One sample's values by unversioned gene id, and the table's gene lengths where it has
    them (featureCounts' ``Length``: the exon-union length it counted over), else None.

    A samples x genes table (sample names in the first column) is transposed, with a log line.
    """
    path = require_file(path, "expression table", ExpressionError)
    sep, skip = _separator(path)
    tab = read_table(path, ExpressionError, "expression table", sep=sep, skiprows=skip)
    fc = [str(c).lower() for c in tab.columns[:6]] == list(FEATURECOUNTS)
    found = _sample_column(tab, column, path)
    if found is None:
        first = tab.iloc[:, 0].astype(str)
        if not fc and (first == column).sum() == 1:
            log.info("%s: sample %r is a row: reading the table as samples x genes", path, column)
            row = tab[first == column].iloc[0, 1:]
            tab, found = pd.DataFrame({"gene_id": tab.columns[1:], column: row.to_numpy()}), column
        else:
            samples = tab.columns[6 if fc else 1:]
            raise ExpressionError(f"{path}: no sample column (or row) {column!r}; "
                                  f"{'featureCounts ' if fc else ''}sample columns are "
                                  f"{', '.join(map(str, samples[:5]))}{'...' if len(samples) > 5 else ''}")
    raw = pd.to_numeric(tab[found], errors="coerce")
    bad = ~np.isfinite(raw.to_numpy(dtype=float)) | (raw.to_numpy(dtype=float) < 0)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ExpressionError(f"{path}:{i + 2 + skip}: gene {tab.iloc[i, 0]}: expression "
                              f"{shown_cell(tab[found].iloc[i])} "
                              f"in column {found!r} is not a finite number >= 0 (remove the gene or fill in its "
                              "value)")
    genes = _unversioned(tab.iloc[:, 0])
    padded = int((tab.iloc[:, 0].astype(str) != tab.iloc[:, 0].astype(str).str.strip()).sum())
    if padded:
        log.warning("%s: %d gene id(s) with leading or trailing spaces, matched without them", path, padded)
    values = pd.Series(raw.to_numpy(dtype=float), index=genes)
    if values.index.duplicated().any():
        raise ExpressionError(f"{path}: gene {values.index[values.index.duplicated()][0]} appears twice")
    lengths = None
    if fc:
        length = pd.to_numeric(tab.iloc[:, 5], errors="coerce")
        if not (np.isfinite(length.to_numpy(dtype=float)) & (length.to_numpy(dtype=float) > 0)).all():
            i = int(np.nonzero(~(length.to_numpy(dtype=float) > 0))[0][0])
            raise ExpressionError(f"{path}:{i + 2 + skip}: gene {tab.iloc[i, 0]}: featureCounts Length "
                                  f"{shown_cell(tab.iloc[i, 5])} is not a positive number")
        lengths = pd.Series(length.to_numpy(dtype=float), index=genes)
    return values, lengths


def normalise(values: pd.Series, unit: str, lengths: pd.Series | None, where: str) -> pd.Series:
    """Values in ``unit`` -> RPKM-like values (TPM/FPKM are kept: the median split is the same).

    Counts become RPKM = count x 1e9 / (exon-union length x total count of the table).
    """
    if unit not in UNITS:
        raise ExpressionError(f"{where}: unit must be one of {', '.join(UNITS)}, got {unit!r}")
    if unit != "counts":
        return values
    if lengths is None or lengths.isna().all():
        raise ExpressionError(f"{where}: --unit counts needs gene lengths: give an annotation with exons "
                              "(GTF/GFF3/refGene), whose genes.tsv then has a 'length' column")
    length = lengths.reindex(values.index)
    known = length.notna() & (length > 0)
    if not known.any():
        raise ExpressionError(f"{where}: no gene of the table has a length in the annotation")
    total = values.sum()
    if total <= 0:
        raise ExpressionError(f"{where}: every count is 0")
    log.info("%s: counts -> RPKM with exon-union lengths (%d genes without a length left out)", where,
             int((~known).sum()))
    return (values[known] * 1e9 / (length[known].astype(float) * total)).astype(float)


def add_labels(genes: pd.DataFrame, expression: str | Path, column: str, unit: str | None = None) -> pd.DataFrame:
    """Keep genes present in the table and add ``expression`` (RPKM-like) and ``label`` (>= median).

    ``unit``: ``rpkm``/``fpkm``/``tpm`` (used as they are) or ``counts`` (divided by the
    table's featureCounts ``Length`` column, else the genes' ``length`` column, and by the
    library size). ``None`` means counts for a featureCounts table (it holds nothing else) and
    RPKM otherwise, where a column of whole numbers only is refused as probable raw counts.
    """
    where = f"{expression} column {column!r}"
    values, table_lengths = read_expression_table(expression, column)
    if unit is None and table_lengths is not None:  # featureCounts writes read counts, nothing else
        log.info("%s: a featureCounts table: read as counts (--unit counts)", where)
        unit = "counts"
    elif unit not in (None, "counts") and table_lengths is not None:
        log.warning("%s is featureCounts output, which holds read counts, but --unit %s was given: the values are "
                    "used as %s without normalisation", where, unit, unit)
    if unit is None:
        v = values.to_numpy()
        if len(v) > 20 and np.all(v == np.round(v)) and v.max() > 100:
            raise ExpressionError(f"{where}: every value is a whole number (max {v.max():g}): these look like raw "
                                  "read counts, which the median rule cannot use as they are; pass --unit counts "
                                  "(or --unit rpkm/tpm if they really are normalised)")
        unit = "rpkm"
    lengths = None
    if table_lengths is not None:  # the lengths the counts were counted over
        lengths = table_lengths
        if unit == "counts":
            log.info("%s: RPKM with the table's own Length column (featureCounts)", where)
    elif "length" in genes.columns:
        lengths = pd.Series(pd.to_numeric(genes["length"], errors="coerce").to_numpy(),
                            index=_unversioned(genes.gene_id))
    values = normalise(values, unit, lengths, where)
    key = _unversioned(genes.gene_id)
    kept = genes[key.isin(values.index).to_numpy()].copy()
    if kept.empty:
        raise ExpressionError(f"{where}: none of the {len(genes)} annotated genes is in the table "
                              f"(e.g. {genes.gene_id.iloc[0]} vs {values.index[0]})")
    log.info("%d of %d annotated genes have expression in %s", len(kept), len(genes), column)
    if len(kept) < 0.5 * len(genes):
        lost = genes.gene_id[~key.isin(values.index).to_numpy()]
        log.warning("%s: only %d of %d annotated genes (%.0f%%) are in the table (e.g. %s is not): is it from another "
                    "annotation release or a subset of the genome? The other genes get no label and are left out",
                    where, len(kept), len(genes), 100 * len(kept) / len(genes), lost.iloc[0])
    kept["expression"] = values.loc[_unversioned(kept.gene_id)].to_numpy()
    median = kept.expression.median()
    kept["label"] = (kept.expression >= median).astype(int)
    if kept.label.nunique() < 2 or median <= 0:
        raise ExpressionError(f"{where}: the median expression of the {len(kept)} genes is {median:g}, so the "
                              ">= median rule puts every gene in one class; check the column, or use normalised "
                              "values (RPKM/TPM) rather than sparse counts")
    log.info("labels: %d expressed / %d not (median %s %.4g)", int(kept.label.sum()),
             int((kept.label == 0).sum()), "RPKM from counts" if unit == "counts" else unit.upper(), median)
    return kept


def assemble_metadata(genes: pd.DataFrame, eid: str) -> pd.DataFrame:
    """Genes with labels and neighbours -> the original metadata columns."""
    out = genes.assign(eid=eid)
    return out[METADATA_COLUMNS].reset_index(drop=True)
