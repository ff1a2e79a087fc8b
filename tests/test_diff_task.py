"""The differential task end to end: train (both pair models), resume, stored numbers, predict, evaluate,
compare, and the one-line errors of its inputs and options."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from chromoformer.cli import main as cli
from chromoformer.data import NpyDirSource, read_metadata
from chromoformer.data.loader import make_loader
from chromoformer.diff.fitting import compare_pairs, train_pair_fold
from chromoformer.diff.pairing import PairedDataset, pair_genes
from chromoformer.diff.prediction import predict_pair_genes, predict_pairs
from chromoformer.diff.simulation import write_synthetic_pair
from chromoformer.engine.batches import forward, output_table
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.engine.loading import load_model
from chromoformer.engine.runtime import Runtime
from chromoformer.errors import ChromoformerError, ConfigError, UsageError
from chromoformer.files.layouts import RunPaths
from chromoformer.inference.predict import predict
from chromoformer.metrics import diff_metrics
from chromoformer.results.evaluate import evaluate
from chromoformer.spec import RunSpec
from chromoformer.training.objective import train_loss
from fault_inputs import tiny_config


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return write_synthetic_pair(tmp_path_factory.mktemp("diffpair"), n_genes=24, seed=5)



def files(pair) -> tuple:
    return pair.cell("A").meta, pair.cell("A").npy, pair.cell("B").meta, pair.cell("B").npy


@pytest.fixture(scope="module")
def runs(pair, tmp_path_factory):
    """One fold of each pair model, 2 epochs."""
    root = tmp_path_factory.mktemp("diffruns")
    out = {}
    for arch in ("chromoformer-diff", "deepdiff"):
        spec = RunSpec(tiny_config(2), task="diff", arch=arch)
        train_pair_fold(spec, *files(pair), 1, root / arch, cache_store=False)
        out[arch] = root / arch
    return out


def test_diff_metrics_known_answers():
    target = np.array([2.0, 1.0, -1.5, 0.2, -0.3, -2.0])  # up, up, down, -, -, down
    pred = np.array([0.9, -0.1, 0.0, 5.0, -5.0, 0.5])
    m = diff_metrics(pred, target)
    # up genes score 0.9, -0.1; down genes 0.0, 0.5: pairs (up > down) = (0.9>0, 0.9>0.5, -0.1>0 no, -0.1>0.5 no)
    assert m["call_auroc"] == pytest.approx(0.5) and (m["n_up"], m["n_down"]) == (2, 2)
    assert m["pearson"] == pytest.approx(np.corrcoef(pred, target)[0, 1])
    assert math.isnan(diff_metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 0.0]))["call_auroc"])  # no down


def test_the_standard_pair_loss_is_three_mses():
    out = {"lfc": torch.tensor([[1.0], [0.0]]), "expr_a": torch.tensor([[2.0], [2.0]]),
           "expr_b": torch.tensor([[0.0], [1.0]])}
    batch = {"a": {}, "b": {}, "lfc": torch.tensor([0.0, 0.0]), "expr_a": torch.tensor([1.0, 2.0]),
             "expr_b": torch.tensor([0.0, 3.0])}
    # MSE(lfc) = 0.5, MSE(expr_a) = 0.5, MSE(expr_b) = 2
    assert train_loss(out, batch, "diff").item() == pytest.approx(3.0)


def test_both_pair_models_train_and_store_checked_numbers(runs):
    for arch, run in runs.items():
        paths = RunPaths.from_output(run)
        val = pd.read_csv(paths.val_predictions)
        assert list(val.columns) == ["gene_id", "lfc", "score", "pred_expr_a", "pred_expr_b"]  # the target's name
        lm = load_model(paths.best)
        assert (lm.spec.task, lm.spec.arch) == ("diff", arch)
        ck = read_checkpoint(paths.best)
        r = 100 * np.corrcoef(val.score, val.lfc)[0, 1]
        assert ck["last_val_pearson"] == pytest.approx(r, abs=1e-2)  # the csv keeps 7 digits
        m = pd.read_csv(paths.metrics, sep="\t")
        assert {"val_pearson", "val_call_auroc", "val_n_up", "train_loss"} <= set(m.columns) and len(m) == 2
        assert np.isfinite(m.train_loss).all()


def test_the_single_cell_model_comes_with_chromoformer_diff(runs, pair):
    """The encoder is a plain regressor: its state loads into one, and it predicts cell A alone as the
    pair model's expr_a head does."""
    from chromoformer.model import ChromoformerRegressor

    lm = load_model(RunPaths.from_output(runs["chromoformer-diff"]).best)
    reg = ChromoformerRegressor(lm.spec.config, lm.spec.binsizes)
    reg.load_state_dict(lm.model.encoder.state_dict(), strict=True)
    reg.eval()
    pairs = pair_genes(read_metadata(pair.cell("A").meta), read_metadata(pair.cell("B").meta))
    ds = PairedDataset(pairs[:5], NpyDirSource(pair.cell("A").npy), NpyDirSource(pair.cell("B").npy),
                       lm.spec.config, lm.spec.binsizes)
    batch = next(iter(make_loader(ds, batch_size=5)))
    with torch.no_grad():
        table = output_table(forward(lm.model, batch))
        alone = reg(**batch["a"])
    torch.testing.assert_close(table[:, 1:2], alone, rtol=0, atol=1e-6)


