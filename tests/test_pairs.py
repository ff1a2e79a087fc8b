"""The differential task's inputs: a simulated pair of cell types with its oracle, gene pairing with
its errors, and paired items that both differential models read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from chromoformer import ChromoformerConfig
from chromoformer.data import NpyDirSource, read_metadata
from chromoformer.data.dataset import ChromoformerDataset
from chromoformer.diff.pairing import PairedDataset, check_same_marks, diff_call, fold_change, pair_genes
from chromoformer.diff.simulation import write_synthetic_pair
from chromoformer.errors import DataError, MetadataError
from chromoformer.model import ChromoformerDiff, DeepDiff


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return write_synthetic_pair(tmp_path_factory.mktemp("pair"), n_genes=16, seed=3)


def _genes(files, cell):
    return read_metadata(files.cell(cell).meta)


def test_without_planted_differences_or_noise_the_fold_change_is_the_oracle(tmp_path):
    same = write_synthetic_pair(tmp_path / "same", n_genes=12, seed=1, switch=0, contact_sd=0, noise=0)
    o = pd.read_csv(same.oracle)
    assert (o.oracle_lfc == 0).all() and np.abs(o.lfc).max() < 1e-4  # expressions rounded to 4 decimals
    exact = write_synthetic_pair(tmp_path / "exact", n_genes=12, seed=1, switch=0.5, contact_sd=0.5, noise=0)
    o = pd.read_csv(exact.oracle)
    assert o.oracle_lfc.abs().max() > 1  # differences planted ...
    assert set(o.oracle_promoter_lfc) <= {-2.5, 0.0, 2.5} and (o.oracle_promoter_lfc != 0).any()
    np.testing.assert_allclose(o.lfc, o.oracle_lfc, atol=1e-3)  # ... and, without noise, observed exactly


def test_the_pair_shares_genes_and_fragments_not_states(pair):
    a, b = _genes(pair, "A"), _genes(pair, "B")
    assert [g.gene_id for g in a] == [g.gene_id for g in b]
    assert all(set(x.pcres) == set(y.pcres) for x, y in zip(a, b, strict=True))
    assert any(x.scores != y.scores for x, y in zip(a, b, strict=True))  # contacts differ by cell
    o = pd.read_csv(pair.oracle)
    np.testing.assert_allclose(o.lfc, fold_change([g.expression for g in a], [g.expression for g in b]), atol=1e-5)


def test_diff_call_known_answers():
    assert diff_call(np.array([-2.0, -1.0, -0.99, 0.0, 0.99, 1.0, 3.0])).tolist() == [-1, -1, 0, 0, 0, 1, 1]
    assert diff_call(np.array([0.5, -0.5]), threshold=0.5).tolist() == [1, -1]
    assert fold_change(3.0, 7.0) == pytest.approx(1.0)  # log2(8 / 4)


def test_a_gene_missing_in_one_cell_is_named(pair):
    a, b = _genes(pair, "A"), _genes(pair, "B")
    with pytest.raises(MetadataError, match=rf"^B.csv: gene '{a[5].gene_id}' \(line 7 of A.csv\) is missing"):
        pair_genes(a, b[:5] + b[6:], file_a="A.csv", file_b="B.csv")
    with pytest.raises(MetadataError, match=rf"^A.csv: gene '{b[0].gene_id}' \(line 2 of B.csv\) is missing"):
        pair_genes(a[1:], b, file_a="A.csv", file_b="B.csv")


def test_cells_that_disagree_on_a_gene_or_lack_expression_are_refused(pair):
    import dataclasses

    a, b = _genes(pair, "A"), _genes(pair, "B")
    moved = [dataclasses.replace(g, tss=g.tss + 1) if i == 2 else g for i, g in enumerate(b)]
    with pytest.raises(MetadataError, match=rf"B.csv:4: gene '{b[2].gene_id}' is at .* the cells disagree"):
        pair_genes(a, moved, file_a="A.csv", file_b="B.csv")
    blank = [dataclasses.replace(g, expression=None) if i == 1 else g for i, g in enumerate(a)]
    with pytest.raises(MetadataError, match=rf"A.csv:3: gene '{a[1].gene_id}' has no expression"):
        pair_genes(blank, b, file_a="A.csv", file_b="B.csv")


def test_mismatched_marks_between_the_cells_are_refused(pair):
    class Named:
        def __init__(self, marks, n=None):
            self.marks, self.n_feats = marks, n or len(marks)

    with pytest.raises(DataError, match="different marks: A has H3K4me3, H3K27ac, B has H3K27ac, H3K4me3"):
        check_same_marks(Named(("H3K4me3", "H3K27ac")), Named(("H3K27ac", "H3K4me3")))
    with pytest.raises(DataError, match="A has 7 unnamed, B has 2 unnamed"):  # an npy folder has no names
        check_same_marks(NpyDirSource(pair.cell("A").npy), Named(None, 2))
    src = NpyDirSource(pair.cell("B").npy)
    with pytest.raises(DataError, match="different marks"):
        PairedDataset([], src, Named(("H3K4me3",)), ChromoformerConfig())
    check_same_marks(NpyDirSource(pair.cell("A").npy), src)  # the same 7 unnamed rows: accepted


def test_paired_items_are_each_cells_items_and_both_models_read_them(pair):
    cfg = ChromoformerConfig()
    a, b = _genes(pair, "A"), _genes(pair, "B")
    src_a, src_b = NpyDirSource(pair.cell("A").npy), NpyDirSource(pair.cell("B").npy)
    ds = PairedDataset(pair_genes(a, b), src_a, src_b, cfg)
    ds.validate()
    single = ChromoformerDataset(b, src_b, cfg, task="reg")[4]
    item = ds[4]
    assert torch.equal(item["b"]["promoter_feats"][100], single["promoter_feats"][100])
    assert item["lfc"].item() == pytest.approx(float(fold_change(a[4].expression, b[4].expression)), abs=1e-6)
    assert item["expr_b"].item() == pytest.approx(np.log2(b[4].expression + 1), abs=1e-6)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    torch.manual_seed(0)
    with torch.no_grad():
        dd = DeepDiff(cfg.n_feats).eval()(batch["a"], batch["b"])
        cd = ChromoformerDiff(cfg).eval()(batch["a"], batch["b"])
    assert dd["lfc"].shape == cd["lfc"].shape == (4, 1) and torch.isfinite(dd["lfc"]).all()
    assert torch.isfinite(cd["lfc"]).all()
