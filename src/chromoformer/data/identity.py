"""What a training run's data are, as fingerprints: compared when a run resumes, so that a changed input is named.

A run depends on each cell's genes (their windows, pCREs, interaction scores, targets and splits: the metadata)
and on each cell's signal. :func:`input_fingerprints` reduces them to short digests, stored in every checkpoint
(``data["inputs"]``); :func:`changed_inputs` names the ones that differ. The signal's digest is its binned store's
content hash (``sums.npy``'s sha256, recorded in the store's manifest) or, for an npy directory read directly,
:func:`chromoformer.data.sources.npy_fingerprint` (file names, sizes and modification times).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from chromoformer.data.metadata import Gene
from chromoformer.data.sources import npy_fingerprint
from chromoformer.files.layouts import StoreFiles

NAMES = {"metadata": "genes (metadata: windows, pCREs, scores, targets or splits)", "signal": "signal"}


def gene_digest(genes: Sequence[Gene]) -> str:
    """sha256 (16 hex) of everything the model and its targets read from the genes' metadata rows."""
    h = hashlib.sha256()
    for g in genes:
        rec = [g.gene_id, g.chrom, g.tss, g.strand, [(r.chrom, r.start, r.end) for r in g.pcres],
               [float(s) for s in g.scores], g.label, g.expression, g.split]
        h.update(json.dumps(rec, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def signal_identity(source: object) -> str:
    """The content identity of a signal source (a store, an npy directory, or a mark view over one)."""
    while hasattr(source, "source") and not hasattr(source, "manifest"):
        source = source.source  # MarkView -> the store or directory under it
    manifest = getattr(source, "manifest", None)
    if isinstance(manifest, Mapping) and isinstance(manifest.get("sha256"), Mapping):
        sums = manifest["sha256"].get(StoreFiles(Path(".")).sums.name) or json.dumps(manifest["sha256"], sort_keys=True)
        return f"store:{str(sums)[:16]}"
    folder = getattr(source, "dir", None)
    return f"npy:{npy_fingerprint(folder)[:16]}" if folder is not None else "unknown"


def _cells(ds: object) -> list:
    """A pair dataset's two cells (``a``, ``b``), or the one-cell dataset itself."""
    return [ds.a, ds.b] if hasattr(ds, "a") and hasattr(ds, "b") else [ds]


def input_fingerprints(train_ds: object, val_ds: object) -> dict[str, str]:
    """``{"metadata": ..., "signal": ...}`` (``metadata_a``, ``signal_a``, ``..._b`` for a pair of cells)."""
    cells = list(zip(_cells(train_ds), _cells(val_ds), strict=True))
    out = {}
    for i, (tr, va) in enumerate(cells):
        suffix = "" if len(cells) == 1 else f"_{'ab'[i]}"
        out[f"metadata{suffix}"] = gene_digest([*tr.genes, *va.genes])
        out[f"signal{suffix}"] = signal_identity(tr.source)
    return out


def changed_inputs(stored: Mapping[str, str] | None, now: Mapping[str, str]) -> list[str]:
    """The inputs (named for a person: "cell B's signal") whose fingerprint differs; none when nothing was
    stored (a checkpoint of an earlier version)."""
    if not stored:
        return []
    out = []
    for k, v in now.items():
        if k in stored and stored[k] != v:
            kind, _, cell = k.partition("_")
            out.append(f"{'cell ' + cell.upper() + chr(39) + 's ' if cell else 'the '}{NAMES[kind]}")
    return out
