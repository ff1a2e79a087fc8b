"""Training one fold under SLURM (docs/cluster/train-fold.sbatch) and across two torchrun "nodes".

The reference is the plain ``torchrun --standalone --nproc_per_node 2`` run of the same fold: the
sbatch job (2 tasks on the test cluster's one node, one agent each, gloo on CPU), its cancel and
resubmission, and two agents meeting in a c10d rendezvous on localhost must all end with its weights
within the DDP tolerance of tests/test_ddp.py (1e-5). Losing an agent, or a peer that goes silent,
ends the other with one clear line, not a hang.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from fault_inputs import TINY, tiny_data
from slurm_cluster import DOCS, wait_until

TORCHRUN = shutil.which("torchrun")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(TORCHRUN is None, reason="torchrun (from torch) not on PATH")]
CONFIG = {**TINY, "bsz": 7, "lr": 1e-3}
EPOCHS = 3
LOST = "lost contact with the other training processes"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("slurm-train")
    tiny_data(root, 800, seed=0, config=CONFIG)  # ~3 s an epoch at 2 processes: time to cancel mid-epoch
    return root


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path), **extra}


def _train_args(data: Path, out: Path, epochs: int = EPOCHS) -> list[str]:
    return ["-m", "chromoformer.train", "-m", str(data / "data" / "meta.csv"), "-d", str(data / "data" / "npy"),
            "-c", str(data / "config.yaml"), "--fold", "1", "-o", str(out), "--epochs", str(epochs),
            "--num-workers", "0", "--device", "cpu", "--threads", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def reference(data) -> dict[str, torch.Tensor]:
    out = data / "standalone"
    r = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node", "2", *_train_args(data, out)], env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return _net(out)


def _net(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=False)["net"]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"max |weight difference| from the reference: {diff:.2e}")  # shown with -rP
    assert diff < 1e-5, diff


def _sbatch(slurm, data: Path, out: Path, *flags: str) -> list[str]:
    return ["sbatch", "--parsable", "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1",
            f"--output={out.parent / (out.name + '-%j.log')}", *flags, str(DOCS / "train-fold.sbatch"),
            str(data / "data" / "meta.csv"), str(data / "data" / "npy"), "1", str(out), "-c", str(data / "config.yaml"),
            "--epochs", str(EPOCHS), "--num-workers", "0", "--device", "cpu"]


def test_sbatch_job_cancelled_and_resubmitted_trains_like_two_local_processes(slurm, data, reference):
    """The job is cancelled once epoch 1 is committed; the same sbatch line, submitted again, resumes
    from it, and the fold ends with the weights of the uninterrupted 2-process run."""
    out = data / "sbatch"
    job = slurm.run(*_sbatch(slurm, data, out)).strip()
    metrics = out / "metrics.tsv"
    wait_until(lambda: metrics.exists() and len(pd.read_csv(metrics, sep="\t")) >= 1, 300, "epoch 1 committed",
               every=0.1)
    slurm.run("scancel", job)
    assert slurm.finished(job, 60).startswith("CANCELLED")
    done = len(pd.read_csv(metrics, sep="\t"))
    assert done < EPOCHS, "the job ended before it was cancelled: nothing was tested"
    again = slurm.run(*_sbatch(slurm, data, out)).strip()
    assert slurm.finished(again) == "COMPLETED"
    log = (out / "train.log").read_text()
    assert "2 process(es)" in log and f"resumed from {out / 'last.pt'} at epoch {done}" in log, log[-2000:]
    assert log.count(f"epoch {EPOCHS}/{EPOCHS}") == 1  # rank 0 alone writes
    assert pd.read_csv(metrics, sep="\t").epoch.tolist() == list(range(1, EPOCHS + 1))
    assert_close(reference, _net(out))


def _agents(data: Path, out: Path, epochs: int, logs: Path, **env: str) -> list[subprocess.Popen]:
    """Two torchrun agents, one process each, meeting in a c10d rendezvous on localhost (the first hosts it)."""
    port, agents = _free_port(), []
    for i in range(2):
        argv = [TORCHRUN, "--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d",
                "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", f"test-{port}", *_train_args(data, out, epochs)]
        agents.append(subprocess.Popen(argv, env=_env(**env), stdout=open(logs / f"agent{i}.log", "w"),  # noqa: SIM115
                                       stderr=subprocess.STDOUT, start_new_session=True))
        time.sleep(1.0 if i == 0 else 0)
    return agents


def _kill_tree(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """An agent and its training process, as a node that dies takes them."""
    kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
    for k in kids:
        os.kill(int(k), sig)
    if sig == signal.SIGKILL:
        p.kill()


def test_two_nodes_train_like_one(data, reference, tmp_path):
    out = data / "two-nodes"
    agents = _agents(data, out, EPOCHS, tmp_path)
    assert [a.wait(timeout=300) for a in agents] == [0, 0], (tmp_path / "agent0.log").read_text()[-3000:]
    assert_close(reference, _net(out))


@pytest.mark.parametrize("how", ["killed", "silent"])
def test_losing_an_agent_ends_the_other_with_one_line(data, tmp_path, how):
    """``killed``: the agent and its process die (their connections close). ``silent``: the process
    stops answering (SIGSTOP, as behind a dead network link); CHROMOFORMER_COLLECTIVE_TIMEOUT bounds the wait."""
    out = tmp_path / "run"
    agents = _agents(data, out, 200, tmp_path, CHROMOFORMER_COLLECTIVE_TIMEOUT="10")
    try:
        wait_until(lambda: (out / "metrics.tsv").exists(), 300, "epoch 1")
        _kill_tree(agents[1], signal.SIGKILL if how == "killed" else signal.SIGSTOP)
        t0 = time.monotonic()
        rc = agents[0].wait(timeout=120)
        waited = time.monotonic() - t0
    finally:
        for a in agents:
            if a.poll() is None:
                _kill_tree(a)
    text = (tmp_path / "agent0.log").read_text()
    assert rc != 0
    lines = [x for x in text.splitlines() if x.startswith("chromoformer: error:")]
    assert len(lines) == 1 and LOST in lines[0] and "--resume" in lines[0], text[-3000:]
    assert "src/chromoformer" not in text and "site-packages/chromoformer" not in text  # no frame of ours
    assert waited < (60 if how == "killed" else 10 + 60), waited
