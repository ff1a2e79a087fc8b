"""Tables other tools read (files/frames): ``predict -o x.parquet`` / ``x.h5ad`` hold the csv's numbers exactly
(read back, the three tables are equal), the h5ad is an AnnData of genes x statistics annotated with chrom, TSS,
strand and split, and evaluate/compare write parquet beside their tsv on request."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chromoformer.cli import main
from chromoformer.errors import UsageError
from chromoformer.files import frames
from chromoformer.files.predictions import read_predictions, write_predictions

anndata = pytest.importorskip("anndata", reason="pip install -e '.[dev]' (anndata)")
pytest.importorskip("pyarrow", reason="pip install -e '.[dev]' (pyarrow)")


def _clf(n=50, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 2)) * 3
    p = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    return pd.DataFrame({"gene_id": [f"ENSG{i:05d}" for i in range(n)], "logit_0": logits[:, 0],
                         "logit_1": logits[:, 1], "prediction": p, "prediction_sd": rng.random(n) / 7,
                         "margin_sd": rng.random(n) * 1e-9})


def _diff(n=30, seed=1):
    rng = np.random.default_rng(seed)
    lfc = rng.normal(size=n) * 2
    return pd.DataFrame({"gene_id": [f"g{i}" for i in range(n)], "expr_a": rng.random(n) * 10,
                         "expr_b": rng.random(n) * 10, "lfc": lfc,
                         "call": np.where(lfc >= 1, "up", np.where(lfc <= -1, "down", "unchanged"))})


def _genes(ids):
    return pd.DataFrame({"gene_id": ids, "chrom": ["chr1", "chrX"] * (len(ids) // 2) + ["chr2"] * (len(ids) % 2),
                         "tss": np.arange(len(ids)) * 1000 + 17, "strand": "+", "split": np.arange(len(ids)) % 4 + 1})


@pytest.mark.parametrize("make", [_clf, _diff, lambda: _clf()[["gene_id", "prediction"]]])
def test_predictions_round_trip_to_the_csvs_numbers_exactly(tmp_path, make):
    df = make()
    genes = _genes(list(df.gene_id))
    tables = {s: read_predictions(write_predictions(df, tmp_path / f"p.{s}", genes=genes))
              for s in ("csv", "parquet", "h5ad")}
    csv = tables["csv"]
    for s in ("parquet", "h5ad"):
        pd.testing.assert_frame_equal(tables[s], csv, check_exact=True)
    # and the csv holds the frame's values to its 7 significant digits
    for c in df.columns[1:]:
        if df[c].dtype.kind == "f":
            assert np.allclose(csv[c], df[c], rtol=5e-7, atol=0)


def test_the_h5ad_is_genes_by_statistics_with_their_annotation(tmp_path):
    df, path = _clf(), tmp_path / "p.h5ad"
    write_predictions(df, path, genes=_genes(list(df.gene_id)))
    a = anndata.read_h5ad(path)
    assert a.shape == (50, 5) and list(a.obs_names) == list(df.gene_id)
    assert list(a.var_names) == ["logit_0", "logit_1", "prediction", "prediction_sd", "margin_sd"]
    assert list(a.obs.columns) == ["chrom", "tss", "strand", "split"]
    assert a.obs.tss.tolist() == list(np.arange(50) * 1000 + 17) and a.obs.split.tolist()[:5] == [1, 2, 3, 4, 1]
    d = _diff()
    write_predictions(d, tmp_path / "d.h5ad")
    b = anndata.read_h5ad(tmp_path / "d.h5ad")
    assert list(b.var_names) == ["expr_a", "expr_b", "lfc"] and b.obs.call.tolist() == d.call.tolist()


def test_predict_writes_each_format_by_suffix(demo, tmp_path):
    base = ["predict", "-m", str(demo / "demo_meta.csv"), "-d", str(demo / "demo_data"), "-k",
            str(demo / "scrambled-clf-fold1.pt"), "--num-workers", "0", "-o"]
    for s in ("csv", "parquet", "h5ad"):
        main([*base, str(tmp_path / f"p.{s}")])
    csv = read_predictions(tmp_path / "p.csv")
    assert len(csv) == 100
    for s in ("parquet", "h5ad"):
        pd.testing.assert_frame_equal(read_predictions(tmp_path / f"p.{s}"), csv, check_exact=True)
    obs = anndata.read_h5ad(tmp_path / "p.h5ad").obs
    meta = pd.read_csv(demo / "demo_meta.csv").set_index("gene_id").loc[obs.index]
    assert obs.chrom.tolist() == meta.chrom.tolist() and obs.strand.tolist() == meta.strand.tolist()


def test_a_missing_package_or_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "bad.parquet").write_text("not parquet\n")
    with pytest.raises(UsageError, match=r"bad.parquet: not a readable predictions table"):
        read_predictions(tmp_path / "bad.parquet")
    (tmp_path / "bad.h5ad").write_bytes(b"\x89HDF\r\n" + b"\0" * 40)
    with pytest.raises(UsageError, match=r"bad.h5ad: not a readable predictions table"):
        read_predictions(tmp_path / "bad.h5ad")
    import importlib

    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda n, *a: (_ for _ in ()).throw(ImportError(n)) if n == "anndata" else real(n, *a))
    with pytest.raises(UsageError, match=r"needs the anndata package: pip install 'chromoformer-ng\[anndata\]'"):
        frames.write_frame(_clf(), tmp_path / "x.h5ad", index="gene_id")
    assert not (tmp_path / "x.h5ad").exists()


def test_evaluate_writes_parquet_beside_its_tables_on_request(tmp_path):
    rng = np.random.default_rng(3)
    runs = []
    for f in (1, 2):
        label = rng.integers(0, 2, 40)
        p = tmp_path / f"fold{f}.csv"
        pd.DataFrame({"gene_id": [f"g{f}_{i}" for i in range(40)], "label": label,
                      "score": 1 / (1 + np.exp(-(label + rng.normal(size=40))))}).to_csv(p, index=False)
        runs.append(str(p))
    main(["evaluate", "--runs", *runs, "-o", str(tmp_path / "ev"), "--parquet"])
    tsv = pd.read_csv(tmp_path / "ev" / "metrics.tsv", sep="\t")
    pq = pd.read_parquet(tmp_path / "ev" / "metrics.parquet")
    assert list(pq.columns) == list(tsv.columns) and list(pq.fold.astype(str)) == list(tsv.fold.astype(str))
    assert np.allclose(pq.auroc, tsv.auroc, atol=5e-5)
    oof = pd.read_parquet(tmp_path / "ev" / "oof_predictions.parquet")
    assert len(oof) == 80 and set(oof.columns) >= {"gene_id", "label", "score", "fold"}
    pd.DataFrame({"gene_id": ["x"], "label": [1], "score": [1.5]}).to_csv(tmp_path / "fold3.csv", index=False)
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--runs", *runs, str(tmp_path / "fold3.csv"), "-o", str(tmp_path / "ev2")])
    assert e.value.code == 2
