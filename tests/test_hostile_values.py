"""The accepting side of issue #20: odd but valid inputs give the same answer as tidy ones (the
refusing side is tests/corpus/hostile.py)."""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from chromoformer.data import read_metadata
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.errors import ConfigError, UsageError
from chromoformer.yamlfile import load_yaml


def test_metadata_is_told_gzip_by_content_not_by_name(tmp_path):
    meta, _ = write_synthetic_dataset(tmp_path / "d", n_genes=6, seed=2)
    want = read_metadata(meta)
    gz = tmp_path / "meta.csv.gz"
    gz.write_bytes(gzip.compress(meta.read_bytes()))
    named = tmp_path / "plain.csv.gz"  # not compressed at all, whatever its name says
    named.write_bytes(meta.read_bytes())
    hidden = tmp_path / "meta.csv"  # compressed without saying so
    hidden.write_bytes(gzip.compress(meta.read_bytes()))
    for p in (gz, named, hidden):
        assert [(g.gene_id, g.tss, g.pcres) for g in read_metadata(p)] == [(g.gene_id, g.tss, g.pcres) for g in want]


def test_expression_ids_with_spaces_match_and_keep_every_label(tmp_path, caplog):
    from chromoformer.preprocess.expression import add_labels

    genes = pd.DataFrame({"gene_id": [f"G{i}" for i in range(6)], "chrom": "chr1", "tss_all": "1"})
    values = [0.5, 3.0, 10.0, 0.0, 7.5, 1.0]
    tidy, padded = tmp_path / "a.tsv", tmp_path / "b.tsv"
    pd.DataFrame({"gene_id": genes.gene_id, "S": values}).to_csv(tidy, sep="\t", index=False)
    pd.DataFrame({"gene_id": [f"{g} " if i % 2 else f" {g}" for i, g in enumerate(genes.gene_id)],
                  "S": values}).to_csv(padded, sep="\t", index=False)
    a = add_labels(genes, tidy, "S")
    with caplog.at_level(logging.WARNING):
        b = add_labels(genes, padded, "S")
    assert a.gene_id.tolist() == b.gene_id.tolist() and a.label.tolist() == b.label.tolist()
    assert "6 gene id(s) with leading or trailing spaces" in caplog.text


def test_ensembl_style_chromosomes_in_pchic_are_spelled_as_the_genes(tmp_path, caplog):
    from chromoformer.preprocess.pcres import gene_neighbors, read_interactions

    genes = pd.DataFrame({"gene_id": ["G1", "G2"], "chrom": ["chr1", "chrM"], "tss_all": ["1000", "500"]})
    rows = [("{c}1", 900, 1100, "{c}1", 5000, 6000, 3.0), ("{m}", 400, 600, "{m}", 2000, 2500, 2.0)]
    out = {}
    for style, c, m in (("ucsc", "chr", "chrM"), ("ensembl", "", "MT")):
        p = tmp_path / f"{style}.tsv"
        p.write_text("bait_chrom\tbait_start\tbait_end\toe_chrom\toe_start\toe_end\tscore\n" + "".join(
            "\t".join(str(x).format(c=c, m=m) for x in r) + "\n" for r in rows))
        with caplog.at_level(logging.WARNING):
            out[style] = gene_neighbors(genes, read_interactions(p)).neighbors.tolist()
    assert out["ensembl"] == out["ucsc"] == ["chr1:5000-6000", "chrM:2000-2500"]
    assert "1 -> chr1, MT -> chrM" in caplog.text


def test_a_one_class_validation_split_is_warned(tmp_path, caplog):
    from chromoformer.cli import main

    meta, npy = write_synthetic_dataset(tmp_path / "d", n_genes=8, seed=5)
    d = pd.read_csv(meta)
    d.loc[d.split == 1, "label"] = 1  # fold 1 validates on split 1
    d.to_csv(meta, index=False)
    with caplog.at_level(logging.WARNING):
        main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(tmp_path / "r"), "--epochs", "1",
              "--num-workers", "0"])
    assert "validation genes have label 1: the validation AUC is undefined" in caplog.text


