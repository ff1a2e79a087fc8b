"""Read depth from BAM/BED/bigWig: exact small cases and equality with bedtools genomecov."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pysam
import pytest

from chromoformer.data.metadata import Region
from chromoformer.preprocess.coverage import BamReads, BedReads, ReadOptions, SignalError, open_signal
from chromoformer.preprocess.signals import build_signal_store

CHROMS = {"chr1": 5000, "chr2": 3000}


def write_bam(path: Path, reads, sort=True) -> Path:
    """reads: (chrom, start, length, reverse, flag, mapq)."""
    header = {"HD": {"VN": "1.6", "SO": "unsorted"}, "SQ": [{"SN": c, "LN": n} for c, n in CHROMS.items()]}
    raw = path.with_suffix(".unsorted.bam")
    with pysam.AlignmentFile(str(raw), "wb", header=header) as f:
        for i, (chrom, start, length, rev, flag, mapq) in enumerate(reads):
            a = pysam.AlignedSegment(f.header)
            a.query_name = f"r{i}"
            a.reference_name, a.reference_start = chrom, start
            a.cigarstring = f"{length}M"
            a.query_sequence = "A" * length
            a.flag = flag | (0x10 if rev else 0)
            a.mapping_quality = mapq
            f.write(a)
    if not sort:
        return raw
    pysam.sort("-o", str(path), str(raw))
    pysam.index(str(path))
    return path


READS = [  # chrom, start, len, reverse, flag, mapq
    ("chr1", 100, 50, False, 0, 60),
    ("chr1", 120, 50, True, 0, 60),
    ("chr1", 140, 50, False, 0x400, 60),  # duplicate
    ("chr1", 160, 50, False, 0x100, 60),  # secondary
    ("chr1", 180, 50, False, 0, 5),  # low MAPQ
    ("chr1", 300, 36, False, 0x200, 60),  # QC fail: never counted
    ("chr2", 10, 20, True, 0, 60),
]


def expected(spans, start, end):
    d = np.zeros(end - start, int)
    for s, e in spans:
        d[max(s, start) - start : max(min(e, end) - start, 0)] += 1
    return d


@pytest.fixture
def bam(tmp_path):
    return write_bam(tmp_path / "x.bam", READS)


def test_default_counts_every_mapped_alignment_as_aligned(bam):
    d = BamReads(bam).spans("chr1").depth(0, 400)
    want = expected([(100, 150), (120, 170), (140, 190), (160, 210), (180, 230)], 0, 400)
    np.testing.assert_array_equal(d, want)


def test_filters(bam):
    opts = ReadOptions(min_mapq=10, skip_duplicates=True, skip_secondary=True)
    d = BamReads(bam, opts).spans("chr1").depth(0, 400)
    np.testing.assert_array_equal(d, expected([(100, 150), (120, 170)], 0, 400))


def test_extension_and_shift_follow_strand(bam):
    opts = ReadOptions(extend=100, shift=10, min_mapq=10, skip_duplicates=True, skip_secondary=True)
    d = BamReads(bam, opts).spans("chr1").depth(0, 400)
    # + read at 100: [100, 200) then +10 -> [110, 210); - read ending at 170: [70, 170) then -10 -> [60, 160)
    np.testing.assert_array_equal(d, expected([(110, 210), (60, 160)], 0, 400))


def test_region_windows_clip_reads(bam):
    d = BamReads(bam).spans("chr2").depth(15, 25)
    np.testing.assert_array_equal(d, [1] * 10)
    assert BamReads(bam).spans("chr2").depth(100, 120).sum() == 0


def test_unsorted_bam_without_index_is_refused(tmp_path):
    raw = write_bam(tmp_path / "y.bam", READS, sort=False)
    with pytest.raises(SignalError, match="coordinate-sorted and indexed; run 'samtools sort"):
        BamReads(raw)


@pytest.mark.parametrize("form", ["plain", "crlf", "gzip"])  # gzip with no .gz in the name: told by content
def test_bed_reads_match_bam(bam, tmp_path, form):
    bed = tmp_path / "r.tagAlign"
    text = "".join(f"{c}\t{s}\t{s + n}\tN\t1000\t{'-' if r else '+'}\n" for c, s, n, r, *_ in READS)
    text = text.replace("\n", "\r\n") if form == "crlf" else text
    bed.write_bytes(gzip.compress(text.encode()) if form == "gzip" else text.encode())
    opts = ReadOptions(extend=80)
    a = BedReads(bed, opts).spans("chr1").depth(0, 400)
    # BED has no flags: all 6 chr1 reads count (the QC-fail one too)
    want = BamReads(write_bam(tmp_path / "all.bam", [(*r[:4], 0, 60) for r in READS]), opts).spans("chr1")
    np.testing.assert_array_equal(a, want.depth(0, 400))


def test_chromosome_naming_mismatch(bam, tmp_path):
    regions = [Region("1", 0, 1000)]
    with pytest.raises(SignalError, match="other 'chr' naming"):
        build_signal_store(regions, [bam], tmp_path / "s")


def test_store_sums_and_rpm(bam, tmp_path):
    regions = [Region("chr1", 0, 400), Region("chr2", 0, 150)]
    raw = build_signal_store(regions, [bam, bam], tmp_path / "raw", base=100)
    s = raw.region_sums(regions[0], None, "g")
    want = expected([(100, 150), (120, 170), (140, 190), (160, 210), (180, 230)], 0, 400).reshape(4, 100).sum(1)
    np.testing.assert_array_equal(s[:, 0], want)
    np.testing.assert_array_equal(s[:, 1], want)
    assert raw.region_sums(regions[1], None, "g")[:, 0].tolist() == [20, 0]
    rpm = build_signal_store(regions, [bam], tmp_path / "rpm", base=100, normalisation="rpm")
    np.testing.assert_allclose(rpm.region_sums(regions[0], None, "g")[:, 0], want * 1e6 / 6, rtol=1e-6)
    assert rpm.manifest["read_totals"] == [6] and rpm.manifest["normalisation"] == "reads per million"


def test_region_past_chromosome_end(bam, tmp_path):
    with pytest.raises(SignalError, match="past the end of chr2"):
        build_signal_store([Region("chr2", 2900, 3100)], [bam], tmp_path / "s", chrom_sizes=CHROMS)


PYRANGES_BAM = Path(__import__("pyranges").__file__).parent / "example_data" / "control.bam"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bedtools") is None, reason="bedtools not installed (apt-get install bedtools)")
def test_equals_bedtools_genomecov_on_real_bam(tmp_path):
    """Real reads (pyranges' control.bam): our depth == bedtools genomecov -ibam -bga, base by base."""
    bg = subprocess.run(["bedtools", "genomecov", "-ibam", str(PYRANGES_BAM), "-bga"],
                        capture_output=True, text=True, check=True).stdout
    rows = [ln.split("\t") for ln in bg.splitlines()]
    reads = open_signal(PYRANGES_BAM)
    chroms = sorted({r[0] for r in rows if int(r[3]) > 0})[:3]
    checked = 0
    for chrom in chroms:
        cov = [(int(s), int(e), int(v)) for c, s, e, v in rows if c == chrom]
        covered = [s for s, e, v in cov if v > 0]
        lo = max(covered[len(covered) // 2] - 20000, 0)
        hi = lo + 40000
        want = np.zeros(hi - lo, int)
        for s, e, v in cov:
            if e > lo and s < hi:
                want[max(s, lo) - lo : min(e, hi) - lo] = v
        got = reads.spans(chrom).depth(lo, hi)
        np.testing.assert_array_equal(got, want)
        checked += int(want.sum() > 0)
    assert checked == len(chroms) >= 2


def test_export_npy_round_trip(bam, tmp_path):
    """signals --base 1 then export-npy gives the original per-region float16 (F, L) depth files."""
    from chromoformer.cli import main

    meta = tmp_path / "meta.csv"
    meta.write_text("gene_id,label,chrom,start,end,strand,split,neighbors,scores\n"
                    "G1,1,chr1,2100,2101,+,1,chr1:100-400,2.0\n")
    sig = [f"--signal=m{i}={bam}" for i in range(7)]
    main(["preprocess", "signals", "--meta", str(meta), *sig, "--out", str(tmp_path / "store"), "--base", "1",
          "--w-prom", "4000"])
    main(["preprocess", "export-npy", "--meta", str(meta), "--store", str(tmp_path / "store"),
          "--out", str(tmp_path / "npy"), "--w-prom", "4000"])
    x = np.load(tmp_path / "npy" / "chr1:100-400.npy")
    assert x.dtype == np.float16 and x.shape == (7, 300)
    want = expected([(100, 150), (120, 170), (140, 190), (160, 210), (180, 230)], 100, 400)
    np.testing.assert_array_equal(x[3], want)
    assert (tmp_path / "npy" / "chr1:100-4100.npy").is_file()
