"""Expression table -> ``expression`` and ``label`` columns, and the final metadata csv.

The table is genes x samples (first column = gene id, one column per sample, RPKM or
TPM). Gene ids are matched without Ensembl version suffixes (ENSG...15 == ENSG...).
``label = 1`` when the gene's value is >= the median over the genes kept (SPEC §5.2).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import ExpressionError
from chromoformer.io import read_table, require_file

log = logging.getLogger(__name__)

METADATA_COLUMNS = ["gene_id", "label", "expression", "eid", "chrom", "start", "end", "strand", "split",
                    "neighbors", "scores"]


def _unversioned(ids: pd.Series) -> pd.Series:
    return ids.astype(str).str.replace(r"\.\d+$", "", regex=True)


def add_labels(genes: pd.DataFrame, expression: str | Path, column: str) -> pd.DataFrame:
    """Keep genes present in the table and add ``expression`` and ``label``."""
    path = require_file(expression, "expression table", ExpressionError)
    sep = "," if path.name.lower().endswith((".csv", ".csv.gz")) else "\t"
    tab = read_table(path, ExpressionError, "expression table", sep=sep)
    if column not in tab.columns:
        raise ExpressionError(f"{path}: no column {column!r}; columns are {', '.join(map(str, tab.columns[1:6]))}...")
    raw = pd.to_numeric(tab[column], errors="coerce")
    bad = ~np.isfinite(raw.to_numpy(dtype=float)) | (raw.to_numpy(dtype=float) < 0)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ExpressionError(f"{path}:{i + 2}: gene {tab.iloc[i, 0]}: expression {tab[column].iloc[i]!r} in column "
                              f"{column!r} is not a finite number >= 0 (remove the gene or fill in its value)")
    values = pd.Series(raw.to_numpy(dtype=float), index=_unversioned(tab.iloc[:, 0]))
    if values.index.duplicated().any():
        dup = values.index[values.index.duplicated()][0]
        raise ExpressionError(f"{path}: gene {dup} appears twice")
    key = _unversioned(genes.gene_id)
    kept = genes[key.isin(values.index).to_numpy()].copy()
    if kept.empty:
        raise ExpressionError(f"{path}: none of the {len(genes)} annotated genes is in the table "
                              f"(e.g. {genes.gene_id.iloc[0]} vs {values.index[0]})")
    log.info("%d of %d annotated genes have expression in %s", len(kept), len(genes), column)
    kept["expression"] = values.loc[_unversioned(kept.gene_id)].to_numpy()
    median = kept.expression.median()
    kept["label"] = (kept.expression >= median).astype(int)
    if kept.label.nunique() < 2 or median <= 0:
        raise ExpressionError(f"{path}: column {column!r}: the median expression of the {len(kept)} genes is "
                              f"{median:g}, so the >= median rule puts every gene in one class; check the column, "
                              "or use normalised values (RPKM/TPM) rather than sparse counts")
    return kept


def assemble_metadata(genes: pd.DataFrame, eid: str) -> pd.DataFrame:
    """Genes with labels and neighbours -> the original metadata columns."""
    out = genes.assign(eid=eid)
    return out[METADATA_COLUMNS].reset_index(drop=True)
