"""``chromoformer simulate --genome-scale``: a whole human genome at read level.

Same generative model as :mod:`chromoformer.preprocess.simulate` (promoter activity from
H3K4me3/H3K27ac/H3K9ac minus H3K27me3 at TSS +- 1 kb; pCRE drive from H3K27ac/H3K4me1 of
pcHi-C other ends; log2(RPKM + 1) = 1 + 3 P + 0.6 drive + N(0, 0.4)), laid out on hg19:

* chromosomes chr1-22 and chrX at their real hg19 sizes (the first ``fraction`` of each);
* genes at real RefSeq TSSs (``ANCHORFILES/hg19/RefSeqTSS.hg19.txt.gz`` of Debian's
  ``chromhmm-example``), at least 5 kb apart, ``genes`` x ``fraction`` of them drawn at
  random (19,000 at full size, about the protein-coding genes);
* marks: GM12878 chr11's real 200-bp presence pattern (ENCODE via ChromHMM) tiled along each
  chromosome from a random offset, with the TSS +- 2 kb window of a random real chr11 TSS
  (same orientation) pasted at every gene, so promoters look like promoters;
* reads: ``reads_per_mark`` x ``fraction`` 36-bp reads per mark, ``background_share`` of them
  uniform and the rest in the mark's bins, written chromosome by chromosome as sorted,
  indexed BAMs (:mod:`chromoformer.preprocess.bam_writer`): never all reads in memory.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import MARKS
from chromoformer.errors import SimulationError
from chromoformer.files.atomic import write_table
from chromoformer.files.layouts import SimulationFiles
from chromoformer.preprocess.bam_writer import SortedBamWriter
from chromoformer.preprocess.simulate import BIN, CHROMHMM, TSS, load_marks
from chromoformer.progress import tqdm

log = logging.getLogger(__name__)
HG19 = {"chr1": 249250621, "chr2": 243199373, "chr3": 198022430, "chr4": 191154276, "chr5": 180915260,
        "chr6": 171115067, "chr7": 159138663, "chr8": 146364022, "chr9": 141213431, "chr10": 135534747,
        "chr11": 135006516, "chr12": 133851895, "chr13": 115169878, "chr14": 107349540, "chr15": 102531392,
        "chr16": 90354753, "chr17": 81195210, "chr18": 78077248, "chr19": 59128983, "chr20": 63025520,
        "chr21": 48129895, "chr22": 51304566, "chrX": 155270560}
HG19_TSS = "ANCHORFILES/hg19/RefSeqTSS.hg19.txt.gz"
PASTE = 10  # bins of 200 bp each side of a TSS taken from a real chr11 promoter


@dataclass(frozen=True)
class GenomeSimConfig:
    fraction: float = 1.0  # of every chromosome (genes and reads scale with it)
    reads_per_mark: int = 25_000_000  # at fraction 1
    genes: int = 19_000  # at fraction 1 (a random subset of the real TSSs, ~24,000 of them 5 kb apart)
    background_share: float = 0.6
    read_len: int = 36
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1 or self.reads_per_mark < 1 or not 0 < self.background_share < 1:
            raise SimulationError(f"fraction must be in (0, 1], reads_per_mark >= 1 and background_share in (0, 1); "
                                  f"got {self.fraction}, {self.reads_per_mark}, {self.background_share}")
        if round(self.genes * self.fraction) < 4 or self.read_len < 1 or self.seed < 0:
            raise SimulationError(f"genes x fraction must be >= 4 (one per CV split), read_len >= 1 and seed >= 0; "
                                  f"got {self.genes} x {self.fraction}, {self.read_len}, {self.seed}")


def _genes(root: Path, sizes: dict[str, int]) -> pd.DataFrame:
    path = root / HG19_TSS
    if not path.is_file():
        raise SimulationError(f"{path} not found: install Debian's chromhmm-example (apt-get install chromhmm-example)")
    t = pd.read_csv(path, sep="\t", header=None, names=["chrom", "tss", "strand"])
    t = t[t.chrom.isin(sizes)]
    t = t[(t.tss >= 25_000) & (t.tss < t.chrom.map(sizes) - 25_000)].sort_values(["chrom", "tss"])
    t = t.drop_duplicates(["chrom", "tss"])
    gap = t.groupby("chrom").tss.diff().fillna(10**9)
    t = t[gap >= 5000]
    order = {c: i for i, c in enumerate(sizes)}
    t = t.assign(o=t.chrom.map(order)).sort_values(["o", "tss"]).drop(columns="o").reset_index(drop=True)
    return t.assign(gene_id=[f"GSIM{i:05d}" for i in range(len(t))])


def _layouts(root: Path, sizes: dict[str, int], genes: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(7, n_bins) bool presence per chromosome (see the module docstring)."""
    pattern = load_marks(root, 130.0, 0)  # chr11 (hg18) from 2 Mb on
    with gzip.open(root / TSS, "rt") as f:
        t11 = pd.read_csv(f, sep="\t", header=None, names=["chrom", "pos", "strand"])
    t11 = t11[(t11.chrom == "chr11")]
    b11 = (t11.pos.to_numpy() - 2_000_000) // BIN
    ok = (b11 >= PASTE) & (b11 < pattern.shape[1] - PASTE)
    b11, s11 = b11[ok], t11.strand.to_numpy()[ok]
    out = {}
    for c, size in sizes.items():
        n = size // BIN
        idx = (int(rng.integers(0, pattern.shape[1])) + np.arange(n)) % pattern.shape[1]
        lay = pattern[:, idx]
        for g in genes[genes.chrom == c].itertuples():
            k = int(rng.integers(0, len(b11)))
            win = pattern[:, b11[k] - PASTE : b11[k] + PASTE]
            if s11[k] != g.strand:
                win = win[:, ::-1]
            tb = g.tss // BIN
            lay[:, tb - PASTE : tb + PASTE] = win
        out[c] = lay
    return out


