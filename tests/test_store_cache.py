"""The store cache is keyed by content: overwritten inputs get a new store, never a stale one."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from chromoformer.data.sources import default_store_path, open_source
from chromoformer.data.store import BinnedStore
from chromoformer.data.synthetic import write_synthetic_dataset


def test_overwritten_npy_gets_a_new_store_and_the_old_one_is_untouched(tmp_path):
    _, npy = write_synthetic_dataset(tmp_path / "d", n_genes=4, seed=1)
    first = default_store_path(npy, tmp_path)
    a = open_source(npy, store=first)
    assert isinstance(a, BinnedStore) and a.path == first
    assert open_source(npy, store=default_store_path(npy, tmp_path)).path == first  # reused while unchanged

    victim = sorted(npy.glob("*.npy"))[0]
    x = np.load(victim)
    np.save(victim, (x + 1).astype(x.dtype))  # same name and size, new content and mtime
    second = default_store_path(npy, tmp_path)
    assert second != first
    b = open_source(npy, store=second)
    name = victim.stem
    off_a, n = a.index[name]
    off_b, _ = b.index[name]
    rows = -(-n // a.base)
    assert not np.array_equal(a.sums[off_a: off_a + rows], b.sums[off_b: off_b + rows])
    assert BinnedStore(first).manifest["sha256"] == a.manifest["sha256"]  # the first store was left alone


def test_cache_key_includes_base_and_marks(tmp_path):
    _, npy = write_synthetic_dataset(tmp_path / "d", n_genes=2, seed=1)
    keys = {default_store_path(npy, tmp_path, base=base, n_feats=n) for base in (100, 50) for n in (7, 6)}
    assert len(keys) == 4
    names = [f"m{i}" for i in range(7)]
    assert len({default_store_path(npy, tmp_path, base=100, n_feats=7, marks=m)
                for m in (None, names, names[::-1])}) == 3


def test_other_bin_sizes_get_their_own_store_next_to_the_first(tmp_path):
    """A run with --binsizes 1000 200 50 beside a default run must not rebuild the default run's store."""
    _, npy = write_synthetic_dataset(tmp_path / "d", n_genes=3, seed=1)
    first = open_source(npy, store=default_store_path(npy, tmp_path, base=100))
    before = dict(first.manifest["sha256"])
    second = open_source(npy, store=default_store_path(npy, tmp_path, base=50), base=50)
    assert second.path != first.path and second.base == 50
    assert BinnedStore(first.path).manifest["sha256"] == before and BinnedStore(first.path).base == 100


def test_store_given_explicitly_is_rebuilt_when_its_sources_changed(tmp_path):
    _, npy = write_synthetic_dataset(tmp_path / "d", n_genes=2, seed=1)
    store = tmp_path / "store"
    fp = open_source(npy, store=store).manifest["source_fingerprint"]
    victim = sorted(npy.glob("*.npy"))[0]
    np.save(victim, np.load(victim) * 2)
    s = open_source(npy, store=store)
    assert s.manifest["source_fingerprint"] != fp


def test_mark_without_reads_is_a_loud_warning_with_its_total_recorded(tmp_path, caplog):
    pysam = pytest.importorskip("pysam")
    meta, _ = write_synthetic_dataset(tmp_path / "d", n_genes=2, seed=1)
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": f"chr{c}", "LN": 249_000_000} for c in (*range(1, 23), "X")]}
    bam = tmp_path / "empty.bam"
    with pysam.AlignmentFile(str(bam), "wb", header=header):
        pass
    pysam.index(str(bam))
    reads = tmp_path / "reads.bed"
    reads.write_text("".join(f"chr1\t{1_000_000 + 10 * i}\t{1_000_100 + 10 * i}\n" for i in range(50)))
    from chromoformer.cli import main

    with caplog.at_level(logging.WARNING):
        main(["preprocess", "signals", "--meta", str(meta), "--signal", f"H3K4me3={reads}", "--signal",
              f"H3K27ac={bam}", "--out", str(tmp_path / "store")])
    assert any("NO reads" in r.message and "H3K27ac" in r.message for r in caplog.records)
    m = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert m["read_totals"][1] == 0 and m["read_totals"][0] > 0 and m["marks"] == ["H3K4me3", "H3K27ac"]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_writer_refuses_a_bad_value_and_leaves_no_store(tmp_path, bad):
    from chromoformer.data.metadata import parse_region
    from chromoformer.data.store_writer import StoreWriter
    from chromoformer.errors import StoreError

    regions = [parse_region("chr1:0-1000"), parse_region("chr1:5000-6000")]
    out = tmp_path / "store"
    with (pytest.raises(StoreError, match="region chr1:5000-6000: NaN, infinite or negative"),
          StoreWriter(out, regions, 100, 1, ["H3K4me3"]) as w):
        w.put(regions[0], np.ones(10, np.float32), 0)
        w.put(regions[1], np.array([1.0] * 9 + [bad], np.float32), 0)
        w.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no temporary folder, no lock file
