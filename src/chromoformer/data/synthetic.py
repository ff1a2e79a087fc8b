"""Small synthetic datasets in the original format (metadata csv + npy directory).

Generative model (per gene, all draws from one seeded ``numpy`` generator):

* background read depth of every mark ~ Poisson(0.3) per base;
* a latent promoter activity ``a ~ Bernoulli(0.5)``: active promoters get H3K4me3,
  H3K27ac and H3K9ac peaks (+Poisson(6)) over the first 2 kb *downstream* of the TSS
  (strand-aware, so the TSS bin carries the signal after the minus-strand flip);
  inactive ones get broad H3K27me3 (+Poisson(2)) over TSS +- 10 kb;
* 0..i_max pCREs at 25-400 kb from the TSS, 1-20 kb long, score ~ 1.5 + Exp(2),
  each an active enhancer (H3K27ac and H3K4me1 +Poisson(5)) with probability 0.5;
* log expression = 2.5 a + 0.35 * sum(score * enhancer active) + N(0, 0.5);
  ``expression`` = exp2(that) - 1 clipped at 0, ``label`` = expression >= median.

Genes are spread over chromosomes of all four CV splits. Used by the test suite and
by ``chromoformer demo``; it is not meant to be biologically faithful.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.folds import chroms_of_split
from chromoformer.files.atomic import write_table
from chromoformer.files.layouts import SimulationFiles, npy_file

ACTIVE_PROMOTER_MARKS = (1, 5, 6)  # H3K4me3, H3K27ac, H3K9ac
ENHANCER_MARKS = (0, 5)  # H3K4me1, H3K27ac
REPRESSED_MARK = 3  # H3K27me3


def _signal(rng: np.random.Generator, n_feats: int, length: int) -> np.ndarray:
    return rng.poisson(0.3, size=(n_feats, length)).astype(np.float32)


def write_synthetic_dataset(
    out: str | Path, *, n_genes: int = 48, seed: int = 0, i_max: int = 8, n_feats: int = 7, half: int = 20000
) -> tuple[Path, Path]:
    """Write ``out/meta.csv`` and ``out/npy/*.npy``; returns their paths."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    files = SimulationFiles(out)
    npy = files.npy
    npy.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_genes):
        split = i % 4 + 1
        chrom = chroms_of_split(split, 2)[(i // 4) % 2]
        tss = 1_000_000 + i * 1_000_000 + int(rng.integers(0, 1000))
        strand = "+" if rng.random() < 0.5 else "-"
        active = rng.random() < 0.5
        x = _signal(rng, n_feats, 2 * half)
        if active:
            lo, hi = (half, half + 2000) if strand == "+" else (half - 2000, half)
            for m in ACTIVE_PROMOTER_MARKS:
                x[m, lo:hi] += rng.poisson(6.0, size=hi - lo)
        else:
            x[REPRESSED_MARK, half - 10000 : half + 10000] += rng.poisson(2.0, size=20000)
        np.save(npy_file(npy, f"{chrom}:{tss - half}-{tss + half}"), x.astype(np.float16))
        n = int(rng.integers(0, i_max + 1))
        pcres, drive = [], 0.0
        for _ in range(n):
            length = int(rng.integers(1000, 20001))
            dist = int(rng.integers(25_000, 400_000))
            start = tss + dist if rng.random() < 0.5 else tss - dist - length
            score = float(np.round(1.5 + rng.exponential(2.0), 4))
            y = _signal(rng, n_feats, length)
            if rng.random() < 0.5:
                for m in ENHANCER_MARKS:
                    y[m] += rng.poisson(5.0, size=length)
                drive += score
            np.save(npy_file(npy, f"{chrom}:{start}-{start + length}"), y.astype(np.float16))
            pcres.append((f"{chrom}:{start}-{start + length}", score))
        pcres.sort(key=lambda t: -t[1])
        log_expr = 2.5 * active + 0.35 * drive + rng.normal(0, 0.5)
        rows.append(
            {
                "gene_id": f"SYN{i:05d}",
                "expression": round(max(float(np.exp2(log_expr) - 1), 0.0), 4),
                "eid": "SYNTH",
                "chrom": chrom,
                "start": tss,
                "end": tss + 1,
                "strand": strand,
                "split": split,
                "neighbors": ";".join(p for p, _ in pcres) or None,
                "scores": ";".join(str(s) for _, s in pcres) or None,
            }
        )
    meta = pd.DataFrame(rows)
    meta.insert(2, "label", (meta.expression >= meta.expression.median()).astype(int))
    write_table(meta, files.meta, float_format="%.6g")
    return files.meta, npy