@pytest.mark.slow  # the single-cell model's resume is in the default run (test_train)
def test_resume_is_bit_identical_for_both_pair_models(pair, tmp_path):
    for arch in ("chromoformer-diff", "deepdiff"):
        whole, part = tmp_path / f"{arch}-whole", tmp_path / f"{arch}-part"
        train_pair_fold(RunSpec(tiny_config(2), task="diff", arch=arch), *files(pair), 2, whole, cache_store=False)
        train_pair_fold(RunSpec(tiny_config(1), task="diff", arch=arch), *files(pair), 2, part, cache_store=False)
        train_pair_fold(RunSpec(tiny_config(2), task="diff", arch=arch), *files(pair), 2, part, cache_store=False,
                        resume=True)
        a, b = read_checkpoint(whole / "last.pt")["net"], read_checkpoint(part / "last.pt")["net"]
        assert all(torch.equal(a[k], b[k]) for k in a), arch


def test_predict_pairs_columns_ensemble_and_batch_size_invariance(runs, pair):
    best = RunPaths.from_output(runs["deepdiff"]).best
    one = predict_pairs(*files(pair)[:2], *files(pair)[2:], [best], runtime=Runtime(batch_size=7))
    assert list(one.columns) == ["gene_id", "expr_a", "expr_b", "lfc", "call"] and len(one) == 24
    assert set(one.call) <= {"up", "down", "unchanged"}
    assert ((one.lfc >= 1) == (one.call == "up")).all() and ((one.lfc <= -1) == (one.call == "down")).all()
    src = NpyDirSource(pair.cell("A").npy), NpyDirSource(pair.cell("B").npy)
    pairs = pair_genes(read_metadata(pair.cell("A").meta), read_metadata(pair.cell("B").meta))
    single = predict_pair_genes([best], pairs, *src, runtime=Runtime(batch_size=1))
    np.testing.assert_allclose(single.lfc, one.lfc, rtol=0, atol=1e-5)
    last = RunPaths.from_output(runs["deepdiff"]).last
    both = predict_pair_genes([best, last], pairs, *src, runtime=Runtime(batch_size=24))
    other = predict_pair_genes([last], pairs, *src, runtime=Runtime(batch_size=24))
    np.testing.assert_allclose(both.lfc, (one.lfc + other.lfc) / 2, rtol=0, atol=1e-5)
    assert "lfc_sd" in both and (both.lfc_sd >= 0).all()
    # the stored validation scores are these predictions for the held-out genes (best epoch = its checkpoint)
    val = pd.read_csv(RunPaths.from_output(runs["deepdiff"]).val_predictions).set_index("gene_id")
    np.testing.assert_allclose(one.set_index("gene_id").loc[val.index, "lfc"], val.score, rtol=0, atol=1e-5)


