"""What a new user sees first is true and readable: the demo genes' fold message and its way out, plots whose
scales and labels come from the data, a comparison that marks a model that did not train, and a report that
never mixes two models."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from chromoformer.cli import main
from chromoformer.errors import UsageError
from chromoformer.results import plots
from fault_inputs import tiny_data

matplotlib.use("Agg")


def _captured(monkeypatch) -> list:
    """The figures the plot functions save (saved as usual, and kept for inspection)."""
    figs = []
    real = plots.save_figure

    def keep(fig, path, **kw):
        figs.append(fig)
        real(fig, path, **kw)

    monkeypatch.setattr(plots, "save_figure", keep)
    monkeypatch.setattr(plots.plt, "close", lambda fig=None: None)
    return figs


def test_the_original_readme_on_the_demo_genes_names_the_split_and_the_way_out(demo, tmp_path, capsys):
    """All 100 demo genes lie in split 1: fold 0 (split 4) says so and offers --val-fraction, which trains.
    (``python -m chromoformer.train`` is this ``main``; tests/test_train.py runs it as a process.)"""
    from chromoformer.train import main as original_train

    args = ["--meta", str(demo / "demo_meta.csv"), "--npy-dir", str(demo / "demo_data"), "--fold", "0",
            "--epochs", "1", "--num-workers", "0", "--no-store"]
    with pytest.raises(SystemExit) as e:
        original_train([*args, "-o", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "split 1 (100 genes)" in err and "--val-fraction" in err and "holds out split 4" in err
    _, _, cfg = tiny_data(tmp_path / "cfg", 8, 0)  # only its config: a small model, the same code paths
    original_train([*args, "-o", str(tmp_path / "b"), "--val-fraction", "0.25", "-c", str(cfg)])
    held = pd.read_csv(tmp_path / "b" / "val_predictions.csv")
    assert len(held) == 25 and held.gene_id.is_unique


def test_val_fraction_is_seeded_and_checked():
    from chromoformer.data.folds import split_fraction
    from chromoformer.data.metadata import Gene

    genes = [Gene(f"g{i}", "chr1", 100 * i, "+", (), ()) for i in range(40)]
    tr, va = split_fraction(genes, 0.25, 123)
    assert len(va) == 10 and len(tr) == 30 and not {g.gene_id for g in tr} & {g.gene_id for g in va}
    assert split_fraction(genes, 0.25, 123) == (tr, va) and split_fraction(genes, 0.25, 7) != (tr, va)
    for bad in (0, 1, -0.5, float("nan"), True):
        with pytest.raises(UsageError, match="--val-fraction must be between 0 and 1"):
            split_fraction(genes, bad, 1)


def test_attention_heatmap_scale_spans_the_genes_values(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    rng = np.random.default_rng(0)
    rows = [{"gene_id": "G", "binsize": b, "layer": L, "head": h, "pcre": p, "weight": 0.1 + 0.05 * rng.random()}
            for b in (2000, 100) for L in range(2) for h in range(4) for p in range(3)]
    t = pd.DataFrame(rows)
    plots.attention_heatmap(t, "G", tmp_path / "a.png", pcre_labels=["pCRE 0: +12.0 kb, score 2.10"])
    fig = figs[-1]
    lo, hi = fig.axes[0].images[0].get_clim()
    mean = t.groupby(["binsize", "layer", "pcre"]).weight.mean()
    assert (lo, hi) == pytest.approx((mean.min(), mean.max()))  # not pinned to 0-1 (values sit near 0.12)
    labels = [x.get_text() for x in fig.axes[0].get_xticklabels()]
    assert labels[0].startswith("pCRE 0: +12.0 kb") and labels[1] == "pCRE 1"
    assert [x.get_text() for x in fig.axes[0].get_yticklabels()] == ["layer 0", "layer 1"]


def test_attribution_plot_has_a_row_per_mark_the_pcres_and_the_prediction(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    promoter = np.zeros((40, 3))
    promoter[20, 1] = 0.5
    promoter[5, 2] = -0.01
    plots.attribution_track(promoter, "G", 100, tmp_path / "b.png", marks=["A", "B", "C"], strand="-",
                            pcres=np.array([[0.1, -0.2, 0.0]]), pcre_labels=["pCRE 0: -3.0 kb, score 1.80"],
                            prediction="P(expressed) 0.81, observed label 1")
    fig = figs[-1]
    title = fig._suptitle.get_text()
    assert "P(expressed) 0.81" in title and "red raises" in title and "(- strand)" in title
    rows = [a for a in fig.axes if a.get_ylabel() in ("A", "B", "C")]
    assert [a.get_ylabel() for a in rows] == ["A", "B", "C"]
    assert rows[2].get_ylim()[0] == pytest.approx(-0.011)  # each row on its own scale: C is not flattened by B
    side = [a for a in fig.axes if a.images and a.get_title().startswith("pCREs")]
    assert side and side[0].get_xticklabels()[0].get_text().startswith("pCRE 0: -3.0 kb")


def test_comparison_plot_marks_a_model_that_did_not_train_and_draws_chance(tmp_path, monkeypatch):
    figs = _captured(monkeypatch)
    per_fold = pd.DataFrame({"model": ["chromoformer"] * 2 + ["attentivechrome"] * 2, "fold": [1, 2] * 2,
                             "auroc": [0.8, 0.82, 0.55, 0.45]})
    plots.comparison_plot(per_fold, tmp_path / "c.png", untrained=["attentivechrome"])
    ax = figs[-1].axes[0]
    ticks = [x.get_text() for x in ax.get_xticklabels()]
    assert ticks == ["chromoformer", "attentivechrome\n(did not train)"]
    assert [p.get_hatch() for p in ax.patches[:2]] == [None, "//"] or [p.get_hatch() for p in ax.patches[:2]] \
        == ["", "//"]
    assert any(list(line.get_ydata()) == [0.5, 0.5] and line.get_label() == "chance" for line in ax.get_lines())


@pytest.fixture(scope="module")
def two_runs(synthetic, tmp_path_factory):
    meta, npy = synthetic
    d = tmp_path_factory.mktemp("two")
    _, _, cfg = tiny_data(d / "cfg", 8, 0)
    for name in ("a", "b"):
        main(["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(d / name), "--epochs", "1",
              "--num-workers", "0", "-c", str(cfg), "--init-seed", "1" if name == "a" else "2"])
    from chromoformer.data import read_metadata

    genes = [g.gene_id for g in read_metadata(meta) if g.pcres][:2]
    main(["interpret", "-m", str(meta), "-d", str(npy), "-k", str(d / "a" / "best.pt"), "-o", str(d / "ia"),
          "--genes", *genes])
    return d, genes


def test_report_refuses_an_interpretation_of_another_checkpoint(two_runs, capsys):
    d, _ = two_runs
    with pytest.raises(SystemExit) as e:
        main(["report", str(d / "b"), "--interpretation", str(d / "ia")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "it explains checkpoint" in err and str(d / "a" / "best.pt") in err
    assert not (d / "b" / "report").exists()


def test_report_gene_pages_say_where_what_and_which_model(two_runs):
    d, genes = two_runs
    main(["report", str(d / "a"), "--interpretation", str(d / "ia")])
    page = (d / "a" / "report" / "genes" / f"{genes[0]}.html").read_text()
    info = __import__("json").loads((d / "ia" / "interpret.json").read_text())["gene_info"][0]
    assert f"{info['chrom']}:{info['tss']:,} (TSS, {info['strand']} strand)" in page
    assert f"P(expressed) {info['probability']:.2f}" in page and f"observed label {info['label']}" in page
    assert "best.pt" in page and "<h2>pCREs</h2>" in page and info["pcres"][0]["region"] in page
    assert "unperturbed score" in page and "<th>score</th>" not in page  # the constant column is said once
    assert "explain checkpoint" in (d / "a" / "report" / "index.html").read_text()


def test_workflow_summary_names_what_was_made_and_explains_a_pooled_figure(tmp_path):
    import yaml

    from chromoformer.workflow import summary

    sheet = {"annotation": "a.gtf", "expression": "e.tsv", "marks": ["H3K4me3"],
             "samples": {s: {"interactions": "i.tsv", "signals": {"H3K4me3": "x.bam"}} for s in ("S1", "S2")},
             "pairs": [{"a": "S1", "b": "S2"}]}
    (tmp_path / "samples.resolved.yaml").write_text(yaml.safe_dump(sheet))
    ev = tmp_path / "S1" / "evaluation"
    ev.mkdir(parents=True)
    pd.DataFrame({"fold": ["1", "2", "pooled"], "n": [10, 12, 22], "auroc": [0.8, 0.7, 0.41]}).to_csv(
        ev / "metrics.tsv", sep="\t", index=False)
    lines = summary(tmp_path)
    text = "\n".join(lines)
    assert "S1: held-out AUROC fold 1 0.800, fold 2 0.700; pooled 0.410 (22 genes)" in text
    assert "outside the folds' range" in text and str(tmp_path / "S1" / "predictions.csv") in text
    assert "S2: no evaluation yet" in text and "pair S2_vs_S1: no evaluation yet" in text
    with pytest.raises(UsageError, match="not a workflow directory"):
        summary(tmp_path / "S1")
    # a damaged table is one line of the summary, never a traceback after a finished run
    s2 = tmp_path / "S2" / "evaluation"
    s2.mkdir(parents=True)
    for text, said in (("", "empty file"), ("fold\tn\tau", "not an evaluation table"),
                       ("fold\tn\tauroc\n1\tx\t0.5\npooled\t3\t0.5\n", ":2: n 'x' is not an integer"),
                       ("fold\tn\tauroc\n1\t3\tnan\npooled\t3\t0.6\n", "fold 1 nan; pooled 0.600 (3 genes)")):
        (s2 / "metrics.tsv").write_text(text)
        line = next(x for x in summary(tmp_path) if x.startswith("S2:"))
        assert said in line and "outside" not in line, line


def test_simulate_writes_a_ready_sample_sheet_and_can_simulate_a_pair(tmp_path, capsys):
    from chromoformer.preprocess.simulate import CHROMHMM
    from chromoformer.workflow.sheet import check_sheet

    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    main(["simulate", "-o", str(tmp_path / "one"), "--span-mb", "4"])
    one = check_sheet(tmp_path / "one" / "samples.yaml")  # every file it names exists and is of its kind
    assert list(one["samples"]) == ["SIM"] and "pairs" not in one
    main(["simulate", "-o", str(tmp_path / "two"), "--span-mb", "4", "--pair"])
    two = check_sheet(tmp_path / "two" / "samples.yaml")
    assert list(two["samples"]) == ["A", "B"] and two["pairs"] == [{"a": "A", "b": "B"}]
    expr = pd.read_csv(tmp_path / "two" / "expression.tsv", sep="\t")
    assert list(expr.columns) == ["gene_id", "A", "B"] and not np.allclose(expr.A, expr.B)
    assert "chromoformer workflow --config" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:  # refused before anything is simulated, not a traceback after
        main(["simulate", "-o", str(tmp_path / "three"), "--pair", "--genome-scale"])
    assert e.value.code == 2 and "give one of them" in capsys.readouterr().err
    assert not (tmp_path / "three").exists()


def test_the_reference_demo_says_what_its_auroc_means(demo, tmp_path):
    from chromoformer.workflow.demo import predict_reference

    line = predict_reference(demo, tmp_path)
    assert "AUROC 0.6" in line and "says nothing about biology" in line
    assert len(pd.read_csv(tmp_path / "reference_demo_predictions.csv")) == 100