def test_temperature_range_is_inclusive():
    from chromoformer.inference.predict import check_temperature

    assert check_temperature(0.01) == 0.01 and check_temperature(100) == 100.0
    for bad in (0.0099, 100.1, float("nan"), float("inf"), -1, "x"):
        with pytest.raises(UsageError, match="temperature"):
            check_temperature(bad)


def test_strict_yaml_keeps_anchors_and_refuses_repeats():
    assert load_yaml("base: &b {lr: 1}\nrun:\n  <<: *b\n  epochs: 2\n", "c.yaml", ConfigError) == {
        "base": {"lr": 1}, "run": {"lr": 1, "epochs": 2}}
    with pytest.raises(ConfigError, match=r"c\.yaml: invalid YAML: duplicate key 'lr' \(first on line 1\)"):
        load_yaml("lr: 1\nbsz: 2\nlr: 100\n", "c.yaml", ConfigError)
    with pytest.raises(ConfigError, match="duplicate key 'S1'"):
        load_yaml("samples:\n  S1: {a: 1}\n  S1: {a: 2}\n", "c.yaml", ConfigError)


def test_a_killed_bigwig_writers_temp_is_removed_by_the_next_write(tmp_path):
    pytest.importorskip("pyBigWig")
    from chromoformer.results.browser import write_bigwig

    left = tmp_path / ".x.bw.abc123.tmp"  # what a kill during pyBigWig's write leaves
    left.write_bytes(b"partial")
    old = time.time() - 3600
    os.utime(left, (old, old))
    df = pd.DataFrame({"chrom": ["chr1"], "start": [0], "end": [100], "value": [1.5]})
    write_bigwig(df, tmp_path / "x.bw", {"chr1": 1000})
    assert (tmp_path / "x.bw").stat().st_size > 0 and not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.bw"]
    with pytest.raises(UsageError, match="32-bit"):
        write_bigwig(df, tmp_path / "y.bw", {"chr1": 2**32})
    assert not (tmp_path / "y.bw").exists()


@pytest.mark.slow  # in the slow suite (.ci/run): keeps the default run under 5 minutes
def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    meta, npy = write_synthetic_dataset(tmp_path / "d", n_genes=8, seed=5)
    from chromoformer.cli import main

    main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(tmp_path / "r"), "--epochs", "1",
          "--num-workers", "0"])
    r = subprocess.run(f"chromoformer inspect {tmp_path / 'r' / 'last.pt'} | head -c 10; exit ${{PIPESTATUS[0]}}",
                       shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert r.stdout == "checkpoint" and "Traceback" not in r.stderr and r.returncode in (0, 141)


def test_store_sums_past_float32_are_refused_before_a_store_exists(tmp_path):
    from chromoformer.data.metadata import Region
    from chromoformer.data.store_writer import StoreWriter
    from chromoformer.errors import StoreError

    r = Region("chr1", 0, 200)
    with pytest.raises(StoreError, match="past the store's float32 range"), StoreWriter(tmp_path / "s", [r], 100,
                                                                                        1, None) as w:
        w.put(r, np.array([[1.0], [1e39]]))
    assert not (tmp_path / "s").exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_a_nul_byte_in_any_table_is_refused_with_its_line(tmp_path, packed):
    """pandas' parser ends a field at a NUL (``G\\x001`` read as ``G``, so two genes could become one):
    every table reader refuses it, naming the file and the line, compressed or not."""
    from chromoformer.errors import ExpressionError
    from chromoformer.files.checked import read_table

    text = b"gene_id\tS\nG0\t1.0\nG1\t2.0\nG\x002\t3.0\n"
    p = tmp_path / "expr.tsv"
    p.write_bytes(gzip.compress(text) if packed else text)
    with pytest.raises(ExpressionError, match=rf"^{p}:4: holds a NUL byte \(a control character\)"):
        read_table(p, ExpressionError, "expression table", sep="\t")
    p.write_bytes(gzip.compress(text.replace(b"\x00", b"")) if packed else text.replace(b"\x00", b""))
    assert read_table(p, ExpressionError, "expression table", sep="\t").gene_id.tolist() == ["G0", "G1", "G2"]
