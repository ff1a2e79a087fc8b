"""Hi-C (.cool) -> pCRE candidates: peak memory and time, streamed pixels vs dense chromosome matrices.

Writes a synthetic .cool (``--chroms`` chromosomes of ``--mb`` Mb at ``--res`` bp, Poisson
counts decaying with distance up to 3 Mb, random balancing weights, 2% of bins masked)
and one TSS every 50 kb, then runs, each in its own process:

* ours: :func:`chromoformer.preprocess.hic_scores.interactions_from_cool` (pixels streamed in
  chunks, expected over valid pixels);
* baseline: the previous implementation's approach, a dense balanced matrix per chromosome
  (``clr.matrix(balance=True).fetch(chrom)``) and a per-diagonal mean.

Prints peak RSS (MiB) and wall seconds (median of ``--repeats``). Usage::

    pip install cooler && python bench/hic_memory.py [--mb 150] [--chroms 2] [--res 10000] [--repeats 3]
    python bench/hic_memory.py --mb 150 --chroms 20 --skip-baseline --repeats 1   # ~ a genome at 10 kb
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
path, mode = sys.argv[1], sys.argv[2]
import cooler
clr = cooler.Cooler(path)
genes = pd.DataFrame({"chrom": c, "tss_all": str(s)} for c in clr.chromnames
                     for s in range(25_000, int(clr.chromsizes[c]) - 25_000, 50_000))
t = time.perf_counter()
if mode == "ours":
    from chromoformer.preprocess.hic_scores import interactions_from_cool
    n = len(interactions_from_cool(path, genes, min_score=1.5))  # as preprocess metadata calls it
else:
    n = 0
    for chrom in clr.chromnames:
        mat = np.nan_to_num(clr.matrix(balance=True).fetch(chrom))
        exp = np.array([np.diagonal(mat, d).mean() for d in range(mat.shape[0])])
        n += len(exp)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "n": n}))
"""


def make_cool(path: Path, chroms: int, mb: float, res: int) -> None:
    import cooler
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = int(mb * 1e6) // res
    bins = pd.DataFrame({"chrom": np.repeat([f"chr{i + 1}" for i in range(chroms)], n),
                         "start": np.tile(np.arange(n) * res, chroms),
                         "end": np.tile((np.arange(n) + 1) * res, chroms)})
    k = 3_000_000 // res

    def chunks():
        for c in range(chroms):
            for i0 in range(0, n, 500):
                i = np.repeat(np.arange(i0, min(i0 + 500, n)), k)
                d = np.tile(np.arange(k), len(i) // k)
                j = i + d
                keep = j < n
                i, j, d = i[keep], j[keep], d[keep]
                cnt = rng.poisson(50 / (1 + d))
                nz = cnt > 0
                yield pd.DataFrame({"bin1_id": c * n + i[nz], "bin2_id": c * n + j[nz], "count": cnt[nz]})

    cooler.create_cooler(str(path), bins, chunks(), ordered=True)
    w = rng.uniform(0.5, 2, len(bins))
    w[rng.random(len(bins)) < 0.02] = np.nan
    with cooler.Cooler(str(path)).open("r+") as f:
        f["bins"].create_dataset("weight", data=w)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=150.0)
    p.add_argument("--chroms", type=int, default=2)
    p.add_argument("--res", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-baseline", action="store_true", help="only ours (e.g. genome scale, where dense is slow)")
    a = p.parse_args()
    path = Path(tempfile.mkdtemp(prefix="cf-hic-")) / "synthetic.cool"
    make_cool(path, a.chroms, a.mb, a.res)
    import cooler

    info = cooler.Cooler(str(path)).info
    rows = []
    for mode in ("ours",) if a.skip_baseline else ("baseline", "ours"):
        runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, str(path), mode], check=True,
                                          capture_output=True, text=True).stdout) for _ in range(a.repeats)]
        rows.append((mode, statistics.median(r["rss_mib"] for r in runs),
                     statistics.median(r["seconds"] for r in runs)))
    print(f"\n{a.chroms} x {a.mb:g} Mb at {a.res} bp: {info['nbins']} bins, {info['nnz']:,} pixels; "
          f"median of {a.repeats}\n")
    print(f"{'':<10} {'peak RSS MiB':>13} {'seconds':>9}")
    for mode, rss, sec in rows:
        print(f"{mode:<10} {rss:>13.0f} {sec:>9.1f}")
    if len(rows) == 2:
        print(f"{'ratio':<10} {rows[1][1] / rows[0][1]:>13.2f} {rows[1][2] / rows[0][2]:>9.2f}   (ours / baseline)")


if __name__ == "__main__":
    main()