def _interactions(genes: pd.DataFrame, sizes: dict[str, int], lay: dict[str, np.ndarray], rng: np.random.Generator):
    rows, pcre_truth, drive = [], [], np.zeros(len(genes))
    for c, size in sizes.items():
        ends = np.cumsum(rng.integers(2_000, 12_001, size=size // 2_000 + 10))
        ends = ends[ends < size]
        starts, ends = np.r_[0, ends], np.r_[ends, size]
        for i in np.flatnonzero((genes.chrom == c).to_numpy()):
            tss = int(genes.tss[i])
            fi = np.searchsorted(ends, tss, side="right")
            lo, hi = np.searchsorted(starts, tss - 500_000), np.searchsorted(starts, tss + 500_000)
            cand = lo + np.flatnonzero(np.abs(starts[lo:hi] - tss) > 20_000)
            hits = []
            for j in rng.choice(cand, size=min(len(cand), int(rng.integers(4, 17))), replace=False):
                s, e = int(starts[j]), int(ends[j])
                score = 1 + rng.exponential(1.5) * (1 - abs((s + e) // 2 - tss) / 600_000)
                enh = float(lay[c][[0, 5], s // BIN : max(e // BIN, s // BIN + 1)].mean())
                rows.append((c, int(starts[fi]), int(ends[fi]), c, s, e, round(score, 4)))
                pcre_truth.append((genes.gene_id[i], f"{c}:{s}-{e}", round(score, 4), enh))
                hits.append((score, enh))
            drive[i] = sum(sc * en for sc, en in sorted((h for h in hits if h[0] > 1.5), reverse=True)[:8])
    return rows, pcre_truth, drive


def simulate_genome(out: str | Path, cfg: GenomeSimConfig = GenomeSimConfig(), root: Path = CHROMHMM,
                    ) -> dict[str, Path]:
    """Write sizes, GTF, pcHi-C, expression, truth and 7 BAMs into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    sizes = {c: int(n * cfg.fraction) // BIN * BIN for c, n in HG19.items()}
    (out / "genome.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in sizes.items()))
    genes = _genes(root, sizes)
    want = round(cfg.genes * cfg.fraction)
    if len(genes) > want:
        keep = np.sort(rng.choice(len(genes), size=want, replace=False))
        genes = genes.iloc[keep].reset_index(drop=True).assign(gene_id=[f"GSIM{i:05d}" for i in range(want)])
    lay = _layouts(root, sizes, genes, rng)
    gtf = []
    for g in genes.itertuples():
        length = int(rng.integers(5_000, 60_000))
        s, e = (g.tss, g.tss + length) if g.strand == "+" else (max(g.tss - length + 1, 0), g.tss + 1)
        gtf.append(f'{g.chrom}\tsim\ttranscript\t{s + 1}\t{e}\t.\t{g.strand}\t.\tgene_id "{g.gene_id}"; '
                   f'transcript_id "{g.gene_id}.1"; gene_type "protein_coding"; transcript_type "protein_coding";\n')
    (out / "genes.gtf").write_text("".join(gtf))
    p = np.array([lay[g.chrom][[1, 5, 6], g.tss // BIN - 5 : g.tss // BIN + 5].mean()
                  - lay[g.chrom][3, g.tss // BIN - 5 : g.tss // BIN + 5].mean() for g in genes.itertuples()])
    rows, pcre_truth, drive = _interactions(genes, sizes, lay, rng)
    write_table(pd.DataFrame(rows, columns=["bait_chrom", "bait_start", "bait_end", "oe_chrom", "oe_start", "oe_end",
                                            "score"]), SimulationFiles(out).pchic, sep="\t")
    oracle = 1 + 3 * p + 0.6 * drive
    log2expr = oracle + rng.normal(0, 0.4, size=len(oracle))
    rpkm = np.round(np.maximum(np.exp2(log2expr) - 1, 0), 4)
    write_table(pd.DataFrame({"gene_id": genes.gene_id, "SIM": rpkm}), SimulationFiles(out).expression, sep="\t")
    write_table(pd.DataFrame(pcre_truth, columns=["gene_id", "pcre", "score", "enhancer_activity"]),
                SimulationFiles(out).pcre_truth, sep="\t")
    write_table(pd.DataFrame({"gene_id": genes.gene_id, "promoter_activity": p, "pcre_drive": drive,
                              "oracle": oracle, "log2_rpkm": log2expr}), SimulationFiles(out).truth, sep="\t")
    total_bins = sum(v.shape[1] for v in lay.values())
    reads = cfg.reads_per_mark * cfg.fraction
    bams = {}
    for m, name in enumerate(tqdm(MARKS, desc="simulate reads", unit="mark")):
        present = sum(int(v[m].sum()) for v in lay.values())
        bg, enr = cfg.background_share * reads / total_bins, (1 - cfg.background_share) * reads / max(present, 1)
        bams[name] = out / f"{name}.bam"
        with SortedBamWriter(bams[name], sizes, cfg.read_len) as w:
            for c, size in sizes.items():
                counts = rng.poisson(bg + enr * lay[c][m])
                starts = np.repeat(np.arange(len(counts), dtype=np.int64) * BIN, counts)
                starts = np.sort(np.minimum(starts + rng.integers(0, BIN, size=len(starts)), size - cfg.read_len))
                w.add(c, starts, rng.random(len(starts)) < 0.5)
    log.info("simulated %d genes on %d chromosomes, %d interactions, 7 BAMs of ~%.2g reads in %s", len(genes),
             len(sizes), len(rows), reads, out)
    sim = SimulationFiles(out)
    return {"gtf": out / "genes.gtf", "pchic": sim.pchic, "expression": sim.expression,
            "sizes": out / "genome.sizes", "truth": sim.truth, "pcre_truth": sim.pcre_truth,
            **{f"bam_{k}": v for k, v in bams.items()}}
