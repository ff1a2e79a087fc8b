"""Kill -9 at injected points, then run the same command again: every final output must be
present and bit-identical to an uninterrupted run, with no temporary or lock file left.

``CHROMOFORMER_FAULT=SITE:N`` makes the process SIGKILL itself the N-th time it reaches a
named point (chromoformer/faults.py). Points cover train (mid-epoch, each step of the
epoch commit, inside atomic writes, the automatic store build), build-store, preprocess
signals and the snakemake workflow. Each kills and reruns a whole command, so all are marked ``slow``: .ci/run
runs them after the default suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from chromoformer.config import load_config
from fault_inputs import TINY as TINY_BASE
from fault_inputs import tiny_data

# two pairwise and regulation layers, 3 epochs of several steps each
TINY = TINY_BASE | {"pairwise_interaction": {"n_layers": 2, "n_heads": 2, "d_model": 16, "d_ff": 16},
                    "regulation": {"n_layers": 2, "n_heads": 2, "d_model": 16, "d_ff": 16}, "bsz": 5, "num_epoch": 3}


def cli(*argv, fault: str | None = None, cwd: Path | None = None, check: bool = True, env: dict | None = None):
    e = {k: v for k, v in os.environ.items() if k != "CHROMOFORMER_FAULT"}
    e.update(env or {})
    e["PYTHONUNBUFFERED"] = "1"
    if fault:
        e["CHROMOFORMER_FAULT"] = fault
    r = subprocess.run([sys.executable, "-m", "chromoformer.cli", *map(str, argv)], capture_output=True, text=True,
                       env=e, cwd=cwd)
    if fault:
        assert r.returncode == -signal.SIGKILL, f"{fault} not reached (exit {r.returncode}): {r.stderr[-2000:]}"
    elif check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def leftovers(d: Path) -> list[str]:
    """Temporaries, staged checkpoints and lock files anywhere under ``d``."""
    bad = []
    for p in d.rglob("*"):
        n = p.name
        if n.endswith(".tmp") or ".tmp-" in n or ".old-" in n or ".epoch" in n or n.endswith(".lock") or n == ".lock":
            bad.append(str(p.relative_to(d)))
    return bad


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    return root, *tiny_data(root, n_genes=20, seed=11, config=TINY)


def train_args(data, out: Path):
    root, meta, npy, cfg = data
    return ["train", "-c", cfg, "-m", meta, "-d", npy, "--fold", "2", "-o", out, "--num-workers", "0",
            "--threads", "2", "--resume"]


@pytest.fixture(scope="module")
def reference_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    cli(*train_args(data, out))
    return out


def assert_same_run(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if p.is_file())
    assert sorted(p.name for p in b.iterdir() if p.is_file()) == names
    for ck in ("last.pt", "best.pt"):
        x, y = (torch.load(d / ck, weights_only=False) for d in (a, b))
        assert x["epoch"] == y["epoch"] and x["best_epoch"] == y["best_epoch"]
        assert all(torch.equal(x["net"][k], y["net"][k]) for k in x["net"]), f"{ck}: weights differ"
        for s in x["optimizer"]["state"]:
            for k, v in x["optimizer"]["state"][s].items():
                assert torch.equal(v, y["optimizer"]["state"][s][k]), f"{ck}: optimizer state differs"
        np.testing.assert_array_equal(x["val_score"], y["val_score"])
    ma, mb = (pd.read_csv(d / "metrics.tsv", sep="\t").drop(columns="seconds") for d in (a, b))
    pd.testing.assert_frame_equal(ma, mb)
    assert (a / "val_predictions.csv").read_text() == (b / "val_predictions.csv").read_text()
    assert (a / "config.yaml").read_text() == (b / "config.yaml").read_text()


TRAIN_POINTS = [
    "train.step:1",  # mid-epoch 1, nothing committed yet
    "io.before_fsync:1",  # writing config.yaml
    "train.best_staged:1",  # epoch 1's best staged, not committed
    "io.before_fsync:3",  # inside the write of epoch 1's last.pt (the commit point)
    "train.epoch_committed:1",  # committed, best.pt not yet renamed
    "train.best_promoted:1",  # best renamed, val_predictions not yet derived
    "train.val_predictions_written:1",  # metrics.tsv not yet rewritten
    "train.metrics_written:1",  # end of epoch 1
    "train.step:6",  # mid-epoch 2
    "train.epoch_committed:2",
    "io.before_fsync:6",  # a later atomic write (best, last, table: whichever comes sixth)
    "train.metrics_written:2",
    "train.epoch_committed:3",  # the last epoch committed: resume only repairs
    "store.region_written:5",  # the automatic binned store being built
    "store.before_rename:1",  # the store complete but not yet in place
]
FAST: set[str] = set()  # every kill point runs in the slow suite (.ci/run), which keeps the default run < 5 min


@pytest.mark.parametrize(
    "point", [pytest.param(p, marks=() if p in FAST else pytest.mark.slow) for p in TRAIN_POINTS]
)
def test_train_killed_then_resumed(point, data, reference_run, tmp_path):
    out = tmp_path / "run"
    cli(*train_args(data, out), fault=point)
    cli(*train_args(data, out))
    assert_same_run(reference_run, out)
    assert not leftovers(tmp_path), leftovers(tmp_path)


@pytest.mark.slow  # in the slow suite (.ci/run): keeps the default run under 5 minutes
def test_second_writer_is_refused_while_a_run_holds_the_directory(data, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "chromoformer.cli", *map(str, train_args(data, out)),
                              "--epochs", "10000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):  # until the first run holds its lock
            if (out / ".lock").is_file() and (out / ".lock").read_text():
                break
            time.sleep(0.05)
        r = cli(*train_args(data, out), check=False)
        assert r.returncode == 2
        errors = [ln for ln in r.stderr.splitlines() if "error:" in ln]
        assert len(errors) == 1 and f"is in use by process {first.pid}" in errors[0], r.stderr[-1000:]
        assert first.poll() is None  # the first run was still going
    finally:
        first.kill()
        first.wait()


# ---- build-store and preprocess signals ---------------------------------------------------


def _same_store(a: Path, b: Path) -> None:
    import json

    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma["sha256"]["sums.npy"] == mb["sha256"]["sums.npy"]
    assert ma["sha256"]["regions.tsv"] == mb["sha256"]["regions.tsv"]


@pytest.mark.slow  # the default run keeps one kill point (training's commit); the store's run here
@pytest.mark.parametrize("point", ["store.region_written:3", "store.before_rename:1"])
def test_build_store_killed_then_rerun(point, data, tmp_path):
    _, _, npy, _ = data
    cli("build-store", "-d", npy, "-o", tmp_path / "ref")
    cli("build-store", "-d", npy, "-o", tmp_path / "store", fault=point)
    assert not (tmp_path / "store").exists()  # never a half-built store under the final name
    cli("build-store", "-d", npy, "-o", tmp_path / "store")
    _same_store(tmp_path / "ref", tmp_path / "store")
    assert not leftovers(tmp_path), leftovers(tmp_path)


def _reads(data, path: Path) -> Path:
    _, meta, _, _ = data
    rng = np.random.default_rng(0)
    m = pd.read_csv(meta)
    lines = []
    for chrom, tss in zip(m.chrom, m.start, strict=True):
        for s in np.sort(rng.integers(tss - 30_000, tss + 30_000, 300)):
            lines.append(f"{chrom}\t{s}\t{s + 150}\tr\t0\t{'+' if s % 2 else '-'}\n")
    path.write_text("".join(lines))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("point", ["store.region_written:4", "store.before_rename:1"])
def test_preprocess_signals_killed_then_rerun(point, data, tmp_path):
    _, meta, _, _ = data
    reads = _reads(data, tmp_path / "reads.bed")
    args = ["preprocess", "signals", "--meta", meta, "--signal", f"H3K4me3={reads}", "--signal",
            f"H3K27ac={reads}", "--extend", "200"]
    cli(*args, "--out", tmp_path / "ref")
    cli(*args, "--out", tmp_path / "store", fault=point)
    assert not (tmp_path / "store").exists()
    cli(*args, "--out", tmp_path / "store")
    _same_store(tmp_path / "ref", tmp_path / "store")
    assert not leftovers(tmp_path), leftovers(tmp_path)


# ---- the snakemake workflow -----------------------------------------------------------------


def _sheet(tmp_path: Path) -> Path:
    from chromoformer.preprocess.simulate import CHROMHMM, SimConfig, simulate

    if shutil.which("snakemake") is None:
        pytest.skip("snakemake not installed")
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    p = simulate(tmp_path / "sim", SimConfig(span_mb=16))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(load_config().to_dict() | TINY | {"num_epoch": 2}))
    marks = ["H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac"]
    sheet = {"annotation": str(p["gtf"]), "chrom_sizes": str(p["sizes"]), "expression": str(p["expression"]),
             "samples": {"SIM": {"interactions": str(p["pchic"]), "expression_column": "SIM",
                                 "signals": {m: str(p[f"bam_{m}"]) for m in marks}}},
             "train": {"config": str(cfg), "extra": "--num-workers 0"}}
    path = tmp_path / "samples.yaml"
    path.write_text(yaml.safe_dump(sheet))
    return path


def _same_workflow(a: Path, b: Path) -> None:
    for f in (1, 2, 3, 4):
        x, y = (torch.load(d / "SIM" / "runs" / f"fold{f}" / "best.pt", weights_only=False) for d in (a, b))
        assert all(torch.equal(x["net"][k], y["net"][k]) for k in x["net"])
    pd.testing.assert_frame_equal(pd.read_csv(a / "SIM" / "evaluation" / "metrics.tsv", sep="\t"),
                                  pd.read_csv(b / "SIM" / "evaluation" / "metrics.tsv", sep="\t"))


@pytest.mark.slow
def test_workflow_killed_jobs_and_killed_snakemake_recover(tmp_path):
    sheet = _sheet(tmp_path)

    def wf(d: Path, **kw):
        return cli("workflow", "--config", sheet, "--directory", d, "--cores", "2", "--", "--quiet", **kw)

    wf(tmp_path / "ref")
    # 1. every training job SIGKILLed right after its first epoch commits: the workflow fails
    #    with one line saying what to do; running it again resumes the four folds
    r = cli("workflow", "--config", sheet, "--directory", tmp_path / "wf", "--cores", "2", "--", "--quiet",
            check=False, env={"CHROMOFORMER_FAULT": "train.epoch_committed:1"})
    assert r.returncode == 2 and "snakemake failed" in r.stderr and "run the same command again" in r.stderr
    wf(tmp_path / "wf")
    _same_workflow(tmp_path / "ref", tmp_path / "wf")
    # 2. snakemake itself SIGKILLed mid-run (its lock stays behind): the next run recovers alone
    d = tmp_path / "wf2"
    p = subprocess.Popen([sys.executable, "-m", "chromoformer.cli", "workflow", "--config", str(sheet),
                          "--directory", str(d), "--cores", "2", "--", "--quiet"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1200):
        if (d / "SIM" / "store").is_dir():
            break
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert (d / ".snakemake" / "locks").is_dir() and any((d / ".snakemake" / "locks").iterdir())
    wf(d)
    _same_workflow(tmp_path / "ref", d)
    assert not [x for x in leftovers(d) if not x.startswith(".snakemake")]


@pytest.mark.slow
def test_default_config_two_threads_resume_is_bit_identical_under_load(demo, tmp_path):
    """The README's claim at the default config and thread count, on the real demo genes,
    with the other core kept busy (CPU contention exposed a thread-timing dependence)."""
    d = pd.read_csv(demo / "demo_meta.csv")
    d["split"] = [i % 4 + 1 for i in range(len(d))]
    meta = tmp_path / "meta.csv"
    d.to_csv(meta, index=False)
    args = ["train", "-m", meta, "-d", demo / "demo_data", "--fold", "0", "--epochs", "3", "--threads", "2",
            "--num-workers", "0", "--resume"]
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cli(*args, "-o", tmp_path / "straight")
        cli(*args, "-o", tmp_path / "resumed", fault="train.epoch_committed:1")
        cli(*args, "-o", tmp_path / "resumed", fault="train.epoch_committed:2")
        cli(*args, "-o", tmp_path / "resumed")
    finally:
        burner.kill()
    assert_same_run(tmp_path / "straight", tmp_path / "resumed")
