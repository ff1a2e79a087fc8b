"""The speed levers kept for issue 22 change nothing a user can see: same maths, same files.

* fused AdamW (one kernel over all parameters) gives the for-loop AdamW's update (the one the
  original, and torch's CPU default, runs) to float64 rounding over 10 steps;
* the workflow's fold scheduling (``fold_threads``) only changes how many threads a fold gets.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch
import yaml

from chromoformer.errors import SampleSheetError
from chromoformer.model import build_model
from chromoformer.spec import RunSpec
from chromoformer.training import objective
from chromoformer.workflow.sheet import check_sheet_values, fold_threads


def _ten_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g, dtype=dtype)
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-15), (torch.float32, 1e-7)])
def test_fused_adamw_equals_the_for_loop_adamw(dtype, atol):
    ws = []
    for fused in (False, True):
        torch.manual_seed(0)
        m = build_model("clf").to(dtype)
        if fused:
            opt = objective.make_optimizer(m, RunSpec())
            assert type(opt) is torch.optim.AdamW and opt.defaults["fused"] is True
        else:
            opt = torch.optim.AdamW(m.parameters(), lr=RunSpec().config.lr, foreach=False)
        ws.append(_ten_steps(m, opt, dtype))
    diff = (ws[0] - ws[1]).abs().max().item()
    assert diff <= atol, diff
    torch.manual_seed(0)
    start = torch.cat([p.detach().flatten() for p in build_model("clf").to(dtype).parameters()])
    assert (ws[1] - start).abs().max() > 1e-5  # the steps moved the weights


def test_a_model_fused_adamw_cannot_take_gets_the_plain_one():
    m = build_model("clf")
    assert objective.fusable(m)
    m.steps = torch.nn.Parameter(torch.zeros(2, dtype=torch.long), requires_grad=False)  # not floating point
    assert not objective.fusable(m)
    opt = objective.make_optimizer(m, RunSpec())
    assert not opt.defaults["fused"]
    for p in m.parameters():
        if p.is_floating_point():
            p.grad = torch.ones_like(p)
    opt.step()  # and it steps


@pytest.mark.parametrize("train,cores,local,want", [
    ({}, 2, True, 1),                       # 2 cores, 4 folds: two 1-thread folds at a time
    ({}, 1, True, 1),
    ({}, 8, True, 2),                       # 4 folds of 2 threads at once
    ({}, 16, True, 4),
    ({"folds": [1, 2]}, 8, True, 4),         # 2 folds share 8 cores
    ({}, 2, False, 2),                      # a cluster job: its own node
    ({"threads": 3}, 2, True, 3),           # the sheet decides
])
def test_fold_threads(train, cores, local, want):
    assert fold_threads(train, cores, local) == want


def test_train_threads_below_one_is_a_sheet_error(tmp_path):
    sheet = {"annotation": "a.gtf", "expression": "e.tsv", "samples": {"S": {"interactions": "i", "signals": {}}},
             "marks": ["H3K4me3"], "train": {"threads": 0}}
    with pytest.raises(SampleSheetError, match="train.threads must be at least 1"):
        check_sheet_values(sheet, tmp_path / "s.yaml", check_files=False)
    sheet["train"]["threads"] = "two"
    with pytest.raises(SampleSheetError, match="'train.threads' must be int"):
        check_sheet_values(sheet, tmp_path / "s.yaml", check_files=False)


@pytest.mark.parametrize("train, message", [
    ({"epochs": 0}, "train.epochs must be 1..100000, got 0"),   # refused before any preprocessing runs
    ({"epochs": 10**9}, "train.epochs must be 1..100000"),
    ({"precision": "fp8"}, "train.precision must be one of fp32, bf16, fp16, got 'fp8'"),
])
def test_impossible_train_values_are_sheet_errors(tmp_path, train, message):
    sheet = {"annotation": "a.gtf", "expression": "e.tsv", "marks": ["H3K4me3"], "train": train,
             "samples": {"S": {"interactions": "i", "signals": {"H3K4me3": "k4.bam"}}}}
    with pytest.raises(SampleSheetError, match=message):
        check_sheet_values(sheet, tmp_path / "s.yaml", check_files=False)
    sheet["train"] = {"epochs": 3, "precision": "bf16"}
    check_sheet_values(sheet, tmp_path / "s.yaml", check_files=False)


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
@pytest.mark.slow  # a snakemake dry run (9 s): in the slow suite, which .ci/run runs
@pytest.mark.parametrize("cores,threads", [(2, 1), (8, 2)])
def test_workflow_gives_each_fold_cores_over_folds_threads(tmp_path, cores, threads):
    """A dry run of the real Snakefile: the train jobs get the threads the rule says."""
    for f in ("genes.gtf", "expr.tsv", "pchic.tsv", "k4.bam"):
        (tmp_path / f).write_text("x")
    sheet = {"annotation": "genes.gtf", "expression": "expr.tsv", "marks": ["H3K4me3"],
             "samples": {"S": {"interactions": "pchic.tsv", "signals": {"H3K4me3": "k4.bam"}}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sheet))
    r = subprocess.run(["chromoformer", "workflow", "--config", str(tmp_path / "s.yaml"), "--directory",
                        str(tmp_path / "wf"), "--cores", str(cores), "--", "--dry-run", "--printshellcmds"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout + r.stderr
    blocks = [b for b in out.split("\n\n") if "rule train:" in b]
    assert len(blocks) == 4, out[-3000:]
    # snakemake prints a job's threads only when there are more than one
    assert all((f"threads: {threads}" in b) if threads > 1 else ("threads:" not in b) for b in blocks), blocks[0]


def test_model_jobs_start_with_glibc_thresholds_unless_the_user_set_malloc():
    from chromoformer.workflow.jobs import GLIBC_THRESHOLDS, model_job_env

    env = model_job_env({"PATH": "/bin"})
    assert env == {"PATH": "/bin", **GLIBC_THRESHOLDS} and all(int(v) == 1 << 30 for v in GLIBC_THRESHOLDS.values())
    mine = {"PATH": "/bin", "MALLOC_ARENA_MAX": "2"}
    assert model_job_env(mine) == mine  # a user's own allocator settings are theirs


def test_every_train_and_predict_job_of_the_snakefile_is_a_model_job():
    import re

    from chromoformer.workflow import snakefile

    calls = re.findall(r'call\(\["([\w-]+)"(.*?)\)\n', snakefile().read_text(), flags=re.S)
    kinds = {(cmd, "model=True" in rest) for cmd, rest in calls}
    assert len(calls) == 12 and kinds == {("train", True), ("predict", True), ("preprocess", False),
                                          ("evaluate", False)}, kinds
    # predictions load in the job's own process (bench/predict_step.py)
    assert all(re.search(r'"--num-workers", 0\]', rest) for cmd, rest in calls if cmd == "predict")
