"""Expression tables as users have them: units, layouts and formats, with exactly known labels."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from chromoformer.errors import ExpressionError
from chromoformer.preprocess.annotation import exon_union_lengths
from chromoformer.preprocess.expression import add_labels, read_expression
from test_annotation import GTF

GENES = pd.DataFrame({"gene_id": ["G1", "G2", "G3"], "length": [1000, 2000, 500]})


def test_counts_become_rpkm_with_exon_lengths(tmp_path):
    p = tmp_path / "counts.tsv"
    p.write_text("gene\tS\nG1\t10\nG2\t10\nG3\t10\nG4\t30\n")  # G4: not annotated, still in the library size
    out = add_labels(GENES, p, "S", unit="counts").set_index("gene_id")
    total = 60
    want = {"G1": 10e9 / (1000 * total), "G2": 10e9 / (2000 * total), "G3": 10e9 / (500 * total)}
    np.testing.assert_allclose(out.expression.loc[list(want)], list(want.values()), rtol=1e-12)
    assert out.label.to_dict() == {"G1": 1, "G2": 0, "G3": 1}  # median = G1's RPKM


def test_whole_numbers_without_a_unit_are_refused_as_counts(tmp_path):
    p = tmp_path / "counts.tsv"
    rng = np.random.default_rng(0)
    ids = [f"G{i}" for i in range(40)]
    p.write_text("gene\tS\n" + "".join(f"{g}\t{c}\n" for g, c in zip(ids, rng.integers(0, 5000, 40), strict=True)))
    genes = pd.DataFrame({"gene_id": ids, "length": 1000})
    with pytest.raises(ExpressionError, match="look like raw read counts.*--unit counts"):
        add_labels(genes, p, "S")
    assert len(add_labels(genes, p, "S", unit="counts")) == 40


def test_sparse_counts_with_a_median_of_zero_are_an_error(tmp_path):
    p = tmp_path / "gtex.tsv"
    p.write_text("gene\tS\n" + "".join(f"G{i}\t{0 if i < 30 else 7}\n" for i in range(40)))
    genes = pd.DataFrame({"gene_id": [f"G{i}" for i in range(40)], "length": 1000})
    with pytest.raises(ExpressionError, match="median expression of the 40 genes is 0"):
        add_labels(genes, p, "S", unit="counts")


def test_counts_need_lengths(tmp_path):
    p = tmp_path / "c.tsv"
    p.write_text("gene\tS\nG1\t1\nG2\t2\n")
    with pytest.raises(ExpressionError, match="needs gene lengths"):
        add_labels(GENES.drop(columns="length"), p, "S", unit="counts")


@pytest.mark.parametrize("layout", ["csv.gz", "tsv", "gct", "samples_x_genes_csv"])
def test_layouts_are_read_by_content(tmp_path, layout):
    vals = {"G1": 1.5, "G2": 0.25, "G3": 8.0}
    if layout == "csv.gz":
        p = tmp_path / "e.csv.gz"
        p.write_bytes(gzip.compress(b"gene,S,T\n" + b"".join(f"{g},{v},0\n".encode() for g, v in vals.items())))
    elif layout == "tsv":
        p = tmp_path / "e.txt"
        p.write_text("gene\tS\n" + "".join(f"{g}\t{v}\n" for g, v in vals.items()))
    elif layout == "gct":
        p = tmp_path / "e.gct"
        p.write_text("#1.2\n3\t2\nName\tDescription\tS\n" + "".join(f"{g}.4\tdesc\t{v}\n" for g, v in vals.items()))
    else:
        p = tmp_path / "e.csv"
        p.write_text("sample,G1,G2,G3\nT,0,0,0\nS,1.5,0.25,8.0\n")
    got = read_expression(p, "S")
    assert got.to_dict() == vals


def test_exon_union_lengths_known_answer(tmp_path):
    p = tmp_path / "a.gtf"
    p.write_text(GTF)
    # A: [1000,1200) + [2000,2500) + [4000,5000) + [8000,9000) = 2700; B: [100000,110000) + [129000,130000)
    assert exon_union_lengths(p) == {("A", "chr1"): 2700, ("B", "chr5"): 11000}


def test_bad_values_name_file_line_and_gene(tmp_path):
    p = tmp_path / "e.tsv"
    p.write_text("gene\tS\nG1\t1\nG2\tNaN\n")
    with pytest.raises(ExpressionError, match=r"e.tsv:3: gene G2"):
        add_labels(GENES, p, "S")


def test_a_table_missing_most_annotated_genes_is_warned(tmp_path, caplog):
    genes = pd.DataFrame({"gene_id": [f"G{i}" for i in range(1, 11)], "length": 1000})
    p = tmp_path / "rpkm.tsv"
    p.write_text("gene\tS\nG1\t1.5\nG2\t0.5\nG3\t2.0\nG4\t0.1\n")  # 4 of 10: another release, say
    with caplog.at_level("WARNING"):
        out = add_labels(genes, p, "S", unit="rpkm")
    assert sorted(out.gene_id) == ["G1", "G2", "G3", "G4"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "only 4 of 10 annotated genes (40%)" in warned[0] and "G5 is not" in warned[0]
    caplog.clear()
    p.write_text("gene\tS\n" + "".join(f"G{i}\t{i}.5\n" for i in range(1, 7)))  # 6 of 10: no warning
    with caplog.at_level("WARNING"):
        add_labels(genes, p, "S", unit="rpkm")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_table_without_a_final_line_break_is_warned_as_maybe_cut_short(tmp_path, caplog):
    p = tmp_path / "rpkm.tsv"
    p.write_text("gene\tS\nG1\t1.5\nG2\t0.5\nG3\t2")  # the last value may have been 2.25
    with caplog.at_level("WARNING"):
        add_labels(GENES, p, "S", unit="rpkm")
    assert any("does not end with a line break" in r.getMessage() and str(p) in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    p.write_text("gene\tS\nG1\t1.5\nG2\t0.5\nG3\t2\n")
    with caplog.at_level("WARNING"):
        add_labels(GENES, p, "S", unit="rpkm")
    assert not [r for r in caplog.records if "line break" in r.getMessage()]
