"""A simulated pair of cell types for the differential task, with a noiseless fold-change oracle.

The genes, their strands and their pCRE fragments are shared; each cell has its own latent state,
drawn as in :mod:`chromoformer.data.synthetic` (promoter activity ``a``, per-pCRE enhancer
activity ``e_j``, contact score ``s_j``), and cell B differs from A by a planted amount:

* each latent switch (``a``, each ``e_j``) flips in B with probability ``switch``;
* each contact score is ``s_B = s_A * exp(N(0, contact_sd))``.

Signals are drawn per cell given its state (background Poisson(0.3); active promoter: +Poisson(6) on
H3K4me3, H3K27ac, H3K9ac over 2 kb downstream; inactive: +Poisson(2) H3K27me3 over TSS +- 10 kb;
active enhancer: +Poisson(5) H3K4me1, H3K27ac). log2(RPKM + 1) = L + N(0, noise) with
``L = 2.5 a + 0.35 sum_j s_j e_j``; the **oracle** fold change is ``L_B - L_A``, which no model
can beat on average: its Pearson r with the observed fold change is the ceiling. ``oracle_promoter_lfc``
(``2.5 (a_B - a_A)``) is its promoter term alone: what a model that reads no pCRE can reach at best. Expressions clipped
at 0 make the observed fold change depart from ``L_B - L_A + noise`` for a few silent genes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.folds import chroms_of_split
from chromoformer.data.synthetic import ACTIVE_PROMOTER_MARKS, ENHANCER_MARKS, REPRESSED_MARK
from chromoformer.diff.pairing import fold_change
from chromoformer.files.atomic import write_table
from chromoformer.files.layouts import PairSimulationFiles, npy_file

CELLS = ("A", "B")


def _promoter(rng: np.random.Generator, active: bool, strand: str, n_feats: int, half: int) -> np.ndarray:
    x = rng.poisson(0.3, size=(n_feats, 2 * half)).astype(np.float32)
    if active:
        lo, hi = (half, half + 2000) if strand == "+" else (half - 2000, half)
        for m in ACTIVE_PROMOTER_MARKS:
            x[m, lo:hi] += rng.poisson(6.0, size=hi - lo)
    else:
        x[REPRESSED_MARK, half - 10000 : half + 10000] += rng.poisson(2.0, size=20000)
    return x


def _enhancer(rng: np.random.Generator, active: bool, n_feats: int, length: int) -> np.ndarray:
    y = rng.poisson(0.3, size=(n_feats, length)).astype(np.float32)
    if active:
        for m in ENHANCER_MARKS:
            y[m] += rng.poisson(5.0, size=length)
    return y


def write_synthetic_pair(out: str | Path, *, n_genes: int = 48, seed: int = 0, switch: float = 0.3,
                         contact_sd: float = 0.5, noise: float = 0.5, i_max: int = 8, n_feats: int = 7,
                         half: int = 20000) -> PairSimulationFiles:
    """Write cells ``A`` and ``B`` (meta.csv + npy/ each) and ``oracle.csv`` under ``out``."""
    if not 0 <= switch <= 1 or contact_sd < 0 or noise < 0:
        raise ValueError(f"switch in [0, 1], contact_sd >= 0 and noise >= 0 needed; got {switch}, {contact_sd}, "
                         f"{noise}")
    rng = np.random.default_rng(seed)
    files = PairSimulationFiles(Path(out))
    for c in CELLS:
        files.cell(c).npy.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {c: [] for c in CELLS}
    oracle = []
    for i in range(n_genes):
        split = i % 4 + 1
        chrom = chroms_of_split(split, 2)[(i // 4) % 2]
        tss = 1_000_000 + i * 1_000_000 + int(rng.integers(0, 1000))
        strand = "+" if rng.random() < 0.5 else "-"
        n = int(rng.integers(0, i_max + 1))
        frags = []
        for _ in range(n):
            length, dist = int(rng.integers(1000, 20001)), int(rng.integers(25_000, 400_000))
            start = tss + dist if rng.random() < 0.5 else tss - dist - length
            frags.append((f"{chrom}:{start}-{start + length}", length))
        a_active = rng.random() < 0.5
        e_a = rng.random(n) < 0.5
        s_a = 1.5 + rng.exponential(2.0, n)
        state = {"A": (a_active, e_a, s_a),
                 "B": (a_active ^ (rng.random() < switch), e_a ^ (rng.random(n) < switch),
                       s_a * np.exp(rng.normal(0, contact_sd, n)))}
        latent = {}
        for c in CELLS:
            active, enh, score = state[c]
            score = np.round(score, 4)
            np.save(npy_file(files.cell(c).npy, f"{chrom}:{tss - half}-{tss + half}"),
                    _promoter(rng, active, strand, n_feats, half).astype(np.float16))
            for (name, length), on in zip(frags, enh, strict=True):
                np.save(npy_file(files.cell(c).npy, name), _enhancer(rng, on, n_feats, length).astype(np.float16))
            latent[c] = 2.5 * active + 0.35 * float(np.sum(score * enh))
            order = np.argsort(-score, kind="stable")
            rows[c].append({"gene_id": f"SYN{i:05d}",
                            "expression": round(max(float(np.exp2(latent[c] + rng.normal(0, noise)) - 1), 0.0), 4),
                            "eid": f"SYNTH_{c}", "chrom": chrom, "start": tss, "end": tss + 1, "strand": strand,
                            "split": split, "neighbors": ";".join(frags[j][0] for j in order) or None,
                            "scores": ";".join(str(score[j]) for j in order) or None})
        oracle.append({"gene_id": f"SYN{i:05d}", "oracle_lfc": latent["B"] - latent["A"],
                       "oracle_promoter_lfc": 2.5 * (float(state["B"][0]) - float(state["A"][0]))})
    for c in CELLS:
        meta = pd.DataFrame(rows[c])
        meta.insert(2, "label", (meta.expression >= meta.expression.median()).astype(int))
        write_table(meta, files.cell(c).meta, float_format="%.6g")
    table = pd.DataFrame(oracle)
    table["lfc"] = fold_change(pd.DataFrame(rows["A"]).expression, pd.DataFrame(rows["B"]).expression)
    write_table(table, files.oracle, float_format="%.6g")
    return files
