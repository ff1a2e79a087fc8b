"""BAM -> training signal: our binned store vs the original route, time and disk, in the same run.

Both routes start from the same coordinate-sorted, indexed BAM of one mark and produce the
signal of the same regions (TSS +- 20 kb and pCREs of simulated genes):

* original (docs/original.md §5.1, §5.3; its scripts are not in the PyPI wheel, so they are re-done here
  step for step): ``bedtools genomecov -ibam -bga | bedtools sort`` -> bedGraph; per
  chromosome a float16 zero array filled from the bedGraph, saved with ``np.savez_compressed``
  (bdg2npz); then one float16 npy per region (extract_signals);
* ours: ``chromoformer.preprocess.signals.build_signal_store`` (100-bp sums).

Usage::

    python bench/bam_to_store.py [--reads 10000000] [--genes 2000] [--chrom-mb 60] [--repeats 1]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.metadata import Region
from chromoformer.preprocess.signals import build_signal_store


def make_bam(wd: Path, n_reads: int, chroms: dict[str, int], seed: int = 0) -> Path:
    """Reads: 36 bp, 60% uniform background, 40% in 2-kb peaks; written as tagAlign -> BAM -> sorted."""
    rng = np.random.default_rng(seed)
    names = list(chroms)
    sizes = np.array([chroms[c] for c in names])
    which = rng.choice(len(names), size=n_reads, p=sizes / sizes.sum())
    peak_centres = {c: rng.integers(0, chroms[c], size=chroms[c] // 50_000) for c in names}
    starts = np.empty(n_reads, np.int64)
    for i, c in enumerate(names):
        idx = np.nonzero(which == i)[0]
        bg = rng.random(len(idx)) < 0.6
        starts[idx[bg]] = rng.integers(0, chroms[c] - 36, size=bg.sum())
        pk = rng.choice(peak_centres[c], size=(~bg).sum()) + rng.integers(-1000, 1000, size=(~bg).sum())
        starts[idx[~bg]] = np.clip(pk, 0, chroms[c] - 36)
    df = pd.DataFrame({"c": np.array(names)[which], "s": starts, "e": starts + 36, "n": "N", "q": 1000,
                       "t": np.where(rng.random(n_reads) < 0.5, "+", "-")})
    df.to_csv(wd / "reads.tagAlign", sep="\t", header=False, index=False)
    (wd / "genome.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in chroms.items()))
    with open(wd / "unsorted.bam", "wb") as f:
        subprocess.run(["bedtools", "bedtobam", "-i", str(wd / "reads.tagAlign"), "-g", str(wd / "genome.sizes")],
                       stdout=f, check=True)
    subprocess.run(["samtools", "sort", "-@", "2", "-o", str(wd / "sorted.bam"), str(wd / "unsorted.bam")],
                   check=True)
    subprocess.run(["samtools", "index", str(wd / "sorted.bam")], check=True)
    (wd / "unsorted.bam").unlink()
    (wd / "reads.tagAlign").unlink()
    return wd / "sorted.bam"


def make_regions(chroms: dict[str, int], n_genes: int, seed: int = 0) -> list[Region]:
    rng = np.random.default_rng(seed + 1)
    seen: dict[str, Region] = {}
    names = list(chroms)
    for _ in range(n_genes):
        c = names[rng.integers(len(names))]
        tss = int(rng.integers(500_000, chroms[c] - 500_000))
        seen.setdefault(f"{c}:{tss - 20000}", Region(c, tss - 20000, tss + 20000))
        for _ in range(int(rng.integers(0, 9))):
            s = tss + int(rng.integers(-400_000, 400_000))
            r = Region(c, s, s + int(rng.integers(1000, 20000)))
            seen.setdefault(r.name, r)
    return list(seen.values())


def original_route(bam: Path, regions: list[Region], chroms: dict[str, int], wd: Path) -> int:
    """Returns bytes on disk of everything the route writes."""
    bg = wd / "cov.bedGraph"
    with open(bg, "w") as f:
        cov = subprocess.Popen(["bedtools", "genomecov", "-ibam", str(bam), "-bga"], stdout=subprocess.PIPE)
        subprocess.run(["bedtools", "sort", "-i", "stdin"], stdin=cov.stdout, stdout=f, check=True)
        cov.wait()
    tab = pd.read_csv(bg, sep="\t", header=None, names=["c", "s", "e", "v"],
                      dtype={"c": str, "s": np.int64, "e": np.int64, "v": np.float32})
    arrays = {}
    for c, n in chroms.items():  # bdg2npz, vectorised (faster than the original's per-line fill)
        a = np.zeros(n, np.float16)
        t = tab[tab.c == c]
        s, e, v = t.s.to_numpy(), t.e.to_numpy(), t.v.to_numpy()
        if len(t) and (s[1:] == e[:-1]).all():  # -bga rows tile the chromosome
            a[s[0] : e[-1]] = np.repeat(v, e - s)
        else:
            for lo, hi, val in zip(s, e, v, strict=True):
                a[lo:hi] = val
        arrays[c] = a
    np.savez_compressed(wd / "mark.npz", **arrays)
    arrays = dict(np.load(wd / "mark.npz"))
    out = wd / "npy"
    out.mkdir()
    for r in regions:
        np.save(out / f"{r.name}.npy", arrays[r.chrom][r.start : r.end][None])
    return sum(p.stat().st_size for p in (bg, wd / "mark.npz")) + sum(p.stat().st_size for p in out.iterdir())


def ours(bam: Path, regions: list[Region], wd: Path) -> int:
    s = build_signal_store(regions, [bam], wd / "store", marks=["mark"])
    return sum(p.stat().st_size for p in s.path.iterdir())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reads", type=int, default=10_000_000)
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--chrom-mb", type=int, default=60)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    if not shutil.which("bedtools") or not shutil.which("samtools"):
        raise SystemExit("needs bedtools and samtools (apt-get install bedtools samtools)")
    chroms = {c: a.chrom_mb * 1_000_000 for c in ("chr1", "chr2", "chr3")}
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(tmp)
        t = time.perf_counter()
        bam = make_bam(wd, a.reads, chroms)
        print(f"simulated BAM: {a.reads:,} reads on {len(chroms)} x {a.chrom_mb} Mb in {time.perf_counter() - t:.0f} s")
        regions = make_regions(chroms, a.genes)
        times: dict[str, list[float]] = {"original": [], "ours": []}
        disk = {}
        for i in range(a.repeats):
            for name in ("original", "ours"):
                d = wd / f"{name}{i}"
                d.mkdir()
                t = time.perf_counter()
                disk[name] = original_route(bam, regions, chroms, d) if name == "original" else ours(bam, regions, d)
                times[name].append(time.perf_counter() - t)
                shutil.rmtree(d)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{len(regions):,} regions of {a.genes:,} genes, median of {a.repeats} run(s); baseline = the "
              "original route in the same run\n")
        print(f"{'route':<10} {'seconds':>9} {'disk MiB':>10}")
        for k in ("original", "ours"):
            print(f"{k:<10} {med[k]:>9.1f} {disk[k] / 2**20:>10.1f}")
        print(f"\nspeed-up {med['original'] / med['ours']:.1f}x, disk {disk['original'] / disk['ours']:.0f}x smaller")


if __name__ == "__main__":
    main()
