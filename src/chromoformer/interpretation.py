"""Reading back a folder written by ``chromoformer interpret`` (for ``report`` and ``export``).

Every file is checked as it is read: a hand-edited, truncated or foreign file is an error that
names it and says to re-run ``interpret``, never a traceback or a silently wrong page/track.

Files: ``interpret.json`` (the record: genes, marks, bin sizes, w_prom...), ``perturbation.tsv``
(gene_id, perturbation, target, delta), ``attention.tsv`` (gene_id, pcre, weight; Chromoformer
checkpoints only) and ``attributions.npz`` (gene_id and ``{promoter,pcre}_{bin}`` arrays).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import UsageError
from chromoformer.io import numeric_column, read_table, require_file

RERUN = "re-run chromoformer interpret"
PERTURBATION = ("gene_id", "perturbation", "target", "delta")
ATTENTION = ("gene_id", "pcre", "weight")


@dataclass(frozen=True)
class Interpretation:
    """One interpretation folder: its record and tables (None where the file is absent)."""

    path: Path
    info: dict
    perturbation: pd.DataFrame | None
    attention: pd.DataFrame | None

    @property
    def genes(self) -> list[str]:
        return list(self.info["genes"])

    def attributions(self, bin_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(promoter, pcre) attribution arrays at ``bin_size``, checked against the record's genes.

        Shapes: promoter ``(n_genes, w_prom / bin_size, n_marks)``, pcre ``(n_genes, i_max,
        w_max / bin_size, n_marks)``."""
        p = require_file(self.path / "attributions.npz", f"attribution arrays ({RERUN})", UsageError)
        try:
            with np.load(p, allow_pickle=False) as z:
                ids, promoter, pcre = list(z["gene_id"]), z[f"promoter_{bin_size}"], z[f"pcre_{bin_size}"]
        except KeyError as e:
            raise UsageError(f"{p}: no array {e} ({RERUN})") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise UsageError(f"{p}: unreadable attribution arrays ({' '.join(str(e).split())[:120]}; {RERUN})"
                             ) from None
        if ids != self.genes:
            raise UsageError(f"{self.path}: attributions.npz and interpret.json list different genes; {RERUN}")
        n = len(ids)
        if promoter.ndim != 3 or pcre.ndim != 4 or len(promoter) != n or len(pcre) != n \
                or not (np.isfinite(promoter).all() and np.isfinite(pcre).all()):
            raise UsageError(f"{p}: attribution arrays of the wrong shape or not finite ({RERUN})")
        return promoter, pcre


def _table(path: Path, what: str, columns: tuple[str, ...], numeric: str) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    t = read_table(path, UsageError, f"{what} ({RERUN})", sep="\t", dtype={"gene_id": str})
    missing = [c for c in columns if c not in t.columns]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)} ({RERUN})")
    return t.assign(**{numeric: numeric_column(t, numeric, path, UsageError, note=f" ({RERUN})").astype(float)})


def read_interpretation(folder: str | Path, need_perturbation: bool = False) -> Interpretation:
    """The folder's record and tables, each checked (see the module docstring)."""
    d = Path(folder)
    if not d.is_dir():
        raise UsageError(f"{d}: interpretation folder not found")
    p = require_file(d / "interpret.json", f"interpretation record ({RERUN})", UsageError)
    try:
        info = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{p}: unreadable interpretation record ({' '.join(str(e).split())[:100]}; {RERUN})"
                         ) from None
    ok = isinstance(info, dict) and isinstance(info.get("genes"), list) and info["genes"] \
        and all(isinstance(g, str) for g in info["genes"]) and isinstance(info.get("binsizes"), list) \
        and info["binsizes"] and all(isinstance(b, int) and b > 0 for b in info["binsizes"]) \
        and isinstance(info.get("marks"), list) and isinstance(info.get("w_prom"), int)
    if not ok:
        raise UsageError(f"{p}: not a chromoformer interpretation record (genes, marks, binsizes, w_prom; {RERUN})")
    per = _table(d / "perturbation.tsv", "perturbation table", PERTURBATION, "delta")
    if per is None and need_perturbation:
        require_file(d / "perturbation.tsv", f"perturbation table ({RERUN})", UsageError)
    att = _table(d / "attention.tsv", "attention table", ATTENTION, "weight")
    return Interpretation(d, info, per, att)
