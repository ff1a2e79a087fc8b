"""The workflow on a real SLURM (docs/cluster/test-cluster.sh) through snakemake's SLURM executor, with
the documented profile (docs/cluster/slurm-profile.yaml, verbatim but for partition and account).

Every step must be its own SLURM job, COMPLETED in sacct, and the outputs must equal a local
``--cores 2`` run of the same sheet byte for byte (the sheet pins ``train.threads: 2``: results are
bit-identical at one training thread count, not across counts). Then the failures a cluster adds: a job
cancelled with the snakemake process killed, a job on a node that goes down, a job that fails.
Only the speed flags are added on the command line: ``--max-threads 2`` (the test node has 2 CPUs,
the profile asks 8 for training) and a first status check after 6 s instead of 40.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from chromoformer.preprocess.simulate import CHROMHMM, SimConfig, simulate
from slurm_cluster import Cluster, profile, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")]
MARKS = ["H3K4me3", "H3K27ac"]
SPEED = ["--max-threads", "2", "--slurm-init-seconds-before-status-checks", "6"]
NODE = socket.gethostname().split(".")[0]
# genes, metadata, one signals job per mark, the merge, 2 folds, evaluate, predict
RULES = {"genes": 1, "metadata": 1, "signals_mark": 2, "signals": 1, "train": 2, "evaluate": 1, "predict": 1}


@pytest.fixture(scope="module")
def sheet(tmp_path_factory) -> Path:
    pytest.importorskip("snakemake_executor_plugin_slurm")
    if not (CHROMHMM / "SAMPLEDATA_HG18").is_dir():
        pytest.skip("Debian chromhmm-example not installed (apt-get install chromhmm-example)")
    root = tmp_path_factory.mktemp("slurm-wf")
    p = simulate(root / "sim", SimConfig(span_mb=16))
    cfg = root / "samples.yaml"
    cfg.write_text(yaml.safe_dump({
        "annotation": str(p["gtf"]), "chrom_sizes": str(p["sizes"]), "expression": str(p["expression"]),
        "marks": MARKS, "samples": {"SIM": {"interactions": str(p["pchic"]),
                                            "signals": {m: str(p[f"bam_{m}"]) for m in MARKS}}},
        # train.threads pinned: locally the sheet would otherwise train two 1-thread folds side by side
        # and SLURM one 2-thread fold a job, and the thread count decides the last bits of the weights
        "train": {"epochs": 1, "folds": [1, 2], "extra": "--num-workers 0", "threads": 2}}))
    return cfg


def _cmd(cfg: Path, wd: Path, *extra: str) -> list[str]:
    return ["chromoformer", "workflow", "--config", str(cfg), "--directory", str(wd), *extra]


def _on_slurm(cluster: Cluster, cfg: Path, wd: Path) -> list[str]:
    return _cmd(cfg, wd, "--", "--profile", str(profile(cfg.parent)), *SPEED)


@pytest.fixture(scope="module")
def local_run(sheet):
    """The local run, started at once: it runs while the SLURM run's jobs wait on the scheduler."""
    wd = sheet.parent / "local"
    p = subprocess.Popen(_cmd(sheet, wd, "--cores", "2", "--", "--quiet"), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    yield wd, p
    if p.poll() is None:
        p.kill()
        p.communicate()


@pytest.fixture(scope="module")
def local(local_run) -> Path:
    wd, p = local_run
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, out[-3000:]
    return wd


@pytest.fixture(scope="module")
def on_slurm(slurm, sheet, local_run) -> Path:
    wd = sheet.parent / "slurm"
    r = subprocess.run(_on_slurm(slurm, sheet, wd), env=slurm.env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return wd


def _rule(comment: str) -> str:
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def assert_same_outputs(a: Path, b: Path) -> None:
    """The files a user keeps: byte-identical; checkpoints: the same tensors."""
    rel = ["genes.tsv", "genes.dropped.tsv", "SIM/meta.csv", "SIM/predictions.csv", "SIM/evaluation/metrics.tsv",
           "SIM/evaluation/oof_predictions.csv", *(f"SIM/runs/fold{f}/val_predictions.csv" for f in (1, 2))]
    rel += sorted(str(p.relative_to(a)) for p in (a / "SIM" / "store").iterdir())
    for r in rel:
        assert (a / r).read_bytes() == (b / r).read_bytes(), r
    for f in (1, 2):
        for name in ("best.pt", "last.pt"):
            x, y = (torch.load(d / "SIM" / "runs" / f"fold{f}" / name, weights_only=False)["net"] for d in (a, b))
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), (f, name)


def test_every_step_is_a_completed_slurm_job(slurm, on_slurm):
    rows = slurm.jobs(on_slurm)
    assert all(r["state"] == "COMPLETED" for r in rows), rows
    assert len({r["comment"] for r in rows}) == len(rows)  # one job per rule instance
    counts: dict[str, int] = {}
    for r in rows:
        counts[_rule(r["comment"])] = counts.get(_rule(r["comment"]), 0) + 1
    assert counts == RULES


def test_outputs_equal_the_local_run(local, on_slurm):
    assert_same_outputs(local, on_slurm)


def _without_fold2(src: Path, dst: Path) -> Path:
    """A copy of a finished work directory whose fold 2 (and what follows from it) is to be made again."""
    shutil.copytree(src, dst, symlinks=True)
    shutil.rmtree(dst / "SIM" / "runs" / "fold2")
    for f in ("SIM/evaluation", "SIM/predictions.csv"):
        p = dst / f
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return dst


def _running_train(cluster: Cluster) -> str:
    jobs = wait_until(lambda: [j for j in cluster.queue() if _rule(j[1]) == "train" and j[2] == "RUNNING"], 300,
                      "a running training job")
    return jobs[0][0]


def test_cancel_kill_and_node_failure_recover(slurm, sheet, local, on_slurm):
    """Fold 2 is made again, and everything that can go wrong with its training job does, in turn:
    the job is cancelled (``scancel``) and snakemake killed with no chance to clean up; the same command
    run again submits it again; the node then goes down under it (NODE_FAIL), the profile's ``retries``
    resubmit it, it waits for the node to come back, and the run ends with the local run's outputs."""
    wd = _without_fold2(on_slurm, sheet.parent / "recover")
    cmd = _on_slurm(slurm, sheet, wd)
    p = subprocess.Popen(cmd, env=slurm.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    job = _running_train(slurm)
    slurm.run("scancel", job)
    os.killpg(p.pid, signal.SIGKILL)  # the wrapper and snakemake
    p.wait()
    wait_until(lambda: job not in [j[0] for j in slurm.queue()], 60, f"job {job} to leave the queue")

    p = subprocess.Popen(cmd, env=slurm.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        again = _running_train(slurm)
        slurm.run("scontrol", "update", f"nodename={NODE}", "state=down", "reason=chromoformer-test")
        wait_until(lambda: [j for j in slurm.queue() if _rule(j[1]) == "train" and j[0] != again], 120,
                   "the training job's resubmission")
    finally:
        slurm.run("scontrol", "update", f"nodename={NODE}", "state=resume", check=False)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out[-4000:]
    assert_same_outputs(local, wd)
    train = [r["state"] for r in slurm.jobs(wd) if r["comment"] == "rule_train_wildcards_SIM_2"]
    assert train in (["CANCELLED", "NODE_FAIL", "COMPLETED"], ["CANCELLED by 0", "NODE_FAIL", "COMPLETED"]), train


def test_a_failing_job_names_rule_sample_and_slurm_log(slurm, sheet, on_slurm):
    wd = sheet.parent / "fail"
    shutil.copytree(on_slurm, wd, symlinks=True)
    bad = sheet.parent / "bad.bam"
    bad.write_bytes(b"this is not a BAM file\n" * 10)
    broken = yaml.safe_load(sheet.read_text())
    broken["samples"]["SIM"]["signals"]["H3K27ac"] = str(bad)
    cfg = sheet.parent / "broken.yaml"
    cfg.write_text(yaml.safe_dump(broken))
    r = subprocess.run(_on_slurm(slurm, cfg, wd), env=slurm.env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    lines = [x for x in r.stderr.splitlines() if x.startswith("chromoformer: error:")]
    assert len(lines) == 1, r.stderr[-3000:]
    line = lines[0]
    assert "step signals_mark (sample=SIM, mark=H3K27ac) failed" in line and "bad.bam" in line, line
    slurm_log = line.split("scheduler log ")[1].split(";")[0]
    assert "slurm_logs" in slurm_log and Path(slurm_log).is_file(), line
    assert str(wd / "logs" / "SIM" / "signals-H3K27ac.log") in line
    failed = [x["state"] for x in slurm.jobs(wd) if x["comment"] == "rule_signals_mark_wildcards_SIM_H3K27ac"]
    assert failed == ["FAILED", "FAILED"], failed  # the first try and the profile's one retry
