"""Where the real files that packages ship are found (never downloaded by a test).

cooler's test data (GM12878 MboI Hi-C read pairs, hg19; Rao et al. 2014, 100,000 pairs) is in
cooler's source distribution only; ``.ci/run`` unpacks it into ``.cache/cooler-testdata`` in its
install step. ``CHROMOFORMER_COOLER_TESTDATA`` points elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
GM12878_PAIRS = "hg19.GM12878-MboI.pairs.subsample.sorted.txt.gz"
HG19_BINS = "hg19.bins.2000kb.bed.gz"


def cooler_testdata() -> Path:
    """The folder holding cooler's test data, or skip the test saying how to get it."""
    d = Path(os.environ.get("CHROMOFORMER_COOLER_TESTDATA", REPO / ".cache" / "cooler-testdata"))
    if not (d / GM12878_PAIRS).is_file() or not (d / HG19_BINS).is_file():
        pytest.skip(f"cooler's test data is not in {d} (.ci/run unpacks it from the cooler sdist: "
                    "pip download --no-binary :all: --no-deps cooler)")
    return d


def hg19_chrom_sizes(data: Path, out: Path) -> Path:
    """Chromosome sizes from cooler's hg19 2-Mb bin table (the last bin of each ends at the chromosome end)."""
    bins = pd.read_csv(data / HG19_BINS, sep="\t", header=None, names=["chrom", "start", "end"])
    bins.groupby("chrom", sort=False).end.max().to_csv(out, sep="\t", header=False)
    return out


def cool_from_pairs(data: Path, res: int, out: Path) -> Path:
    """The GM12878 pairs binned at ``res`` bp by cooler's own ``cload pairs`` (an independent binning)."""
    sizes = hg19_chrom_sizes(data, out.with_suffix(".sizes"))
    subprocess.run([sys.executable, "-m", "cooler", "cload", "pairs", "-c1", "1", "-p1", "2", "-c2", "4", "-p2", "5",
                    f"{sizes}:{res}", str(data / GM12878_PAIRS), str(out)], check=True, capture_output=True)
    return out


CHROMHMM = Path("/usr/share/doc/chromhmm/examples")


def rsubread_annotation(build: str) -> Path:
    """Rsubread's in-built NCBI RefSeq exon table (SAF) for ``build`` (hg19: NCBI build 37.2, hg38),
    which ``.ci/run`` unpacks from Debian's r-bioc-rsubread into ``.cache/rsubread-annot``
    (``CHROMOFORMER_RSUBREAD_ANNOT`` points elsewhere); skip the test saying how to get it."""
    d = Path(os.environ.get("CHROMOFORMER_RSUBREAD_ANNOT", REPO / ".cache" / "rsubread-annot"))
    f = d / f"{build}_RefSeq_exon.txt"
    if not f.is_file():
        pytest.skip(f"{f} is absent (.ci/run unpacks it: apt-get download r-bioc-rsubread; dpkg-deb -x)")
    return f


def chromhmm_file(rel: str) -> Path:
    """A file of Debian's chromhmm-example (real UCSC hg19 refGene TSSs, chromosome sizes), or skip."""
    f = CHROMHMM / rel
    if not f.is_file():
        pytest.skip(f"{f} is absent (apt-get install chromhmm-example)")
    return f
