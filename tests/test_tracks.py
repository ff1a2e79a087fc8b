"""Value tracks (bedGraph, bigWig) are read as values, never as reads; options that cannot apply are
said; chromosome sizes that contradict a file's header (another assembly) are refused."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest

from chromoformer.data.metadata import Region
from chromoformer.preprocess.coverage import ReadOptions, SignalError, open_signal
from chromoformer.preprocess.signals import build_signal_store
from chromoformer.preprocess.track_readers import BedGraphSignal, BigWigSignal
from test_coverage import CHROMS, READS, write_bam

INTERVALS = [("chr1", 100, 250, 2.5), ("chr1", 250, 300, 4.0), ("chr1", 1000, 1100, 1.0), ("chr2", 0, 50, 3.0)]
REGIONS = [Region("chr1", 0, 1200), Region("chr2", 0, 200)]


def _expected(region: Region, base: int = 100) -> np.ndarray:
    depth = np.zeros(len(region))
    for c, s, e, v in INTERVALS:
        if c == region.chrom:
            depth[max(s, region.start) - region.start : min(e, region.end) - region.start] = v
    return depth.reshape(-1, base).sum(1)


def _bedgraph(path, header: str = "", gz: bool = False):
    text = header + "".join(f"{c}\t{s}\t{e}\t{v}\n" for c, s, e, v in INTERVALS)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


@pytest.mark.parametrize(("name", "header", "gz"), [("t.bedGraph", "", False), ("t.bdg.gz", "", True),
                                                    ("t.txt", "track type=bedGraph name=x\n", False),
                                                    ("t.bed", "", False),  # 4 columns, numeric 4th
                                                    ("t.bedGraph", "", True)])  # gzip told by content, not name
def test_bedgraph_values_are_the_depth(tmp_path, name, header, gz):
    p = _bedgraph(tmp_path / name, header, gz)
    assert isinstance(open_signal(p), BedGraphSignal)
    s = build_signal_store(REGIONS, [p], tmp_path / "store", marks=["m"], base=100)
    for r in REGIONS:
        off, n = s.index[r.name]
        np.testing.assert_array_equal(s.sums[off : off + n // 100, 0], _expected(r))


def test_bigwig_and_bedgraph_of_the_same_track_give_the_same_store(tmp_path):
    import pyBigWig

    bw = tmp_path / "t.bw"
    f = pyBigWig.open(str(bw), "w")
    f.addHeader(list(CHROMS.items()))
    for c, s, e, v in INTERVALS:
        f.addEntries([c], [s], ends=[e], values=[v])
    f.close()
    assert isinstance(open_signal(bw), BigWigSignal)
    a = build_signal_store(REGIONS, [bw], tmp_path / "a", marks=["m"])
    b = build_signal_store(REGIONS, [_bedgraph(tmp_path / "t.bedGraph")], tmp_path / "b", marks=["m"])
    np.testing.assert_array_equal(a.sums, b.sums)


def test_read_options_that_cannot_apply_are_warned(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    bed = tmp_path / "reads.tagAlign"
    bed.write_text("chr1\t100\t136\tN\t1000\t+\nchr1\t200\t236\tN\t1000\t-\n")
    open_signal(bed, ReadOptions(extend=200, min_mapq=30, skip_duplicates=True))
    assert "reads.tagAlign" in caplog.text and "--min-mapq, --skip-duplicates" in caplog.text
    assert "--extend" not in caplog.text  # extension does apply to reads
    caplog.clear()
    open_signal(_bedgraph(tmp_path / "t.bedGraph"), ReadOptions(extend=200))
    assert "t.bedGraph" in caplog.text and "--extend" in caplog.text
    caplog.clear()
    open_signal(bed, ReadOptions(extend=200))
    assert caplog.text == ""


def test_chrom_sizes_contradicting_the_bam_header_are_refused(tmp_path):
    bam = write_bam(tmp_path / "r.bam", READS)
    with pytest.raises(SignalError, match="chr1 is 5000 bp in its header but 4000 bp.*different assemblies"):
        build_signal_store([Region("chr1", 0, 1000)], [bam], tmp_path / "s", marks=["m"], chrom_sizes={"chr1": 4000},
                           chrom_sizes_source="hg38.sizes")
    s = build_signal_store([Region("chr1", 0, 1000)], [bam], tmp_path / "ok", marks=["m"], chrom_sizes=dict(CHROMS))
    assert s.sums.sum() > 0


@pytest.mark.parametrize(("text", "message"), [
    ("chr1\t100\t50\t1.0\n", "0 <= start < end"),
    ("chr1\t0\t100\tnan\n", "finite value"),
    ("chr1\t0\t100\t-1\n", "finite value >= 0"),
    ("chr1\t0\t100\t1\nchr1\t50\t150\t2\n", "overlapping intervals on chr1"),
])
def test_bad_bedgraphs_name_file_and_line(tmp_path, text, message):
    p = tmp_path / "bad.bedGraph"
    p.write_text(text)
    with pytest.raises(SignalError, match=message) as e:
        BedGraphSignal(p)
    assert str(p) in str(e.value)


def test_signal_files_of_different_assemblies_are_refused_and_contigs_recorded(tmp_path):
    import pysam

    a = write_bam(tmp_path / "a.bam", READS)
    s = build_signal_store([Region("chr1", 0, 1000)], [a, a], tmp_path / "ok", marks=["m1", "m2"])
    assert s.manifest["contigs"] == {"chr1": 5000}
    raw = tmp_path / "b.unsorted.bam"  # the same reads under a header where chr1 is 6000 bp
    header = {"HD": {"VN": "1.6"}, "SQ": [{"SN": "chr1", "LN": 6000}, {"SN": "chr2", "LN": 3000}]}
    with pysam.AlignmentFile(str(a)) as src, pysam.AlignmentFile(str(raw), "wb", header=header) as out:
        for r in src:
            seg = pysam.AlignedSegment(out.header)
            seg.query_name, seg.reference_name, seg.reference_start = r.query_name, r.reference_name, r.reference_start
            seg.cigarstring, seg.query_sequence, seg.flag = r.cigarstring, r.query_sequence, r.flag
            out.write(seg)
    b = tmp_path / "b.bam"
    pysam.sort("-o", str(b), str(raw))
    pysam.index(str(b))
    with pytest.raises(SignalError, match=r"b.bam: chr1 is 6000 bp here but 5000 bp in .*a.bam.*different assemblies"):
        build_signal_store([Region("chr1", 0, 1000)], [a, b], tmp_path / "bad", marks=["m1", "m2"])


def test_regions_past_the_end_of_a_header_chromosome_mean_another_assembly(tmp_path):
    bam = write_bam(tmp_path / "r.bam", READS)  # chr1 is 5000 bp in its header
    with pytest.raises(SignalError, match=r"region chr1:6000-7000 starts past the end of chr1 \(5000 bp"):
        build_signal_store([Region("chr1", 0, 1000), Region("chr1", 6000, 7000)], [bam], tmp_path / "s", marks=["m"])
    assert not (tmp_path / "s").exists()
