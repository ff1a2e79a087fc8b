"""Real Hi-C -> pCREs: GM12878 MboI read pairs (cooler's test data, hg19) at 10 and 40 kb.

The pairs are binned by ``cooler cload pairs`` over the whole hg19 genome (chromosome sizes
from cooler's 2-Mb bin table), and one TSS is placed every 150 kb on every chromosome (~20,600
"genes", as many as a real annotation's protein-coding genes). Each case runs in its own process:

* ours: :func:`chromoformer.preprocess.hic_scores.interactions_from_cool` as the workflow calls it
  (raw counts: 100,000 pairs are too few for ``cooler balance`` to converge; 2 Mb cap; O/E > 1.5);
* baseline: cooltools ``expected_cis`` (valid-pixel averages, the field's reference) plus a
  vectorised O/E of the same pixels, measured in the same run.

Prints peak RSS, wall time, the pCRE distance distribution, and the largest relative
difference between the two O/E scores over all pCREs. Usage::

    pip install cooler cooltools
    python bench/real_hic.py [--data .cache/cooler-testdata]   # .ci/run unpacks the data there
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd, cooler
path, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
clr = cooler.Cooler(path)
genes = pd.DataFrame({"chrom": c, "tss_all": str(s)} for c in clr.chromnames
                     for s in range(75_000, int(clr.chromsizes[c]), 150_000))
t = time.perf_counter()
if mode == "ours":
    from chromoformer.preprocess.hic_scores import interactions_from_cool
    res = interactions_from_cool(path, genes, weight=None, max_distance=2_000_000, min_score=1.5)
    res = res[["bait_chrom", "bait_start", "oe_start", "score"]]
else:
    from cooltools.api.expected import expected_cis
    res_bp, k = clr.binsize, 2_000_000 // clr.binsize
    e = expected_cis(clr, clr_weight_name=None, ignore_diags=0, smooth=False).set_index(["region1", "dist"])
    px, bins = clr.pixels()[:], clr.bins()[:]
    chrom = bins.chrom.astype(str).to_numpy()
    b1, b2 = px.bin1_id.to_numpy(), px.bin2_id.to_numpy()
    d = b2 - b1
    keep = (chrom[b1] == chrom[b2]) & (d >= 1) & (d <= k)
    b1, b2, d = b1[keep], b2[keep], d[keep]
    oe = px["count"].to_numpy()[keep] / e["count.avg"].loc[list(zip(chrom[b1], d))].to_numpy()
    tss = np.zeros(len(bins), bool)
    for c, g in genes.groupby("chrom"):
        tss[clr.offset(c) + g.tss_all.astype(int).to_numpy() // res_bp] = True
    parts = []
    for a, b in ((b1, b2), (b2, b1)):
        s = tss[a] & (oe > 1.5)
        parts.append(pd.DataFrame({"bait_chrom": chrom[a[s]], "bait_start": bins.start.to_numpy()[a[s]],
                                   "oe_start": bins.start.to_numpy()[b[s]], "score": oe[s]}))
    res = pd.concat(parts)
seconds = time.perf_counter() - t
res.to_csv(out, sep="\t", index=False)
print(json.dumps({"seconds": seconds, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "genes": len(genes)}))
"""


def _run(path: Path, mode: str, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(out)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{mode} failed on {path}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import numpy as np
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".cache" / "cooler-testdata"))
    ap.add_argument("--res", type=int, nargs="+", default=[10_000, 40_000])
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from real_data import GM12878_PAIRS, cool_from_pairs

    data = Path(args.data)
    if not (data / GM12878_PAIRS).is_file():
        raise SystemExit(f"{data}: no {GM12878_PAIRS}; run .ci/run's install step or pass --data")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.res:
            cool = cool_from_pairs(data, res, Path(tmp) / f"gm12878.{res}.cool")
            got = {m: _run(cool, m, Path(tmp) / f"{m}.{res}.tsv") for m in ("ours", "cooltools")}
            ours, ref = (pd.read_csv(Path(tmp) / f"{m}.{res}.tsv", sep="\t") for m in ("ours", "cooltools"))
            key = ["bait_chrom", "bait_start", "oe_start"]
            both = ours.merge(ref, on=key, how="outer", suffixes=("", "_ref"), indicator=True)
            dist = (ours.oe_start - ours.bait_start).abs()
            rows.append({"res": f"{res // 1000} kb", "genes": got["ours"]["genes"], "pCREs": len(ours),
                         "genes w/ pCRE": ours.groupby(["bait_chrom", "bait_start"]).ngroups,
                         "median kb": dist.median() / 1e3, "90% kb": dist.quantile(0.9) / 1e3,
                         "max kb": dist.max() / 1e3, "> 1 Mb": f"{(dist > 1e6).mean():.1%}",
                         "only one side": int((both._merge != "both").sum()),
                         "max rel diff": float(np.nanmax(np.abs(both.score / both.score_ref - 1))),
                         "ours RSS MiB": round(got["ours"]["rss_mib"]), "ours s": round(got["ours"]["seconds"], 1),
                         "cooltools RSS MiB": round(got["cooltools"]["rss_mib"]),
                         "cooltools s": round(got["cooltools"]["seconds"], 1)})
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