def test_evaluate_gives_the_call_auroc_and_refuses_mixing_tasks(runs, tmp_path, synthetic):
    vals = [RunPaths.from_output(r).val_predictions for r in runs.values()]
    m = evaluate([vals[0]], tmp_path / "ev")
    pooled = m.set_index("fold").loc["pooled"]
    val = pd.read_csv(vals[0])
    assert pooled.call_auroc == pytest.approx(diff_metrics(val.score.to_numpy(), val.lfc.to_numpy())["call_auroc"])
    assert (tmp_path / "ev" / "scatter.png").is_file()
    reg = tmp_path / "reg.csv"
    val[["gene_id", "lfc", "score"]].rename(columns={"lfc": "expression"}).assign(
        gene_id=lambda d: "X" + d.gene_id).to_csv(reg, index=False)  # a regressor's table
    with pytest.raises(ChromoformerError, match="differential .* but other files a single cell's"):
        evaluate([vals[0], reg], tmp_path / "ev2")


def test_the_cli_trains_predicts_and_compares_the_diff_task(pair, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(1).to_dict()))
    a_meta, a_npy, b_meta, b_npy = map(str, files(pair))
    cli(["compare", "--task", "diff", "-m", a_meta, "-d", a_npy, "--meta-b", b_meta, "--npy-dir-b", b_npy,
         "-o", str(tmp_path / "cmp"), "--folds", "1", "2", "--epochs", "1", "-c", str(cfg)])
    t = pd.read_csv(tmp_path / "cmp" / "comparison.tsv", sep="\t")
    assert list(t.model) == ["chromoformer-diff", "deepdiff"] and (t.n == 12).all()
    assert {"mean_fold_pearson", "sd_fold_pearson", "pooled_call_auroc", "params", "train_seconds"} <= set(t.columns)
    assert t.set_index("model").params["deepdiff"] == 284_355
    assert "protocol original (DeepDiff" in capsys.readouterr().out
    assert (tmp_path / "cmp" / "comparison.png").stat().st_size > 1000
    assert t.trained.dtype == bool  # a model whose held-out scores are constant is marked in the table
    # one cache store per cell for both models (built once, under the comparison's folder)
    assert len(list((tmp_path / "cmp" / ".stores").iterdir())) == 2
    assert not list((tmp_path / "cmp").glob("*/.stores"))
    k = str(tmp_path / "cmp" / "deepdiff" / "fold1" / "last.pt")
    cli(["predict", "-m", a_meta, "-d", a_npy, "--meta-b", b_meta, "--npy-dir-b", b_npy, "-k", k,
         "-o", str(tmp_path / "p.csv")])
    assert pd.read_csv(tmp_path / "p.csv").columns.tolist() == ["gene_id", "expr_a", "expr_b", "lfc", "call"]


