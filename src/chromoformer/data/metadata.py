"""Read and validate the training/prediction metadata csv (docs/original.md §3.2).

Every problem is reported as ``file:line: gene ID: what is wrong`` and nothing is
silently dropped or overwritten.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import DEFAULT_CONFIG
from chromoformer.errors import MetadataError
from chromoformer.files.checked import open_text, read_table, require_file
from chromoformer.files.names import check_label

REQUIRED = ("gene_id", "chrom", "start", "end", "strand")
_INTERVAL = re.compile(r"^([^:\s]+):(\d+)-(\d+)$")


@dataclass(frozen=True)
class Region:
    """A half-open genomic interval [start, end), 0-based."""

    chrom: str
    start: int
    end: int

    @property
    def name(self) -> str:
        return f"{self.chrom}:{self.start}-{self.end}"

    def __len__(self) -> int:
        return self.end - self.start


def parse_region(s: str) -> Region:
    """``'chr1:100-200'`` -> Region; raises ValueError on anything else."""
    m = _INTERVAL.match(s.strip())
    if not m:
        raise ValueError(f"malformed interval {s!r} (expected chrom:start-end)")
    r = Region(m.group(1), int(m.group(2)), int(m.group(3)))
    if r.end <= r.start:
        raise ValueError(f"interval {s!r} is empty or reversed")
    return r


@dataclass(frozen=True)
class Gene:
    """One row of the metadata."""

    gene_id: str
    chrom: str
    tss: int
    strand: str
    pcres: tuple[Region, ...]
    scores: tuple[float, ...]
    label: int | None = None
    expression: float | None = None
    split: int | None = None
    line: int = 0
    file: str = ""

    @property
    def where(self) -> str:
        """``file:line: gene ID`` for error messages."""
        return f"{self.file}:{self.line}: gene {self.gene_id}" if self.file else f"gene {self.gene_id}"


def _number(v: object, column: str, fail) -> float:
    """A finite float, or ``fail`` naming the column and the value."""
    try:
        x = float(str(v).strip())
    except ValueError:
        raise fail(f"{column} must be a number, got {v!r}") from None
    if not math.isfinite(x):
        raise fail(f"{column} must be finite, got {v!r}")
    return x


def _integer(v: object, column: str, fail) -> int:
    """An integer written as one ('12', '12.0'); '12.5' or 'x' are errors, never truncated."""
    x = _number(v, column, fail)
    if not x.is_integer():
        raise fail(f"{column} must be an integer, got {v!r}")
    return int(x)


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def read_metadata(
    path: str | Path,
    *, i_max: int = DEFAULT_CONFIG.i_max,
    w_max: int = DEFAULT_CONFIG.w_max,
    require: tuple[str, ...] = (),
    eid: str | None = None,
) -> list[Gene]:
    """Parse the metadata csv into :class:`Gene` records, validating every row.

    Parameters
    ----------
    path : csv with columns gene_id, chrom, start, end, strand, [neighbors, scores,
        label, expression, split, eid]
    i_max, w_max : limits on the number and length of pCREs
    require : extra columns needed by the caller (``label``, ``expression``, ``split``)
    eid : keep only rows of this ``eid``; a table with several EIDs needs one
    """
    path = Path(path)
    require_file(path, "metadata file", MetadataError)
    # every value as text, parsed strictly below: nothing is silently rounded or coerced
    df = read_table(path, MetadataError, "metadata csv", dtype=str, keep_default_na=False, skipinitialspace=True)
    missing = [c for c in (*REQUIRED, *require) if c not in df.columns]
    if missing:
        raise MetadataError(f"{path}: missing required column(s) {', '.join(missing)}")
    _check_row_lengths(path, len(df.columns))
    df["_line"] = np.arange(len(df)) + 2  # header is line 1
    if "eid" in df.columns:
        eids = sorted(e for e in df["eid"].astype(str).unique() if e.strip())
        if eid is not None:
            df = df[df["eid"].astype(str) == eid]
            if df.empty:
                raise MetadataError(f"{path}: no rows with eid {eid!r} (present: {', '.join(eids)})")
        elif len(eids) > 1:
            raise MetadataError(f"{path}: rows of several EIDs ({', '.join(eids)}); choose one with --eid")
    if df.empty:
        raise MetadataError(f"{path}: no genes (the file has a header but no rows)")
    genes, seen = [], {}
    for row in df.to_dict("records"):
        g = _parse_row(row, path, i_max, w_max, require)
        if g.gene_id in seen:
            raise MetadataError(
                f"{path}:{g.line}: gene {g.gene_id}: duplicate gene_id (first on line {seen[g.gene_id]})"
            )
        seen[g.gene_id] = g.line
        genes.append(g)
    return genes


def _check_row_lengths(path: Path, n_fields: int) -> None:
    """Every row has the header's number of fields (a truncated file ends with a short row)."""
    with open_text(path) as f:  # gzip or not, told by content
        reader = csv.reader(f)
        try:
            for row in reader:
                if row and len(row) != n_fields:
                    raise MetadataError(f"{path}:{reader.line_num}: {len(row)} fields but the header has {n_fields} "
                                        "(truncated or malformed file?)")
        except csv.Error as e:  # a field over csv's limit (128 KiB): no metadata field is near that long
            raise MetadataError(f"{path}:{reader.line_num}: not a readable metadata row ({e}); a field that "
                                "long is not a gene's") from None


