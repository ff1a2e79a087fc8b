"""``chromoformer workflow --preset roadmap`` end to end against a loopback imitation of Roadmap, GENCODE, UCSC
and the original's pcHi-C pickles: two epigenomes (E003 -> H1, E116 -> GM) whose files are two simulated cell
types, fetched by the workflow's own download jobs, preprocessed, trained, evaluated and predicted."""

from __future__ import annotations

import gzip
import pickle
import shutil
import subprocess
from collections import Counter

import pandas as pd
import pytest

from chromoformer.config import MARKS
from chromoformer.preprocess.simulate import CHROMHMM, SimConfig, simulate_cells


def tagalign(bam) -> bytes:
    """A BAM's reads as Roadmap's tagAlign (chrom, start, end, N, 1000, strand), gzipped."""
    import pysam

    lines = []
    with pysam.AlignmentFile(str(bam)) as f:
        for r in f.fetch(until_eof=True):
            if not r.is_unmapped:
                lines.append(f"{r.reference_name}\t{r.reference_start}\t{r.reference_end}\tN\t1000\t"
                             f"{'-' if r.is_reverse else '+'}\n")
    return gzip.compress("".join(lines).encode())


def pchic_pickles(table) -> tuple[bytes, bytes]:
    """A pcHi-C table as the original's frag2neighbors / pair2score pickles (fragments as chrom:start-end)."""
    t = pd.read_csv(table, sep="\t")
    f2n, p2s = {}, {}
    for r in t.itertuples():
        bait, oe = f"{r.bait_chrom}:{r.bait_start}-{r.bait_end}", f"{r.oe_chrom}:{r.oe_start}-{r.oe_end}"
        f2n.setdefault(bait, set()).add(oe)
        p2s[(bait, oe)] = float(r.score)
    return pickle.dumps(f2n), pickle.dumps(p2s)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_roadmap_preset_end_to_end_on_loopback(loopback, tmp_path, monkeypatch):
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    cells, expression = simulate_cells(tmp_path / "sim", SimConfig(span_mb=16), names=("E003", "E116"))
    u = loopback.url
    for env, path in (("ROADMAP", "/roadmap"), ("PCHIC", "/pchic"), ("GENCODE", "/gencode"), ("UCSC", "/ucsc")):
        monkeypatch.setenv(f"CHROMOFORMER_{env}_URL", u + path)
    for eid, p in cells.items():
        for m in MARKS:
            how = {"cut": True} if (eid, m) == ("E003", "H3K4me3") else {"fail": 1} if m == "H3K27ac" else {}
            loopback.add(f"/roadmap/data/byFileType/alignments/consolidated/{eid}-{m}.tagAlign.gz",
                         tagalign(p[f"bam_{m}"]), **how)
    e = pd.read_csv(expression, sep="\t").assign(E000=1.0)[["gene_id", "E000", "E003", "E116"]]
    loopback.add("/roadmap/data/byDataType/rna/expression/57epigenomes.RPKM.pc.gz",
                 gzip.compress(e.to_csv(sep="\t", index=False).encode()))
    first = cells["E003"]
    loopback.add("/gencode/release_19/gencode.v19.annotation.gtf.gz", gzip.compress(first["gtf"].read_bytes()))
    loopback.add("/ucsc/hg19/bigZips/hg19.chrom.sizes", first["sizes"].read_bytes())
    for eid, tissue in (("E003", "H1"), ("E116", "GM")):
        f2n, p2s = pchic_pickles(cells[eid]["pchic"])
        loopback.add(f"/pchic/{tissue}_frag2neighbors.pickle", f2n)
        loopback.add(f"/pchic/{tissue}_pair2score.pickle", p2s)

    wd = tmp_path / "wf"
    argv = ["chromoformer", "workflow", "--preset", "roadmap", "--samples", "E003", "E116", "--epochs", "1",
            "--directory", str(wd), "--cores", "2"]
    r = subprocess.run([*argv, "--", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for eid in ("E003", "E116"):
        m = pd.read_csv(wd / eid / "evaluation" / "metrics.tsv", sep="\t")
        assert m.fold.tolist()[-1] == "pooled" and m.n.iloc[-1] == len(pd.read_csv(wd / eid / "meta.csv"))
        pred = pd.read_csv(wd / eid / "predictions.csv")
        assert len(pred) == len(pd.read_csv(wd / eid / "meta.csv")) and pred.prediction.between(0, 1).all()
    assert (wd / "roadmap.samples.yaml").is_file() and (wd / "pchic" / "H1.tsv").is_file()
    # every file downloaded once (the shared matrix and annotation too); the 500 answered once and retried,
    # the cut transfer resumed with a Range request
    gets = Counter(path for path, _ in loopback.requests)
    assert gets["/roadmap/data/byDataType/rna/expression/57epigenomes.RPKM.pc.gz"] == 1
    assert gets["/gencode/release_19/gencode.v19.annotation.gtf.gz"] == 1
    assert gets["/roadmap/data/byFileType/alignments/consolidated/E116-H3K27ac.tagAlign.gz"] == 2
    cut = "/roadmap/data/byFileType/alignments/consolidated/E003-H3K4me3.tagAlign.gz"
    assert [rng is not None for path, rng in loopback.requests if path == cut] == [False, True]
    assert not list((wd / "downloads").rglob("*.part"))
    r2 = subprocess.run([*argv, "--", "--dry-run"], capture_output=True, text=True)
    assert r2.returncode == 0 and "Nothing to be done" in r2.stdout + r2.stderr
