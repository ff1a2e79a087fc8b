"""Interpretation of the differential task: each cell's marks and pCREs explain the predicted fold change."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from chromoformer.cli import main as cli
from chromoformer.config import MARKS
from chromoformer.data import NpyDirSource, read_metadata
from chromoformer.diff.explanation import difference_summary, lfc_score, pair_attributions, pair_perturbation_table
from chromoformer.diff.fitting import train_pair_fold
from chromoformer.diff.pairing import PairedDataset, pair_genes
from chromoformer.diff.simulation import write_synthetic_pair
from chromoformer.engine.batches import forward
from chromoformer.errors import UsageError
from chromoformer.inference.attribution import zero_mark
from chromoformer.model import build_model
from chromoformer.results.interpretation import read_interpretation
from chromoformer.spec import RunSpec
from fault_inputs import tiny_config


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return write_synthetic_pair(tmp_path_factory.mktemp("ipair"), n_genes=12, seed=3)


def batch_of(pair, cfg, n=6) -> dict:
    a, b = (read_metadata(pair.cell(c).meta, i_max=cfg.i_max, w_max=cfg.w_max) for c in "AB")
    pairs = pair_genes(a, b, file_a="A", file_b="B")[:n]
    ds = PairedDataset(pairs, NpyDirSource(pair.cell("A").npy), NpyDirSource(pair.cell("B").npy), cfg)
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=n)))


def model(arch: str, cfg) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("diff", cfg, arch=arch).eval()


@pytest.mark.parametrize("arch, steps", [("chromoformer-diff", 64), ("deepdiff", 12)])  # DeepDiff is smooth
def test_integrated_gradients_are_complete_over_both_cells(pair, arch, steps):
    cfg = tiny_config(1)
    m, p = model(arch, cfg), batch_of(pair, cfg, n=3)
    attr = pair_attributions(m, p, steps=steps)
    total = difference_summary(attr, p["gene_id"], p["a"]["n_pcres"], MARKS).groupby("gene_id",
                                                                                       sort=False).attribution.sum()
    zero = {c: {**p[c], **{k: {b: torch.zeros_like(t) for b, t in p[c][k].items()}
                           for k in ("promoter_feats", "pcre_feats")}} for c in "ab"}
    with torch.no_grad():
        want = lfc_score(m, p) - lfc_score(m, {**p, **zero})
    if arch == "chromoformer-diff":
        # lfc = (h(e_a, e_b) - h(e_b, e_a)) / 2 (antisymmetric by construction): the integral of each half is
        # exact to the midpoint rule's ~1% over ReLU kinks, so the error is bounded by 3% of the halves' scale,
        # which the small difference of two near-equal halves (an untrained model) can be far below
        with torch.no_grad():
            def half(x, y):
                return m.diff_head(torch.cat([x, y, y - x], -1))[:, 0]

            e = {c: m.encoder.embedding(**p[c]) for c in "ab"}
            z = {c: m.encoder.embedding(**zero[c]) for c in "ab"}
            scale = ((half(e["a"], e["b"]) - half(z["a"], z["b"])).abs()
                     + (half(e["b"], e["a"]) - half(z["b"], z["a"])).abs()) / 2
        assert ((torch.from_numpy(total.to_numpy()) - want).abs() <= 3e-2 * scale).all(), (total, want, scale)
    else:
        np.testing.assert_allclose(total.to_numpy(), want.numpy(), rtol=3e-2)  # midpoint rule over ReLU kinks
    # one cell or one bin size left out would miss by a third or more of the scale
    assert (want.abs() > 1e-4).all()  # the test is not vacuous
    if arch == "deepdiff":  # DeepDiff reads the promoter only: its pCREs explain nothing
        assert all(float(t.abs().max()) == 0 for c in "ab" for t in attr[c]["pcre"].values())


def test_perturbation_deltas_are_the_edited_cells_fold_change_changes(pair):
    cfg = tiny_config(1)
    m, p = model("chromoformer-diff", cfg), batch_of(pair, cfg, n=3)
    t = pair_perturbation_table(m, p, marks=MARKS)
    with torch.no_grad():
        base = forward(m, p)
        edited = forward(m, {**p, "b": zero_mark(p["b"], MARKS.index("H3K4me3"))})
    row = t[(t.target == "B:H3K4me3") & (t.perturbation == "zero_mark_promoter")].set_index("gene_id")
    np.testing.assert_allclose(row.delta.loc[p["gene_id"]], (edited["lfc"] - base["lfc"])[:, 0], rtol=1e-4,
                               atol=1e-6)
    torch.testing.assert_close(edited["expr_a"], base["expr_a"])  # editing B leaves cell A's own prediction
    assert set(t.target.str[:2]) == {"A:", "B:"}
    n_pcres = {g: int(n) for g, n in zip(p["gene_id"], p["a"]["n_pcres"], strict=True)}
    drops = t[t.perturbation == "drop_pcre"].groupby("gene_id").size()
    assert all(drops.get(g, 0) == 2 * n for g, n in n_pcres.items())  # each pCRE once per cell


def test_interpret_and_report_a_diff_checkpoint_from_the_cli(pair, tmp_path, capsys):
    spec = RunSpec(tiny_config(1), task="diff", arch="chromoformer-diff")
    run = tmp_path / "run"
    train_pair_fold(spec, pair.cell("A").meta, pair.cell("A").npy, pair.cell("B").meta, pair.cell("B").npy, 1, run,
                    cache_store=False)
    ck = next(run.rglob("*best*.pt"))
    args = ["-m", str(pair.cell("A").meta), "-d", str(pair.cell("A").npy), "-k", str(ck)]
    pair_args = ["--meta-b", str(pair.cell("B").meta), "--npy-dir-b", str(pair.cell("B").npy)]
    out = tmp_path / "interp"
    cli(["interpret", *args, *pair_args, "-o", str(out), "--genes", "SYN00001", "SYN00004"])
    it = read_interpretation(out, need_perturbation=True)
    assert it.is_pair and it.genes == ["SYN00001", "SYN00004"]
    promoter, pcre = it.attributions(100, cell="B")
    assert promoter.shape == (2, spec.config.w_prom // 100, len(MARKS)) and np.isfinite(pcre).all()
    with pytest.raises(UsageError, match="differential"):
        it.attributions(100)
    d = pd.read_csv(out / "difference.tsv", sep="\t")
    assert set(d.cell) == {"A", "B"} and set(d.region) >= {"promoter"}
    assert (out / "difference_SYN00001.png").stat().st_size > 0
    assert json.loads((out / "interpret.json").read_text())["score"].startswith("predicted log2 fold change")
    cli(["report", str(run), "--interpretation", str(out)])
    page = (run / "report" / "genes" / "SYN00001.html").read_text()
    assert "What explains the fold change" in page and "B:" in page
    # a diff checkpoint without cell B, and a pair interpretation exported as tracks, are one-line refusals
    capsys.readouterr()
    for argv, message in ((["interpret", *args, "-o", str(tmp_path / "x")], "--meta-b"),
                          (["export", "-m", str(pair.cell("A").meta), "--interpretation", str(out), "-o",
                            str(tmp_path / "tracks")], "differential (two-cell) interpretation")):
        with pytest.raises(SystemExit) as e:
            cli(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and message in err[0], err
