"""Every model through every command that takes a checkpoint: each cell of the matrix either works, checked
against a known answer, or is refused in one line that says why (never a traceback, a hang or an exit 0 that
wrote nothing).

Models: chromoformer, chromoformer-nopcre, deepchrome, attentivechrome, hmcrnn, gcmerge (one cell) and
chromoformer-diff, deepdiff (two cells), each trained 1 epoch on fold 1 of a small synthetic pair of cells with
the tests' tiny config. Commands: predict, verify, inspect, interpret (each method), export, export-weights,
report, resume and compare. The known answers: predict re-predicts the run's own stored validation scores, verify's
checks all hold, inspect counts the model's parameters, export-weights round-trips the weights, export draws every
predicted gene, interpret writes finite attributions of the genes asked for, resume reaches the next epoch.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from chromoformer.cli import main
from chromoformer.diff.simulation import write_synthetic_pair
from chromoformer.engine.checkpoint import read_checkpoint
from fault_inputs import TINY

pytestmark = pytest.mark.slow  # ~2 minutes: the slow suite (.ci/run) runs it

SINGLE = ("chromoformer", "chromoformer-nopcre", "deepchrome", "attentivechrome", "hmcrnn", "gcmerge")
PAIR = ("chromoformer-diff", "deepdiff")
METHODS = ("gradient-x-input", "integrated-gradients", "deeplift", "feature-ablation")
RECURRENT = {"attentivechrome", "hmcrnn"}  # DeepLIFT's rules do not cover LSTMs: refused, saying so


def run(capsys, *argv) -> tuple[int, str, str]:
    """``chromoformer ARGV``: (exit code, stdout, stderr); an exception escaping main is a failure of the test."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def refused(code: int, err: str, why: str) -> None:
    """Exit 2 with one ``chromoformer: error:`` line that contains ``why``."""
    lines = [ln for ln in err.splitlines() if ln.startswith("chromoformer: error:")]
    assert code == 2 and len(lines) == 1 and why in lines[0] and "Traceback" not in err, (code, err[-2000:])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The pair of cells, the tiny config and one fold-1 run of each model."""
    root = tmp_path_factory.mktemp("matrix")
    files = write_synthetic_pair(root / "data", n_genes=24, seed=11)
    a, b = files.cell("A"), files.cell("B")
    from chromoformer.config import load_config

    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({**load_config().to_dict(), **TINY, "num_epoch": 1}))
    runs = {}
    for arch in (*SINGLE, *PAIR):
        out = root / "runs" / arch
        extra = ["--task", "diff", "--meta-b", b.meta, "--npy-dir-b", b.npy] if arch in PAIR else []
        code = run_quiet("train", "-c", config, "-m", a.meta, "-d", a.npy, "--fold", 1, "-o", out, "--model", arch,
                         "--num-workers", 0, *extra)
        assert code == 0, arch
        runs[arch] = out
    return {"root": root, "a": a, "b": b, "config": config, "runs": runs}


def run_quiet(*argv) -> int:
    try:
        main([str(a) for a in argv])
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def cells(world, arch) -> list:
    a, b = world["a"], world["b"]
    return ["-m", a.meta, "-d", a.npy] + (["--meta-b", b.meta, "--npy-dir-b", b.npy] if arch in PAIR else [])


@pytest.mark.parametrize("arch", SINGLE + PAIR)
def test_predict_re_predicts_the_runs_own_validation_scores(world, arch, tmp_path, capsys):
    best = world["runs"][arch] / "best.pt"
    code, _, err = run(capsys, "predict", *cells(world, arch), "-k", best, "-o", tmp_path / "p.csv",
                       "--num-workers", 0)
    assert code == 0, err
    pred = pd.read_csv(tmp_path / "p.csv").set_index("gene_id")
    ck = read_checkpoint(best)
    col = "lfc" if arch in PAIR else "prediction"
    got = pred.loc[ck["val_gene_ids"], col].to_numpy()
    assert len(pred) == 24 and np.abs(got - ck["val_score"]).max() < 1e-4


@pytest.mark.parametrize("arch", SINGLE + PAIR)
def test_verify_holds_with_the_loss_each_model_trained_with(world, arch, capsys):
    best = world["runs"][arch] / "best.pt"
    code, out, err = run(capsys, "verify", best, *cells(world, arch))
    assert code == 0, out + err
    assert " ok" in out and "do not hold" not in err
    if arch == "hmcrnn":
        assert "focal loss" in out
    code, _, err = run(capsys, "verify", best, "--fold", 3)
    refused(code, err, "trained on fold 1")


@pytest.mark.parametrize("arch", SINGLE + PAIR)
def test_inspect_counts_the_models_parameters(world, arch, capsys):
    from chromoformer.engine.loading import load_model

    best = world["runs"][arch] / "best.pt"
    code, out, err = run(capsys, "inspect", best)
    n = sum(p.numel() for p in load_model(best).model.parameters())
    assert code == 0 and f"{n:,} parameters" in out, out + err


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", SINGLE + PAIR)
def test_interpret_with_each_method(world, arch, method, tmp_path, capsys):
    best, genes = world["runs"][arch] / "best.pt", ["SYN00000", "SYN00003"]
    out = tmp_path / "interp"
    extra = ["--method", method] + (["--ig-steps", 4] if method == "integrated-gradients" else [])
    if arch in PAIR and method in ("deeplift", "feature-ablation"):  # the pair models: gradients only, saying so
        code, _, err = run(capsys, "interpret", *cells(world, arch), "-k", best, "-o", out, "--genes", *genes, *extra)
        refused(code, err, "explains the fold change by gradient x input or integrated gradients")
        assert not out.exists()
        return
    code, _, err = run(capsys, "interpret", *cells(world, arch), "-k", best, "-o", out, "--genes", *genes, *extra)
    if method == "deeplift" and arch in RECURRENT:
        refused(code, err, "DeepLIFT's rules do not cover recurrent layers")
        assert not out.exists()
        return
    assert code == 0, err[-3000:]
    info = json.loads((out / "interpret.json").read_text())
    assert info["genes"] == genes
    with np.load(out / "attributions.npz") as z:
        arrays = {k: z[k] for k in z.files if k != "gene_id"}
    assert arrays and all(np.isfinite(v).all() and v.shape[0] == len(genes) for v in arrays.values())
    assert any(np.abs(v).sum() > 0 for v in arrays.values())


@pytest.mark.parametrize("arch", SINGLE + PAIR)
def test_export_weights_round_trips(world, arch, tmp_path, capsys):
    from safetensors.torch import load_file

    best = world["runs"][arch] / "best.pt"
    code, _, err = run(capsys, "export-weights", best, "-o", tmp_path / "w.safetensors")
    assert code == 0, err
    w, net = load_file(tmp_path / "w.safetensors"), read_checkpoint(best)["net"]
    assert w.keys() == net.keys() and all(torch.equal(w[k], net[k]) for k in net)


@pytest.mark.parametrize("arch", SINGLE + PAIR)
def test_export_draws_every_predicted_gene(world, arch, tmp_path, capsys):
    best = world["runs"][arch] / "best.pt"
    assert run(capsys, "predict", *cells(world, arch), "-k", best, "-o", tmp_path / "p.csv", "--num-workers", 0)[0] == 0
    code, _, err = run(capsys, "export", "-m", world["a"].meta, "-o", tmp_path / "tracks", "--predictions",
                       tmp_path / "p.csv")
    assert code == 0, err
    lines = (tmp_path / "tracks" / "predictions.bedGraph").read_text().splitlines()[1:]
    assert len(lines) == 24 and all(math.isfinite(float(ln.split("\t")[3])) for ln in lines)


@pytest.mark.parametrize("arch", SINGLE + PAIR)
def test_report_and_resume(world, arch, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(world["runs"][arch], run_dir)
    code, out, err = run(capsys, "report", run_dir)
    assert code == 0, err
    code, _, err = run(capsys, "train", "-c", world["config"], *cells(world, arch)[:4], "--fold", 1, "-o", run_dir,
                       "--model", arch, "--num-workers", 0, "--epochs", 2, "--resume",
                       *(["--task", "diff", *cells(world, arch)[4:]] if arch in PAIR else []))
    assert code == 0, err
    assert read_checkpoint(run_dir / "last.pt")["epoch"] == 2
    assert pd.read_csv(run_dir / "metrics.tsv", sep="\t").epoch.tolist() == [1, 2]


@pytest.mark.parametrize("models", [SINGLE, PAIR], ids=["single", "pair"])
def test_compare_trains_and_tabulates_every_model(world, models, tmp_path, capsys):
    extra = ["--task", "diff", "--meta-b", world["b"].meta, "--npy-dir-b", world["b"].npy] if models == PAIR else []
    code, _, err = run(capsys, "compare", "-m", world["a"].meta, "-d", world["a"].npy, "-o", tmp_path / "cmp",
                       "--models", *models, "--folds", 1, "--epochs", 1, "-c", world["config"], "--num-workers", 0,
                       *extra)
    assert code == 0, err[-3000:]
    t = pd.read_csv(tmp_path / "cmp" / "comparison.tsv", sep="\t")
    assert t.model.tolist() == list(models) and (t.params > 0).all()
