"""``chromoformer simulate``: a realistic synthetic dataset at read level.

Source of the mark patterns (real data shipped by Debian's ``chromhmm-example``, from
ENCODE via ChromHMM): ``SAMPLEDATA_HG18/GM12878_chr11_binary.txt.gz``, the presence (1)
or absence (0) of H3K27ac, H3K27me3, H3K36me3, H3K4me1, H3K4me3 and H3K9ac in every
200-bp bin of human chr11 (hg18) in GM12878 cells, and ``ANCHORFILES/hg18/RefSeqTSS.hg18.txt.gz``
(real RefSeq TSSs and strands). H3K9me3, absent there, is simulated as 20-kb blocks
placed in bins where no other mark is present.

Generative model (documented; ``truth.tsv`` holds every latent value):

1. The chosen span of chr11 is cut into four equal pseudo-chromosomes named ``chr1``,
   ``chr7``, ``chr2`` and ``chr9`` so that every CV split holds genes.
2. Reads: per mark and 200-bp bin, a Poisson number of 36-bp reads with mean
   ``background + enrichment * present``, uniform within the bin, random strand.
3. Genes: RefSeq TSSs at least 5 kb apart, written as a GTF (one transcript, plus a
   shorter one for every third gene so the longest-transcript rule matters).
4. pcHi-C: the genome is cut into fragments of 2-12 kb (restriction-like); the fragment
   of each TSS is a bait; 4-16 other ends within 20-500 kb get score
   ``1 + Exp(1.5) * (1 - d / 600 kb)``.
5. Activity: promoter ``P`` = mean presence of H3K4me3, H3K27ac, H3K9ac in TSS +- 1 kb
   minus that of H3K27me3; enhancer ``E_j`` = mean presence of H3K27ac and H3K4me1 in
   fragment j.
   (per-pCRE values in ``pcre_truth.tsv``).
6. ``log2(RPKM + 1) = 1 + 3 P + 0.6 * sum_j score_j E_j (top 8 other ends with score > 1.5)
   + N(0, 0.4)``; ``oracle`` is that value without noise. Labels then follow the usual
   median rule, so a model can be compared with the oracle's AUROC, and one that ignores
   pCREs loses the distal term.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.config import MARKS
from chromoformer.data.folds import FOLDS, chroms_of_split
from chromoformer.errors import SimulationError
from chromoformer.files.atomic import write_table
from chromoformer.files.layouts import SimulationFiles
from chromoformer.progress import tqdm

log = logging.getLogger(__name__)

CHROMHMM = Path("/usr/share/doc/chromhmm/examples")
BINARY = "SAMPLEDATA_HG18/GM12878_chr11_binary.txt.gz"
TSS = "ANCHORFILES/hg18/RefSeqTSS.hg18.txt.gz"
PSEUDO = tuple(chroms_of_split(k, 1)[0] for k in FOLDS)  # one chromosome of each CV split
BIN = 200


@dataclass(frozen=True)
class SimConfig:
    span_mb: float = 60.0  # length of chr11 used, from 2 Mb on
    background: float = 0.3  # mean reads per 200-bp bin without the mark
    enrichment: float = 6.0  # extra mean reads per bin with the mark
    read_len: int = 36
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.span_mb > 0 or self.background < 0 or self.enrichment < 0 or self.read_len < 1 or self.seed < 0:
            raise SimulationError(f"span_mb must be > 0, background and enrichment >= 0, read_len >= 1 and seed >= 0; "
                                  f"got {self.span_mb}, {self.background}, {self.enrichment}, {self.read_len}, "
                                  f"{self.seed}")


def load_marks(root: Path = CHROMHMM, span_mb: float = 24.0, seed: int = 0) -> np.ndarray:
    """(7, n_bins) bool presence per 200-bp bin, rows in chromoformer's mark order."""
    path = root / BINARY
    if not path.is_file():
        raise SimulationError(f"{path} not found: install Debian's chromhmm-example (apt-get install chromhmm-example)")
    with gzip.open(path, "rt") as f:
        f.readline()
        cols = f.readline().split()
        tab = pd.read_csv(f, sep="\t", header=None, names=cols)
    lo = 2_000_000 // BIN
    if lo + int(span_mb * 1e6) // BIN > len(tab):
        raise SimulationError(f"--span-mb {span_mb:g}: the real chr11 layout ({path.name}) has "
                              f"{(len(tab) - lo) * BIN / 1e6:.1f} Mb after its first 2 Mb")
    tab = tab.iloc[lo : lo + int(span_mb * 1e6) // BIN]
    out = np.zeros((len(MARKS), len(tab)), bool)
    for i, m in enumerate(MARKS):
        if m in tab.columns:
            out[i] = tab[m].to_numpy() > 0
    rng = np.random.default_rng(seed)
    quiet = ~out.any(axis=0)
    k9 = MARKS.index("H3K9me3")
    for start in rng.choice(np.nonzero(quiet)[0], size=max(1, len(tab) // 2000), replace=False):
        out[k9, start : start + 100] = quiet[start : start + 100]
    return out


def _write_bam(path: Path, chroms: dict[str, int], reads: dict[str, tuple[np.ndarray, np.ndarray]], rl: int) -> None:
    import pysam

    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": c, "LN": n} for c, n in chroms.items()]}
    tmp = path.with_name(f".{path.name}.tmp")
    with pysam.AlignmentFile(str(tmp), "wb", header=header) as f:
        for ci, chrom in enumerate(chroms):
            pos, rev = reads[chrom]
            for i, (p, r) in enumerate(zip(pos.tolist(), rev.tolist(), strict=True)):
                a = pysam.AlignedSegment(f.header)
                a.query_name = f"{chrom}_{i}"
                a.reference_id, a.reference_start = ci, p
                a.cigartuples = ((0, rl),)
                a.flag = 16 if r else 0
                a.mapping_quality = 60
                f.write(a)
    tmp.replace(path)
    pysam.index(str(path))


def simulate(out: str | Path, cfg: SimConfig = SimConfig(), root: Path = CHROMHMM) -> dict[str, Path]:
    """Write genome sizes, GTF, 7 BAMs, pcHi-C table, expression table and truth; return their paths.

    One random generator, drawn from in a fixed order (transcripts, fragments and contacts, expression noise,
    reads), so that a seed gives the same files every time."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    marks = load_marks(root, cfg.span_mb, cfg.seed)
    n_bins = marks.shape[1] // 4
    size = n_bins * BIN
    chroms = dict.fromkeys(PSEUDO, size)
    (out / "genome.sizes").write_text("".join(f"{c}\t{n}\n" for c, n in chroms.items()))
    genes = _genes(root, size, cfg.span_mb)
    (out / "genes.gtf").write_text(_gtf(genes, rng))
    rows, pcre_truth, promoter, drive = _contacts(genes, marks, rng, size, n_bins)
    n = _write_tables(SimulationFiles(out), genes, rows, pcre_truth, promoter, drive, rng)
    bams = _reads(out, marks, rng, chroms, n_bins, cfg)
    log.info("simulated %d genes, %d interactions, 7 BAMs in %s", len(genes), n, out)
    sim = SimulationFiles(out)
    return {"gtf": out / "genes.gtf", "pchic": sim.pchic, "expression": sim.expression, "sizes": out / "genome.sizes",
            "truth": sim.truth, "pcre_truth": sim.pcre_truth, **{f"bam_{k}": v for k, v in bams.items()}}


def simulate_cells(out: str | Path, cfg: SimConfig = SimConfig(), names: tuple[str, ...] = ("A", "B"),
                   root: Path = CHROMHMM) -> tuple[dict[str, dict[str, Path]], Path]:
    """Several simulated cell types of one genome (the same genes): cell k under ``out/<name>`` with seed
    ``cfg.seed + k``, so each has its own reads, pcHi-C contacts and expression; their expression in one table
    ``out/expression.tsv`` (a column per cell). Returns each cell's paths and that table."""
    out = Path(out)
    cells = {name: simulate(out / name, dataclasses.replace(cfg, seed=cfg.seed + k), root)
             for k, name in enumerate(names)}
    tables = [pd.read_csv(p["expression"], sep="\t").rename(columns={"SIM": name}) for name, p in cells.items()]
    if any(not t.gene_id.equals(tables[0].gene_id) for t in tables):
        raise SimulationError("the simulated cells' genes differ; simulate them from one --span-mb")
    merged = tables[0]
    for t in tables[1:]:
        merged = merged.merge(t, on="gene_id")
    write_table(merged, SimulationFiles(out).expression, sep="\t")
    return cells, SimulationFiles(out).expression


def _genes(root: Path, size: int, span_mb: float) -> pd.DataFrame:
    """Real TSSs of chr11 in the span, mapped onto the pseudo-chromosomes (one per CV split)."""
    offset = 2_000_000
    tss = pd.read_csv(root / TSS, sep="\t", header=None, names=["chrom", "pos", "strand"])
    tss = tss[(tss.chrom == "chr11") & (tss.pos > offset + 25_000) & (tss.pos < offset + 4 * size - 25_000)]
    tss = tss.sort_values("pos").drop_duplicates("pos")
    tss = tss[np.diff(tss.pos.to_numpy(), prepend=-(10**9)) >= 5000]
    genes = []
    for i, t in enumerate(tss.itertuples()):
        g = t.pos - offset
        c, local = PSEUDO[g // size], g % size
        if 25_000 <= local < size - 25_000:
            genes.append((f"SIMG{i:05d}", c, local, t.strand, g // BIN))
    genes = pd.DataFrame(genes, columns=["gene_id", "chrom", "tss", "strand", "gbin"])
    if len(genes) < 4:
        raise SimulationError(f"--span-mb {span_mb:g} holds {len(genes)} real TSSs; simulate at least 1 Mb")
    return genes


def _gtf(genes: pd.DataFrame, rng: np.random.Generator) -> str:
    """One transcript per gene (two for every third gene), of random length."""
    gtf = []
    for k, g in enumerate(genes.itertuples()):
        length = int(rng.integers(5_000, 60_000))
        for j, ln in enumerate((length, length // 2) if k % 3 == 0 else (length,)):
            s, e = (g.tss, g.tss + ln) if g.strand == "+" else (g.tss - ln + 1, g.tss + 1)
            s = max(s, 0)
            gtf.append(
                f'{g.chrom}\tsim\ttranscript\t{s + 1}\t{e}\t.\t{g.strand}\t.\tgene_id "{g.gene_id}"; '
                f'transcript_id "{g.gene_id}.{j + 1}"; gene_type "protein_coding"; '
                f'transcript_type "protein_coding"; gene_name "{g.gene_id}";\n'
            )
    return "".join(gtf)


def _contacts(genes: pd.DataFrame, marks: np.ndarray, rng: np.random.Generator, size: int, n_bins: int
              ) -> tuple[list, list, np.ndarray, np.ndarray]:
    """Restriction fragments, each gene's pcHi-C contacts, and the two activities its expression follows.

    Returns (pcHi-C rows, per-pCRE truth, promoter activity (n_genes,), pCRE drive (n_genes,))."""
    frag_ends = np.cumsum(rng.integers(2_000, 12_001, size=size // 2_000 + 10))
    frag_ends = frag_ends[frag_ends < size]
    frag_starts = np.concatenate([[0], frag_ends])
    frag_ends = np.concatenate([frag_ends, [size]])
    promoter, drive, rows, pcre_truth = [], [], [], []
    for g in genes.itertuples():
        b0 = g.gbin - 5
        window = marks[:, max(b0, 0) : g.gbin + 5]
        p = window[[1, 5, 6]].mean() - window[3].mean()
        fi = np.searchsorted(frag_ends, g.tss, side="right")
        bs, be = int(frag_starts[fi]), int(frag_ends[fi])
        cand = np.nonzero((np.abs(frag_starts - g.tss) > 20_000) & (np.abs(frag_starts - g.tss) < 500_000))[0]
        chosen = rng.choice(cand, size=min(len(cand), int(rng.integers(4, 17))), replace=False)
        hits = []
        for j in chosen:
            s, e = int(frag_starts[j]), int(frag_ends[j])
            d = abs((s + e) // 2 - g.tss)
            score = 1 + rng.exponential(1.5) * (1 - d / 600_000)
            gs = PSEUDO.index(g.chrom) * n_bins
            enh = marks[[0, 5], gs + s // BIN : gs + max(e // BIN, s // BIN + 1)].mean()
            rows.append((g.chrom, bs, be, g.chrom, s, e, round(score, 4)))
            pcre_truth.append((g.gene_id, f"{g.chrom}:{s}-{e}", round(score, 4), float(enh)))
            hits.append((score, enh))
        top = sorted((h for h in hits if h[0] > 1.5), reverse=True)[:8]
        promoter.append(p)
        drive.append(float(sum(sc * en for sc, en in top)))
    return rows, pcre_truth, np.array(promoter), np.array(drive)


def _write_tables(sim: SimulationFiles, genes: pd.DataFrame, rows: list, pcre_truth: list, promoter: np.ndarray,
                  drive: np.ndarray, rng: np.random.Generator) -> int:
    """pcHi-C, expression (the oracle plus noise), per-pCRE truth and per-gene truth; returns the contacts."""
    write_table(
        pd.DataFrame(rows, columns=["bait_chrom", "bait_start", "bait_end", "oe_chrom", "oe_start", "oe_end", "score"]),
        sim.pchic, sep="\t")
    oracle = 1 + 3 * promoter + 0.6 * drive
    log2expr = oracle + rng.normal(0, 0.4, size=len(oracle))
    rpkm = np.round(np.maximum(np.exp2(log2expr) - 1, 0), 4)
    write_table(pd.DataFrame({"gene_id": genes.gene_id, "SIM": rpkm}), sim.expression, sep="\t")
    write_table(pd.DataFrame(pcre_truth, columns=["gene_id", "pcre", "score", "enhancer_activity"]), sim.pcre_truth,
                sep="\t")
    write_table(pd.DataFrame({"gene_id": genes.gene_id, "promoter_activity": promoter, "pcre_drive": drive,
                              "oracle": oracle, "log2_rpkm": log2expr}), sim.truth, sep="\t")
    return len(rows)


def _reads(out: Path, marks: np.ndarray, rng: np.random.Generator, chroms: dict[str, int], n_bins: int,
           cfg: SimConfig) -> dict[str, Path]:
    """One BAM per mark: Poisson read counts per 200-bp bin from the mark's presence."""
    size = n_bins * BIN
    bams = {}
    for m, name in enumerate(tqdm(MARKS, desc="simulate reads", unit="mark")):
        reads = {}
        for ci, c in enumerate(PSEUDO):
            pres = marks[m, ci * n_bins : (ci + 1) * n_bins]
            lam = cfg.background + cfg.enrichment * pres
            counts = rng.poisson(lam)
            starts = np.repeat(np.arange(n_bins) * BIN, counts) + rng.integers(0, BIN, size=counts.sum())
            starts = np.sort(np.minimum(starts, size - cfg.read_len))
            reads[c] = (starts, rng.random(len(starts)) < 0.5)
        bams[name] = out / f"{name}.bam"
        _write_bam(bams[name], chroms, reads, cfg.read_len)
    return bams