def test_compare_pairs_on_deepdiffs_own_five_marks(pair, tmp_path):
    """``--marks deepdiff``: both cells' 7-row npy signals are read through DeepDiff's 5 channels, by name."""
    a_meta, a_npy, b_meta, b_npy = map(str, files(pair))
    cli(["compare", "--task", "diff", "-m", a_meta, "-d", a_npy, "--meta-b", b_meta, "--npy-dir-b", b_npy,
         "-o", str(tmp_path / "cmp"), "--models", "deepdiff", "--folds", "1", "--epochs", "1", "--marks", "deepdiff"])
    t = pd.read_csv(tmp_path / "cmp" / "comparison.tsv", sep="\t")
    assert t.params.tolist() == [212_163]
    ck = read_checkpoint(tmp_path / "cmp" / "deepdiff" / "fold1" / "last.pt")
    assert ck["spec"]["marks"] == ["H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3"]


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "diff", "--fold", "1"], "give cell B's --meta-b and --npy-dir-b"),
    (["train", "--fold", "1", "--meta-b", "B.csv"], "--meta-b name cell B of the differential task: add --task diff"),
    (["train", "--task", "diff", "--regression", "--fold", "1"], "--regression means --task reg"),
    (["train", "--task", "clf", "--model", "deepdiff", "--fold", "1"], "deepdiff predicts a fold change"),
    (["train", "--task", "diff", "--model", "gcmerge", "--fold", "1", "--meta-b", "x", "--npy-dir-b", "y"],
     "model gcmerge cannot take task diff"),
    (["compare", "--task", "diff", "--models", "deepchrome", "--meta-b", "x", "--npy-dir-b", "y"],
     "model deepchrome cannot take task diff"),
])
def test_diff_options_fail_with_one_line(pair, tmp_path, capsys, argv, message):
    a_meta, a_npy = map(str, files(pair)[:2])
    with pytest.raises(SystemExit) as e:
        cli([*argv, "-m", a_meta, "-d", a_npy, "-o", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_single_cell_and_pair_entry_points_refuse_each_other(runs, pair, synthetic, tmp_path):
    meta, npy = synthetic
    best = RunPaths.from_output(runs["deepdiff"]).best
    with pytest.raises(UsageError, match="compares two cells: give cell B's metadata and signal"):
        predict(meta, npy, [best])
    clf = _single_cell_checkpoint(synthetic, tmp_path)
    with pytest.raises(UsageError, match="needs a --task diff checkpoint"):
        predict_pairs(*files(pair), [clf])
    with pytest.raises(UsageError, match="cell B's metadata and signal belong to the differential task"):
        compare_pairs(meta, npy, meta, npy, tmp_path / "c", spec=RunSpec())
    with pytest.raises(ConfigError, match="deepdiff reads 200 bins of 100 bp"):
        RunSpec(task="diff", arch="deepdiff", binsizes=(2000, 500))


def _single_cell_checkpoint(synthetic, tmp_path):
    from chromoformer.training.fit import train_fold

    meta, npy = synthetic
    train_fold(RunSpec(tiny_config(1)), meta, npy, 1, tmp_path / "clf", cache_store=False)
    return tmp_path / "clf" / "last.pt"


def test_a_pair_whose_cells_disagree_on_a_split_is_named(pair, tmp_path):
    b = pd.read_csv(pair.cell("B").meta)
    b.loc[3, "split"] = b.loc[3, "split"] % 4 + 1
    bad = tmp_path / "B.csv"
    b.to_csv(bad, index=False)
    with pytest.raises(ChromoformerError, match=r"B.csv:5: gene 'SYN00003' is in split \d but in split \d"):
        train_pair_fold(RunSpec(tiny_config(1), task="diff", arch="deepdiff"), pair.cell("A").meta, pair.cell("A").npy,
                        bad, pair.cell("B").npy, 1, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage, message", [
    ("missing", "missing there"),
    ("nan", "NaN or infinite values"),
    ("shape", "shape"),
])
def test_a_broken_region_of_cell_b_is_one_line_naming_it(pair, tmp_path, capsys, damage, message):
    """Cell B's signal lacks (or holds a broken copy of) one gene's promoter region: the run stops before training
    with one line naming the file."""
    import shutil

    b_npy = tmp_path / "B_npy"
    shutil.copytree(pair.cell("B").npy, b_npy)
    g = pd.read_csv(pair.cell("B").meta).iloc[2]
    region = b_npy / f"{g.chrom}:{g.start - 20000}-{g.start + 20000}.npy"
    x = np.load(region)
    if damage == "missing":
        region.unlink()
    elif damage == "nan":
        x[0, 5] = np.nan
        np.save(region, x)
    else:
        np.save(region, x[:, :-7])
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(1).to_dict()))
    a_meta, a_npy, b_meta, _ = map(str, files(pair))
    with pytest.raises(SystemExit) as e:
        cli(["train", "--task", "diff", "-m", a_meta, "-d", a_npy, "--meta-b", b_meta, "--npy-dir-b", str(b_npy),
             "--fold", "1", "-o", str(tmp_path / "run"), "-c", str(cfg), "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1, err
    assert region.name in err[0] and message in err[0], err
    assert not (tmp_path / "run" / "best.pt").exists()


def test_compare_flags_a_model_whose_held_out_scores_are_constant(caplog):
    from chromoformer.training.compare import check_spread

    rng = np.random.default_rng(0)
    label = rng.normal(2, 1, 40)
    trained = pd.DataFrame({"fold": np.repeat([1, 2], 20), "label": label, "score": label + rng.normal(0, .5, 40)})
    flat = trained.assign(score=0.2675 + 1e-6 * rng.normal(size=40))
    with caplog.at_level("WARNING", logger="chromoformer.training.compare"):
        sd, ok = check_spread("good", trained)
        assert sd > 0.5 and ok and not caplog.records
        sd, ok = check_spread("attentivechrome", flat)
        assert sd < 1e-5 and not ok  # the table's 'trained' column says so too, and the plot draws it hatched
    heads = [r.getMessage().split(":")[0] for r in caplog.records]
    assert heads == ["attentivechrome fold 1", "attentivechrome fold 2"]
    assert "did not train" in caplog.records[0].getMessage()
