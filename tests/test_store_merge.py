"""Per-mark stores merged into one equal the store built from all marks at once (the workflow's
per-mark signal jobs), and mismatched parts are refused."""

from __future__ import annotations

import numpy as np
import pytest

from chromoformer.data.metadata import Region
from chromoformer.errors import SignalError
from chromoformer.preprocess.signals import build_signal_store, merge_signal_stores


def _bedgraph(path, seed):
    rng = np.random.default_rng(seed)
    lines = []
    for chrom in ("chr1", "chr2"):
        pos = 0
        while pos < 60_000:
            n = int(rng.integers(50, 700))
            lines.append(f"{chrom}\t{pos}\t{pos + n}\t{rng.integers(0, 9)}")
            pos += n + int(rng.integers(0, 300))
    path.write_text("\n".join(lines) + "\n")
    return path


REGIONS = [Region("chr1", 1000, 41000), Region("chr1", 50000, 53500), Region("chr2", 0, 40000),
           Region("chr2", 44000, 44150)]


def test_merged_parts_equal_the_store_built_at_once(tmp_path):
    files = [_bedgraph(tmp_path / f"m{i}.bedGraph", i) for i in range(3)]
    marks = ["H3K4me3", "H3K27ac", "H3K9me3"]
    whole = build_signal_store(REGIONS, files, tmp_path / "whole", marks=marks)
    parts = [build_signal_store(REGIONS, [f], tmp_path / f"part{i}", marks=[m]).path
             for i, (f, m) in enumerate(zip(files, marks, strict=True))]
    merged = merge_signal_stores(parts, tmp_path / "merged")
    assert merged.marks == tuple(marks) and merged.base == whole.base
    np.testing.assert_array_equal(np.asarray(merged.sums), np.asarray(whole.sums))
    for key in ("files", "read_totals", "contigs", "read_options"):
        assert merged.manifest[key] == whole.manifest[key], key
    for r in REGIONS:
        np.testing.assert_array_equal(merged.region_sums(r, None, "g"), whole.region_sums(r, None, "g"))


def test_parts_that_do_not_belong_together_are_refused(tmp_path):
    a = build_signal_store(REGIONS, [_bedgraph(tmp_path / "a.bg", 0)], tmp_path / "a", marks=["H3K4me3"]).path
    b = build_signal_store(REGIONS[:3], [_bedgraph(tmp_path / "b.bg", 1)], tmp_path / "b", marks=["H3K27ac"]).path
    c = build_signal_store(REGIONS, [_bedgraph(tmp_path / "c.bg", 2)], tmp_path / "c", marks=["H3K4me3"]).path
    d = build_signal_store(REGIONS, [_bedgraph(tmp_path / "d.bg", 3)], tmp_path / "d", marks=["H3K9ac"], base=50).path
    with pytest.raises(SignalError, match="its regions differ"):
        merge_signal_stores([a, b], tmp_path / "out")
    with pytest.raises(SignalError, match="repeat a mark"):
        merge_signal_stores([a, c], tmp_path / "out")
    with pytest.raises(SignalError, match="its base differs"):
        merge_signal_stores([a, d], tmp_path / "out")
    assert not (tmp_path / "out").exists()
