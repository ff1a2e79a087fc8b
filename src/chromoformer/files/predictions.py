"""The predictions table (``chromoformer predict -o``): its one schema, its writer and its checked reader.

The file's suffix picks the format (:mod:`chromoformer.files.frames`): ``.csv`` (any other suffix too), ``.parquet``
with the same columns, or ``.h5ad`` (AnnData: genes as observations annotated with ``chrom``, ``tss``, ``strand``
and ``split`` from the metadata, the numeric columns below as variables of ``X``, ``call`` in ``obs``). All three
hold the same numbers, the csv's 7 significant digits.

| column | task | meaning |
|---|---|---|
| ``gene_id`` | both | the metadata's gene id |
| ``logit_0``, ``logit_1`` | clf | the two logits, averaged over the checkpoints |
| ``prediction`` | both | P(expressed) (clf) or predicted log2(RPKM + 1) (reg) |
| ``prediction_sd`` | both, 2+ checkpoints | sample sd over the checkpoints of each one's own prediction |
| ``margin_sd`` | clf, 2+ checkpoints | the same for logit_1 - logit_0 |
| ``expr_a``, ``expr_b`` | diff | each cell's predicted log2(RPKM + 1) (the pair model's per-cell heads) |
| ``lfc`` | diff | predicted log2((RPKM_B + 1) / (RPKM_A + 1)) |
| ``call`` | diff | ``up``, ``down`` or ``unchanged``: ``lfc`` >= threshold, <= -threshold, or between |
| ``lfc_sd`` | diff, 2+ checkpoints | sample sd over the checkpoints of each one's ``lfc`` |
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chromoformer.errors import UsageError
from chromoformer.files.checked import numeric_column
from chromoformer.files.frames import read_frame, write_frame

GENE_ID = "gene_id"
PREDICTION = "prediction"
LOGITS = ("logit_0", "logit_1")
SPREAD = ("prediction_sd", "margin_sd", "lfc_sd")
COLUMNS = {"clf": (GENE_ID, *LOGITS, PREDICTION), "reg": (GENE_ID, PREDICTION),
           "diff": (GENE_ID, "expr_a", "expr_b", "lfc", "call")}
CALLS = {1: "up", -1: "down", 0: "unchanged"}
# A run's held-out table (val_predictions.csv): gene id, the target named by what it is (the 0/1 label, the
# log2(RPKM + 1) expression or the log2 fold change) and the score; a pair model's also each cell's predicted
# log2(RPKM + 1). Runs of earlier versions named every target 'label'; readers accept that too.
VAL_TARGET = {"clf": "label", "reg": "expression", "diff": "lfc"}


def val_columns(task: str) -> tuple[str, str, str]:
    """gene id, target and score columns of a ``task`` run's val_predictions.csv."""
    return (GENE_ID, VAL_TARGET[task], "score")
VAL_PAIR_COLUMNS = ("pred_expr_a", "pred_expr_b")


def check_columns(df: pd.DataFrame, where: str) -> None:
    """``df`` holds one task's columns, in the schema's order, and the spreads only together with them."""
    cols = tuple(df.columns)
    base = next((c for c in COLUMNS.values() if cols[:len(c)] == c), None)
    if base is None or any(c not in SPREAD for c in cols[len(base):]):
        raise UsageError(f"{where}: columns {', '.join(cols)} are not a predictions table "
                         f"(expected {' or '.join(', '.join(c) for c in COLUMNS.values())}, then "
                         f"{' / '.join(SPREAD)} for an ensemble)")


GENE_ANNOTATION = ("chrom", "tss", "strand", "split")  # an h5ad's observation columns, from the metadata


def write_predictions(df: pd.DataFrame, path: str | Path, *, genes: pd.DataFrame | None = None) -> Path:
    """Write a predictions table atomically in the format of ``path``'s suffix; refuses a frame that does not
    follow the schema. ``genes``: the genes' :data:`GENE_ANNOTATION` by ``gene_id`` (kept in an h5ad's ``obs``)."""
    check_columns(df, str(path))
    obs = genes.set_index(GENE_ID)[list(GENE_ANNOTATION)] if genes is not None else None
    return write_frame(df, path, index=GENE_ID, obs=obs, uns={"written_by": "chromoformer predict"})


def value_columns(pred: pd.DataFrame) -> tuple[str, str]:
    """The column a track draws and its spread: ``prediction``/``prediction_sd``, or a differential table's
    ``lfc``/``lfc_sd``."""
    return (PREDICTION, "prediction_sd") if PREDICTION in pred else ("lfc", "lfc_sd")


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A predictions table (csv, parquet or h5ad; one cell's or a differential one), checked: the gene id and
    prediction (or fold change) columns, finite values, spreads >= 0, one row per gene. Indexed by gene id (the
    column is kept)."""
    pred = read_frame(path, UsageError, "predictions table", dtype={GENE_ID: str})
    if GENE_ID not in pred or (PREDICTION not in pred and "lfc" not in pred):
        raise UsageError(f"{path}: expected a 'chromoformer predict' table ({GENE_ID}, ..., {PREDICTION} or lfc)")
    pred[GENE_ID] = pred[GENE_ID].astype(str)
    for col in [c for c in (PREDICTION, *LOGITS, *SPREAD, "expr_a", "expr_b", "lfc") if c in pred]:
        pred[col] = numeric_column(pred, col, path, UsageError, minimum=0 if col in SPREAD else None)
    dup = pred[GENE_ID][pred[GENE_ID].duplicated()]
    if len(dup):
        raise UsageError(f"{path}: gene {dup.iloc[0]} has more than one prediction")
    return pred.set_index(GENE_ID, drop=False)
