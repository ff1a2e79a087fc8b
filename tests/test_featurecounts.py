"""featureCounts (Debian's subread) run for real on a BAM of known reads over a SAF annotation: its
output table is read as it is ('#' program line, Geneid..Length columns, samples named by BAM path),
its Length column equals our exon-union length, and counts become RPKM and labels exactly.
Skipped where featureCounts or samtools is not installed (apt-get install subread samtools)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from chromoformer.errors import ExpressionError
from chromoformer.preprocess.expression import add_labels, read_expression_table
from chromoformer.preprocess.genes import prepare_genes

pytestmark = pytest.mark.skipif(not (shutil.which("featureCounts") and shutil.which("samtools")),
                                reason="featureCounts/samtools not installed (apt-get install subread samtools)")

# A (+): two exons, 700 bp; B (-): 10 kb; C (+): 300 bp; D (+): overlapping exons, union 1,000 bp
SAF = ("GeneID\tChr\tStart\tEnd\tStrand\n"
       "A\tchr1\t21001\t21200\t+\nA\tchr1\t22001\t22500\t+\n"
       "B\tchr5\t100001\t110000\t-\n"
       "C\tchr1\t500001\t500300\t+\n"
       "D\tchr1\t600001\t600600\t+\nD\tchr1\t600501\t601000\t+\n")
READS = {"A": [(21050, 20), (22100, 10), (21500, 5)],  # 5 in A's intron: not counted
         "B": [(105000, 40)], "C": [(500100, 3)], "D": []}
COUNTS = {"A": 30, "B": 40, "C": 3, "D": 0}
LENGTHS = {"A": 700, "B": 10_000, "C": 300, "D": 1_000}


def _bam(tmp_path):
    chrom = {"A": "chr1", "B": "chr5", "C": "chr1", "D": "chr1"}
    lines = ["@HD\tVN:1.6\tSO:coordinate", "@SQ\tSN:chr1\tLN:1000000", "@SQ\tSN:chr5\tLN:1000000"]
    reads = sorted((chrom[g], pos, i) for g, spots in READS.items() for pos, n in spots for i in range(n))
    lines += [f"r{c}_{p}_{i}\t0\t{c}\t{p}\t60\t50M\t*\t0\t0\t{'A' * 50}\t{'I' * 50}" for c, p, i in reads]
    sam = tmp_path / "E003.sam"
    sam.write_text("\n".join(lines) + "\n")
    bam = tmp_path / "E003.bam"
    subprocess.run(["samtools", "view", "-b", "-o", str(bam), str(sam)], check=True)
    return bam


@pytest.fixture
def counted(tmp_path):
    saf = tmp_path / "genes.saf"
    saf.write_text(SAF)
    bam = _bam(tmp_path)
    out = tmp_path / "counts.txt"
    subprocess.run(["featureCounts", "-F", "SAF", "-a", str(saf), "-o", str(out), str(bam)], check=True,
                   capture_output=True)
    return saf, out, str(bam)


def test_featurecounts_table_is_read_as_it_is(counted):
    saf, out, bam = counted
    assert out.read_text().startswith("# Program:featureCounts")
    values, lengths = read_expression_table(out, bam)
    assert values.to_dict() == COUNTS
    assert lengths.to_dict() == LENGTHS
    assert read_expression_table(out, "E003")[0].equals(values)  # the sample by its BAM's name
    genes = prepare_genes(saf).set_index("gene_id")
    assert genes.length.to_dict() == LENGTHS  # our exon union == featureCounts' own
    with pytest.raises(ExpressionError, match=r"featureCounts sample columns are .*E003\.bam"):
        read_expression_table(out, "E004")


def test_featurecounts_with_another_unit_is_warned(counted, caplog):
    saf, out, _ = counted
    got = add_labels(prepare_genes(saf), out, "E003", unit="tpm").set_index("gene_id")
    assert got.expression.to_dict() == {g: float(c) for g, c in COUNTS.items()}  # as the user said, unnormalised
    assert "featureCounts output, which holds read counts, but --unit tpm" in caplog.text


def test_featurecounts_counts_become_rpkm_and_labels(counted):
    saf, out, bam = counted
    genes = prepare_genes(saf)
    got = add_labels(genes, out, "E003", unit="counts").set_index("gene_id")
    total = sum(COUNTS.values())
    want = {g: COUNTS[g] * 1e9 / (LENGTHS[g] * total) for g in COUNTS}
    np.testing.assert_allclose(got.expression.loc[list(want)], list(want.values()), rtol=1e-12)
    # RPKM: A 587,084  B 54,795  C 136,986  D 0 -> median 95,890: A and C expressed
    assert got.label.to_dict() == {"A": 1, "B": 0, "C": 1, "D": 0}
    # no --unit: a featureCounts table holds counts, nothing else
    assert add_labels(genes, out, "E003").equals(add_labels(genes, out, "E003", unit="counts"))
