"""bigBed and bigInteract files (indexed, for UCSC track hubs and IGV), written with ``pybigtools``, no UCSC
binaries: ``export`` writes them beside the text tracks when chromosome sizes are known.

* ``predictions.bb``: one record per gene, TSS +- ``width``/2 cut to the chromosome, bed6+1 with the autoSql
  :data:`PREDICTION_AS`: ``name`` the gene id, ``score`` the value scaled to 0..1000 by the largest
  \\|value\\|, ``strand`` the gene's, ``value`` the prediction (P(expressed), log2(RPKM + 1) or a differential
  model's log2 fold change). Unlike the bedGraph, genes that share a TSS keep one record each.
* ``pcre_links.bb``: the bigInteract of ``pcre_links.interact`` (UCSC's ``interact`` bed5+13, autoSql
  :data:`INTERACT_AS`, the format's own field list): the same records, indexed.

Records are sorted by chromosome (in the sizes' order) and start, checked against the sizes, and written to a
temp file renamed into place.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from chromoformer.data.metadata import Gene
from chromoformer.errors import UsageError
from chromoformer.files.atomic import current_umask, writable_output

PREDICTION_AS = """table chromoformerPrediction
"Chromoformer prediction per gene, drawn over its TSS"
(
string chrom;      "Chromosome"
uint chromStart;   "Start (0-based): TSS - width/2"
uint chromEnd;     "End: TSS + width/2"
string name;       "Gene id"
uint score;        "|value| scaled to 0..1000 by the largest |value|"
char[1] strand;    "Strand of the gene"
double value;      "P(expressed), predicted log2(RPKM + 1) or predicted log2 fold change"
)
"""

INTERACT_AS = """table interact
"interaction between two regions"
(
string chrom;        "Chromosome (or contig, scaffold, etc.). For interchromosomal, use 2 records"
uint chromStart;     "Start position of lower region. For interchromosomal, set to chromStart of this region"
uint chromEnd;       "End position of upper region. For interchromosomal, set to chromEnd of this region"
string name;         "Name of item, for display"
uint score;          "Score (0-1000)"
double value;        "Strength of interaction or other data value. Typically basis for score"
string exp;          "Experiment name (metadata for filtering). Use . if not applicable"
string color;        "Item color, as r,g,b or #RRGGBB or an html color name; 0 shades by score"
string sourceChrom;  "Chromosome of source region (directional) or lower region"
uint sourceStart;    "Start position in chromosome of source/lower/this region"
uint sourceEnd;      "End position in chromosome of source/lower/this region"
string sourceName;   "Identifier of source/lower/this region"
string sourceStrand; "Orientation of source/lower/this region: + or -.  Use . if not applicable"
string targetChrom;  "Chromosome of target region (directional) or upper region"
uint targetStart;    "Start position in chromosome of target/upper/this region"
uint targetEnd;      "End position in chromosome of target/upper/this region"
string targetName;   "Identifier of target/upper/this region"
string targetStrand; "Orientation of target/upper/this region: + or -.  Use . if not applicable"
)
"""


def have_pybigtools() -> bool:
    """Whether bigBed files can be written here (``pip install 'chromoformer-ng[bigbed]'``)."""
    return importlib.util.find_spec("pybigtools") is not None


def _text(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def write_bigbed(records: Iterable[Sequence[object]], path: str | Path, sizes: dict[str, int], autosql: str
                 ) -> Path:
    """``records`` (chrom, start, end, *rest) -> bigBed with ``autosql``; sorted here, checked against ``sizes``."""
    import pybigtools

    order = {c: i for i, c in enumerate(sizes)}
    rows = sorted(records, key=lambda r: (order.get(r[0], len(order)), r[1], r[2]))
    for r in rows:
        if r[0] not in sizes or not 0 <= int(r[1]) < int(r[2]) <= sizes[r[0]]:
            raise UsageError(f"{path}: record {r[0]}:{r[1]}-{r[2]} ({_text(r[3])}) is outside the chromosome sizes "
                             "(another assembly's?)")
    entries = [(str(r[0]), int(r[1]), int(r[2]), "\t".join(_text(v) for v in r[3:])) for r in rows]
    path = Path(path)
    writable_output(path)
    # pybigtools takes the format from the name's suffix: write "x.bb" in a private folder beside path, then rename
    with tempfile.TemporaryDirectory(prefix=".bigbed-", dir=path.parent) as d:
        tmp = Path(d) / "out.bb"
        pybigtools.open(str(tmp), "w").write({c: int(n) for c, n in sizes.items()}, entries, autosql=autosql)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    return path


def prediction_records(genes: Sequence[Gene], values: pd.Series, width: int, sizes: dict[str, int]
                       ) -> list[tuple[object, ...]]:
    """One bed6+1 record per gene of ``genes`` with a value (see the module docstring)."""
    top = float(values.abs().max()) if len(values) else 1.0
    out = []
    for g in genes:
        v = float(values[g.gene_id])
        lo, hi = max(g.tss - width // 2, 0), g.tss + width - width // 2
        hi = min(hi, sizes[g.chrom]) if g.chrom in sizes else hi  # an unknown chromosome: refused when written
        if hi > lo:
            out.append((g.chrom, lo, hi, g.gene_id, int(round(1000 * abs(v) / top)) if top > 0 else 0, g.strand, v))
    return out


def write_prediction_bigbed(genes: Sequence[Gene], values: pd.Series, path: str | Path, sizes: dict[str, int],
                            width: int) -> Path:
    """``predictions.bb``: :func:`prediction_records` with :data:`PREDICTION_AS`."""
    return write_bigbed(prediction_records(genes, values, width, sizes), path, sizes, PREDICTION_AS)


def write_biginteract(rows: Iterable[Sequence[object]], path: str | Path, sizes: dict[str, int]) -> Path:
    """``pcre_links.bb``: the interact rows (bed5+13, as in ``pcre_links.interact``) with :data:`INTERACT_AS`."""
    return write_bigbed(rows, path, sizes, INTERACT_AS)