def _parse_row(row: dict, path: Path, i_max: int, w_max: int, require: tuple[str, ...]) -> Gene:
    line, gid = row["_line"], row["gene_id"]

    def fail(msg: str) -> MetadataError:
        return MetadataError(f"{path}:{line}: gene {gid}: {msg}")

    if _is_missing(gid):
        raise MetadataError(f"{path}:{line}: empty gene_id")
    check_label(gid, "gene_id", f"{path}:{line}", MetadataError)
    check_label(row["chrom"], "chrom", f"{path}:{line}: gene {gid!r}", MetadataError)
    for c in ("chrom", "start", "strand", *require):
        if _is_missing(row.get(c)):
            raise fail(f"missing value in column '{c}'")
    if row["strand"] not in ("+", "-"):
        raise fail(f"strand must be '+' or '-', got {row['strand']!r}")
    tss = _integer(row["start"], "start", fail)
    if tss < 0:
        raise fail(f"negative TSS {tss}")
    neighbors, scores = row.get("neighbors"), row.get("scores")
    pcres: list[Region] = []
    vals: list[float] = []
    if not _is_missing(neighbors):
        try:
            pcres = [parse_region(s) for s in str(neighbors).split(";")]
        except ValueError as e:
            raise fail(f"neighbors: {e}") from None
        if _is_missing(scores):
            raise fail(f"{len(pcres)} neighbors but no scores")
        vals = [_number(v, "scores", fail) for v in str(scores).split(";")]
        if len(vals) != len(pcres):
            raise fail(f"{len(pcres)} neighbors but {len(vals)} scores")
        if min(vals) < 0:
            raise fail(f"negative interaction score {min(vals)} (normalised pcHi-C scores are >= 0)")
        if len(pcres) > i_max:
            raise fail(f"{len(pcres)} neighbors exceed i_max={i_max}")
        for r in pcres:
            if len(r) > w_max:
                raise fail(f"pCRE {r.name} is {len(r)} bp, longer than w_max={w_max}")
            if r.chrom != row["chrom"]:
                raise fail(f"pCRE {r.name} is not on the gene's chromosome {row['chrom']} (pCREs are cis)")
    elif not _is_missing(scores):
        raise fail("scores given but no neighbors")
    label = expression = split = None
    if not _is_missing(row.get("label")):
        label = _integer(row["label"], "label", fail)
        if label not in (0, 1):
            raise fail(f"label must be 0 or 1, got {row['label']!r}")
    if not _is_missing(row.get("expression")):
        expression = _number(row["expression"], "expression", fail)
        if expression < 0:
            raise fail(f"negative expression {expression}")
    if not _is_missing(row.get("split")):
        split = _integer(row["split"], "split", fail)
        if split < 1:
            raise fail(f"split must be a positive integer (1..4 for the original folds), got {split}")
    return Gene(
        str(gid), str(row["chrom"]), tss, row["strand"], tuple(pcres), tuple(vals), label, expression, split, line,
        str(path),
    )


def gene_table(genes: Sequence[Gene]) -> pd.DataFrame:
    """One row per gene: ``gene_id``, ``chrom``, ``tss``, ``strand`` and ``split`` (-1 where the metadata has none)."""
    return pd.DataFrame({"gene_id": [g.gene_id for g in genes], "chrom": [g.chrom for g in genes],
                         "tss": np.array([g.tss for g in genes], dtype=np.int64),
                         "strand": [g.strand for g in genes],
                         "split": np.array([-1 if g.split is None else g.split for g in genes], dtype=np.int64)})
