"""Mixed precision (engine/precision, ``--precision``): every model trains a step in bf16 with float32 weights and
gradients; bf16 predictions stay close to fp32's, which stay the default and exact; the precision a run trained
in is stored and a resume in another is refused; fp16 is refused where there is no CUDA."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from chromoformer import ChromoformerConfig
from chromoformer.cli import main
from chromoformer.config import ARCHS, DIFF_ARCHS
from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.engine.batches import as_float, forward, output_table
from chromoformer.engine.checkpoint import read_checkpoint
from chromoformer.engine.precision import PRECISIONS, autocast, check_precision
from chromoformer.engine.runtime import Runtime
from chromoformer.errors import UsageError
from chromoformer.model import build_model
from chromoformer.spec import RunSpec
from chromoformer.training.objective import train_loss

CPU = torch.device("cpu")


def _batch(synthetic, n=6, offset=0, task="clf"):
    meta, npy = synthetic
    ds = ChromoformerDataset(read_metadata(meta)[offset:offset + n], NpyDirSource(npy), ChromoformerConfig(),
                             task=task)
    return next(iter(torch.utils.data.DataLoader(ds, batch_size=n)))


@pytest.mark.parametrize("arch", ARCHS)
def test_every_model_trains_a_step_in_bf16_with_float32_weights_and_gradients(synthetic, arch):
    task = "diff" if arch in DIFF_ARCHS else "clf"
    spec = RunSpec(task=task, arch=arch)
    torch.manual_seed(0)
    model = build_model(task, spec.config, spec.binsizes, arch)
    if task == "diff":
        a, b = _batch(synthetic, task="reg"), _batch(synthetic, offset=6, task="reg")
        batch = {"a": a, "b": b, "expr_a": a["label"], "expr_b": b["label"], "lfc": b["label"] - a["label"]}
    else:
        batch = _batch(synthetic)
    model.eval()  # no dropout: the two precisions see the same network
    with torch.no_grad():
        ref = output_table(forward(model, batch))
        with autocast("bf16", CPU):
            low = output_table(forward(model, batch))
    assert torch.allclose(low.float(), ref, atol=0.05 * (1 + ref.abs().max().item())), arch
    model.train()
    with autocast("bf16", CPU):
        out = forward(model, batch)
    loss = train_loss(as_float(out), batch, task)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_fp32_is_the_default_and_changes_nothing(synthetic):
    model = build_model("clf", ChromoformerConfig(), (2000, 500, 100), "chromoformer").eval()
    batch = _batch(synthetic)
    with torch.no_grad():
        plain = model(**batch)
        with autocast("fp32", CPU):
            same = model(**batch)
    assert torch.equal(plain, same) and Runtime().precision == "fp32"


@pytest.mark.parametrize("value, message", [("fp8", "one of fp32, bf16, fp16"), ("FP32", "one of"),
                                            (16, "one of")])
def test_unknown_precision_is_one_line(value, message):
    with pytest.raises(UsageError, match=message):
        Runtime(precision=value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed on CUDA")
def test_fp16_is_refused_without_cuda():
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        Runtime(precision="fp16", device="cpu")
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        check_precision("fp16", CPU)
    assert set(PRECISIONS) == {"fp32", "bf16", "fp16"}


def test_bf16_predictions_of_the_published_format_checkpoint_stay_close(demo, tmp_path):
    k = demo / "scrambled-clf-fold1.pt"
    args = ["predict", "-m", str(demo / "demo_meta.csv"), "-d", str(demo / "demo_data"), "-k", str(k),
            "--num-workers", "0"]
    main([*args, "-o", str(tmp_path / "fp32.csv")])
    main([*args, "-o", str(tmp_path / "bf16.csv"), "--precision", "bf16"])
    a, b = pd.read_csv(tmp_path / "fp32.csv"), pd.read_csv(tmp_path / "bf16.csv")
    assert list(a.gene_id) == list(b.gene_id)
    assert (a.prediction - b.prediction).abs().max() < 0.02
    assert a.prediction.corr(b.prediction, method="spearman") > 0.99
    assert not a.prediction.equals(b.prediction)  # bf16 did compute in bf16


def test_the_precision_is_stored_and_a_resume_in_another_is_refused(synthetic, tmp_path, capsys):
    meta, npy = synthetic
    run = tmp_path / "run"
    base = ["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(run), "--num-workers", "0",
            "--binsizes", "2000", "500"]
    main([*base, "--epochs", "1", "--precision", "bf16"])
    ck = read_checkpoint(run / "last.pt")
    assert ck["train_precision"] == "bf16"
    with pytest.raises(SystemExit) as e:
        main([*base, "--epochs", "2", "--resume"])
    assert e.value.code == 2
    assert "trained in bf16 and this one computes in fp32; give --precision bf16" in capsys.readouterr().err
    main([*base, "--epochs", "2", "--resume", "--precision", "bf16"])
    assert read_checkpoint(run / "last.pt")["epoch"] == 2
    main(["inspect", str(run / "last.pt")])
    assert "bf16" in capsys.readouterr().out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_trains_with_a_checkpointed_gradient_scaler_on_cuda(synthetic, tmp_path):
    meta, npy = synthetic
    base = ["train", "-m", str(meta), "-d", str(npy), "--fold", "1", "-o", str(tmp_path / "run"), "--num-workers",
            "0", "--binsizes", "2000", "500", "--device", "cuda", "--precision", "fp16"]
    main([*base, "--epochs", "1"])
    ck = read_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["train_precision"] == "fp16" and ck["grad_scaler"]["scale"] > 0
    main([*base, "--epochs", "2", "--resume"])
    assert read_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
