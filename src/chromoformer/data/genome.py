"""Genome facts the data layer needs: chromosome sizes from a ``chrom<TAB>size`` file."""

from __future__ import annotations

from pathlib import Path

from chromoformer.errors import AnnotationError
from chromoformer.files.checked import open_text, require_file


def read_chrom_sizes(path: str | Path) -> dict[str, int]:
    """A ``chrom<TAB>size`` file (further columns, '#' lines and gzip allowed); sizes must be positive integers."""
    path = require_file(path, "chromosome sizes file", AnnotationError)
    sizes: dict[str, int] = {}
    line_of: dict[str, int] = {}
    try:
        with open_text(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                p = line.split()
                if len(p) < 2 or not p[1].isdigit() or int(p[1]) < 1:
                    raise AnnotationError(f"{path}:{n}: expected 'chrom<TAB>size' with a positive integer size, "
                                          f"got {line.strip()[:80]!r}")
                if p[0] in sizes:
                    raise AnnotationError(f"{path}:{n}: chromosome {p[0]} is listed twice (first on line "
                                          f"{line_of[p[0]]})")
                sizes[p[0]], line_of[p[0]] = int(p[1]), n
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: unreadable chromosome sizes file ({' '.join(str(e).split()) or 'truncated'})"
                              ) from None
    if not sizes:
        raise AnnotationError(f"{path}: no chromosome sizes in the file (one 'chrom<TAB>size' per line)")
    return sizes


def _bare(chrom: str) -> str:
    c = chrom.removeprefix("chr")
    return "M" if c == "MT" else c


def chrom_renaming(names: set[str], reference: set[str]) -> dict[str, str]:
    """How to spell ``names`` as ``reference`` spells them when the two differ only by the UCSC
    ``chr`` prefix (``1`` / ``chr1``, ``MT`` / ``chrM``): ``{name: reference name}`` for every name
    that is not in ``reference`` but whose prefix-free form names exactly one reference chromosome."""
    by_bare: dict[str, list[str]] = {}
    for r in reference:
        by_bare.setdefault(_bare(r), []).append(r)
    out = {}
    for n in names - reference:
        hits = by_bare.get(_bare(n), [])
        if len(hits) == 1:
            out[n] = hits[0]
    return out
