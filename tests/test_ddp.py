"""Data-parallel training under ``torchrun`` (gloo on CPU) follows the single-process run.

Two processes with the same global batch size must end with the same weights as one
process (within 1e-5; only the order of float sums differs), write each file once,
leave the 36 never-trained compatibility tensors untouched, and resume under DDP.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from chromoformer.engine.distributed import RankBatches, share
from chromoformer.engine.loading import spec_of
from chromoformer.model import build_model
from fault_inputs import TINY, tiny_data

TORCHRUN = shutil.which("torchrun")
pytestmark = pytest.mark.skipif(TORCHRUN is None, reason="torchrun (from torch) not on PATH")
# bsz 7: global batches of 7 split 4 + 3 between two ranks, so unequal shares are exercised;
# lr 1e-3 so that two epochs move the weights far more than the tolerance
CONFIG = {**TINY, "bsz": 7, "lr": 1e-3}


def _train(data: Path, out: Path, nproc: int, epochs: int, resume: bool = False, ok: bool = True) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = ["-m", str(data / "data" / "meta.csv"), "-d", str(data / "data" / "npy"), "-c", str(data / "config.yaml"),
            "--fold", "1", "-o", str(out), "--epochs", str(epochs), "--num-workers", "0", "--threads", "1",
            "--device", "cpu", *(["--resume"] if resume else [])]
    launcher = ([TORCHRUN, "--standalone", "--nproc_per_node", str(nproc)] if nproc > 1
                else [sys.executable])
    r = subprocess.run([*launcher, "-m", "chromoformer.train", *argv], env=env, capture_output=True, text=True,
                       timeout=300)
    assert (r.returncode == 0) == ok, r.stderr[-3000:]
    return r.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    tiny_data(root, 48, seed=0, config=CONFIG)
    _train(root, root / "single", 1, 2)
    _train(root, root / "ddp", 2, 2)
    return root


def _net(p: Path) -> dict[str, torch.Tensor]:
    return torch.load(p, weights_only=False)["net"]


@pytest.mark.slow  # torchrun runs (the module's `runs` fixture)
def test_two_processes_match_one(runs):
    a, b, init = _net(runs / "single" / "last.pt"), _net(runs / "ddp" / "last.pt"), _initial(runs)
    assert a.keys() == b.keys() == init.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    moved = max((a[k] - init[k]).abs().max().item() for k in a)
    assert diff < 1e-5, diff
    assert moved > 1e-3, moved  # training moved the weights far more than the tolerance


def _initial(runs: Path) -> dict[str, torch.Tensor]:
    spec = spec_of(torch.load(runs / "single" / "last.pt", weights_only=False))
    torch.manual_seed(spec.init_seed)
    return build_model(spec.task, spec.config, spec.binsizes, spec.arch).state_dict()


@pytest.mark.slow  # torchrun runs (the module's `runs` fixture)
def test_unused_parameters_stay_untouched(runs):
    """The compatibility-only tensors get no gradient, so no AdamW step (not even weight decay), as in one process."""
    init = _initial(runs)
    single, ddp = (torch.load(runs / r / "last.pt", weights_only=False) for r in ("single", "ddp"))
    assert ddp["optimizer"]["state"].keys() == single["optimizer"]["state"].keys()
    spec = spec_of(single)
    names = [n for n, _ in build_model(spec.task, spec.config, spec.binsizes, spec.arch).named_parameters()]
    unused = [n for i, n in enumerate(names) if i not in single["optimizer"]["state"]]
    # docs/original.md §1: w_bias, gamma_f, pairwise_interaction.*.ln (36 tensors at the default sizes, fewer here)
    assert unused and all(re.search(r"w_bias|gamma_f|^pairwise_interaction\.\d+\.ln\.", n) for n in unused), unused
    for k in unused:
        assert torch.equal(ddp["net"][k], init[k]), k


@pytest.mark.slow  # torchrun runs (the module's `runs` fixture)
def test_files_written_once_by_rank_zero(runs):
    for run in ("single", "ddp"):
        m = pd.read_csv(runs / run / "metrics.tsv", sep="\t")
        assert m.epoch.tolist() == [1, 2]
        log = (runs / run / "train.log").read_text()
        assert log.count("epoch 2/2") == 1
    s, d = (pd.read_csv(runs / r / "val_predictions.csv") for r in ("single", "ddp"))
    assert s.gene_id.tolist() == d.gene_id.tolist()  # every validation gene once, in order
    np.testing.assert_allclose(s.score, d.score, atol=1e-5)
    assert sorted(p.name for p in (runs / "ddp").iterdir()) == sorted(p.name for p in (runs / "single").iterdir())


@pytest.mark.slow
def test_resume_under_ddp(runs, tmp_path):
    shutil.copytree(runs / "data", tmp_path / "data")
    shutil.copy(runs / "config.yaml", tmp_path / "config.yaml")
    _train(tmp_path, tmp_path / "run", 2, 1)
    err = _train(tmp_path, tmp_path / "run", 2, 2, resume=True)
    assert "resumed from" in err
    a, b = _net(runs / "single" / "last.pt"), _net(tmp_path / "run" / "last.pt")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_rank_batches_partition_the_single_process_batches():
    order = list(np.random.default_rng(0).permutation(23))
    one = list(RankBatches(order, 7, drop_last=True))
    assert one == [order[i : i + 7] for i in (0, 7, 14)]  # what DataLoader(sampler=order, batch_size=7) gives
    for world in (2, 3):
        per_rank = [list(RankBatches(order, 7, True, r, world)) for r in range(world)]
        for i, batch in enumerate(one):
            assert sum((p[i] for p in per_rank), []) == batch
    assert [share(10, r, 3) for r in range(3)] == [slice(0, 4), slice(4, 7), slice(7, 10)]


@pytest.mark.slow  # torchrun runs (the module's `runs` fixture)
def test_an_error_on_rank_zero_stops_every_rank(runs, tmp_path):
    """Rank 0 alone checks the inputs: its error must reach the other rank (no hang: the 300 s timeout),
    as one line each."""
    shutil.copytree(runs / "data", tmp_path / "data")
    shutil.copy(runs / "config.yaml", tmp_path / "config.yaml")
    victim = sorted((tmp_path / "data" / "npy").glob("*.npy"))[3]
    victim.write_bytes(b"not an npy file")
    err = _train(tmp_path, tmp_path / "run", 2, 1, ok=False)
    lines = [x for x in err.splitlines() if x.startswith("chromoformer: error:")]
    # rank 0's line; rank 1's ("rank 0 failed: ...") only if torchrun has not stopped it first
    assert 1 <= len(lines) <= 2 and all(victim.name in x for x in lines), err[-2000:]
    assert [x for x in lines if "rank 0 failed" not in x], lines
    # torchrun adds its own report (ChildFailedError); no frame of ours is printed
    assert "site-packages/chromoformer" not in err and "src/chromoformer" not in err, err[-2000:]
    assert not (tmp_path / "run").exists()
