"""Smoke run of ``chromoformer compare`` on the shared demo genes: every single-cell model, and the differential
task on a demo pair. 100 genes measure nothing; this shows the commands run on real data and write their
table and plot. Usage::

    python bench/demo_smoke.py [--demo ../shared/reference-demo] [--epochs 2] [--workdir W]

The demo's 100 genes (Roadmap E003) all sit in split 1, so the copy here deals them round-robin into
splits 1-4 to give every fold held-out genes. It has one cell type, so cell B of the pair is made from it:
for a random third of the genes the promoter region's H3K4me3, H3K27ac and H3K9ac are scaled by 4 and
RPKM + 1 by 4 (log2 fold change 2: up), for another third both are divided by 4 (expression clipped at 0:
down or, for silent genes, less), and the rest are unchanged. Cell B's npy folder is a copy.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import MARKS
from chromoformer.files.layouts import npy_file

SINGLE = ("chromoformer", "deepchrome", "attentivechrome", "hmcrnn", "gcmerge")
PAIR = ("chromoformer-diff", "deepdiff")
ACTIVE = ("H3K4me3", "H3K27ac", "H3K9ac")


def demo_cells(demo: Path, wd: Path, seed: int = 0) -> tuple[Path, Path, Path, Path]:
    """Cell A (the demo, splits dealt 1-4) and cell B (see the module docstring): (meta A, npy A, meta B, npy B)."""
    a_meta, b_meta, a_npy, b_npy = wd / "A.csv", wd / "B.csv", demo / "demo_data", wd / "B_npy"
    meta = pd.read_csv(demo / "demo_meta.csv")
    meta["split"] = np.arange(len(meta)) % 4 + 1
    meta.to_csv(a_meta, index=False)
    rng = np.random.default_rng(seed)
    factor = rng.choice([4.0, 0.25, 1.0], size=len(meta))  # up, down, unchanged
    if not b_npy.is_dir():
        shutil.copytree(a_npy, b_npy)
    rows = [MARKS.index(m) for m in ACTIVE]
    for g, f in zip(meta.itertuples(), factor, strict=True):
        region = f"{g.chrom}:{g.start - 20000}-{g.start + 20000}"
        x = np.load(npy_file(a_npy, region)).astype(np.float32)  # cell A's, whatever B's copy holds now
        x[rows] *= f
        np.save(npy_file(b_npy, region), x.astype(np.float16))
    b = meta.copy()
    b["expression"] = np.maximum((meta.expression + 1) * factor - 1, 0).round(4)
    b["label"] = (b.expression >= b.expression.median()).astype(int)
    b.to_csv(b_meta, index=False)
    return a_meta, a_npy, b_meta, b_npy


def run(argv: list[str]) -> None:
    print("$ chromoformer " + " ".join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "chromoformer.cli", *argv], check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", default=str(Path(__file__).resolve().parents[2] / "shared" / "reference-demo"))
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    demo = Path(a.demo)
    if not (demo / "demo_meta.csv").is_file():
        raise SystemExit(f"{demo}: no demo_meta.csv (give --demo, the shared reference-demo folder)")
    wd = Path(a.workdir or tempfile.mkdtemp(prefix="cf-demosmoke-"))
    wd.mkdir(parents=True, exist_ok=True)
    a_meta, a_npy, b_meta, b_npy = demo_cells(demo, wd)
    common = ["--epochs", str(a.epochs), "--num-workers", "0"]
    run(["compare", "-m", str(a_meta), "-d", str(a_npy), "-o", str(wd / "single"), "--models", *SINGLE, *common])
    run(["compare", "--task", "diff", "-m", str(a_meta), "-d", str(a_npy), "--meta-b", str(b_meta), "--npy-dir-b",
         str(b_npy), "-o", str(wd / "diff"), "--models", *PAIR, *common])
    for d in ("single", "diff"):
        for f in ("comparison.tsv", "comparison_folds.tsv", "comparison.png"):
            print(f"{wd / d / f}: {(wd / d / f).stat().st_size} bytes")


if __name__ == "__main__":
    main()
