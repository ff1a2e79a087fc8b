"""A failing loop over a multi-process DataLoader stops its workers at once (library callers)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from chromoformer import ChromoformerClassifier
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.engine.runtime import Runtime
from chromoformer.errors import DataError
from chromoformer.inference.predict import predict

FORKED_CHILD_WAITS = """
import multiprocessing, threading
LOCK = threading.Lock()
def take():
    with LOCK:
        pass
with LOCK:
    child = multiprocessing.get_context("fork").Process(target=take)
    child.start()
    child.join(timeout=2)
    print("stuck" if child.is_alive() else "ran")
    child.kill()
"""


@pytest.fixture
def nan_inputs(tmp_path):
    write_synthetic_dataset(tmp_path, n_genes=8, seed=0)
    row = pd.read_csv(tmp_path / "meta.csv").iloc[3]
    f = tmp_path / "npy" / f"{row.chrom}:{row.start - 20000}-{row.start + 20000}.npy"
    a = np.load(f)
    a[0, 5] = np.nan
    np.save(f, a)
    torch.manual_seed(0)
    torch.save({"net": ChromoformerClassifier().state_dict()}, tmp_path / "m.pt")
    return tmp_path


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_no_worker_outlives_a_failed_prediction(nan_inputs, workers):
    before = set(multiprocessing.active_children())
    with pytest.raises(DataError, match="NaN or infinite") as info:
        predict(meta=nan_inputs / "meta.csv", signal=nan_inputs / "npy", checkpoints=[nan_inputs / "m.pt"],
                runtime=Runtime(num_workers=workers, batch_size=2))  # the options object README documents
    # the error (and its traceback, which holds the loader iterator) is still alive here
    assert info.value is not None
    assert set(multiprocessing.active_children()) <= before


def test_no_worker_outlives_a_failed_training_epoch(nan_inputs, tmp_path):
    from chromoformer.spec import RunSpec
    from chromoformer.training.fit import train_fold

    meta = pd.read_csv(nan_inputs / "meta.csv")
    meta["split"] = [1, 2] * 4
    meta.to_csv(nan_inputs / "meta2.csv", index=False)
    before = set(multiprocessing.active_children())
    with pytest.raises(DataError, match="NaN or infinite"):
        # read straight from the npy files (no store build), so the NaN is met inside a loader worker
        train_fold(RunSpec().replace(num_epoch=1, bsz=2), meta=nan_inputs / "meta2.csv", signal=nan_inputs / "npy",
                   fold=1, output=tmp_path / "run", cache_store=False, runtime=Runtime(num_workers=1))
    assert set(multiprocessing.active_children()) <= before


def test_a_lock_held_by_the_parent_does_not_stall_workers():
    """Loader workers do not inherit the parent's locks (forkserver); with fork they would wait forever."""
    from chromoformer.data.loader import make_loader
    from locked_dataset import LOCK, LockedDataset

    with LOCK:  # held, as another thread of a training process may hold its lock, while workers start
        got = torch.cat(list(make_loader(LockedDataset(), batch_size=2, num_workers=2))).flatten().tolist()
        assert got == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    if "fork" in multiprocessing.get_all_start_methods():  # the control: a forked child copies the held lock
        # (in a fresh process: forking this one, which may run other libraries' threads, is what is unsafe)
        r = subprocess.run([sys.executable, "-c", FORKED_CHILD_WAITS], capture_output=True, text=True, timeout=60)
        assert r.stdout.split() == ["stuck"], r.stderr[-2000:]


def test_a_store_reaches_workers_memory_mapped_and_predicts_as_without_workers(tmp_path):
    import pickle

    from chromoformer.data.sources import build_store_from_npy
    from chromoformer.errors import StoreError

    meta, npy = write_synthetic_dataset(tmp_path, n_genes=8, seed=0)
    opened = build_store_from_npy(npy, tmp_path / "store")
    store = opened.path
    blob = pickle.dumps(opened)
    assert opened.sums.nbytes > 4 * len(blob)  # the sums are not in the pickle
    back = pickle.loads(blob)
    assert isinstance(back.sums, np.memmap) and np.array_equal(back.sums, opened.sums)
    torch.manual_seed(0)
    torch.save({"net": ChromoformerClassifier().state_dict()}, tmp_path / "m.pt")
    kw = dict(meta=meta, signal=store, checkpoints=[tmp_path / "m.pt"])
    pd.testing.assert_frame_equal(predict(**kw, runtime=Runtime(num_workers=2, batch_size=3)),
                                  predict(**kw, runtime=Runtime(num_workers=0, batch_size=3)))
    np.save(store / "sums.npy", np.zeros((3, 7), np.float32))  # replaced under a running job
    with pytest.raises(StoreError, match="sums.npy: expected float32"):
        pickle.loads(blob)


KILLED_MID_LOOP = """
import sys
sys.path.insert(0, {tests!r})
from locked_dataset import SlowDataset
from chromoformer.data.loader import make_loader
for batch in make_loader(SlowDataset({pids!r}), batch_size=1, num_workers=2):
    pass
"""


@pytest.mark.slow  # kills a process tree and waits for it to end: about 5 s
def test_workers_and_forkserver_end_when_the_main_process_is_killed(tmp_path):
    """kill -9 of a process mid-loop: its workers (children of the forkserver, not of it) exit, and the server."""
    import os
    import signal
    import time
    from pathlib import Path

    pids = tmp_path / "pids.txt"
    main = subprocess.Popen([sys.executable, "-c", KILLED_MID_LOOP.format(tests=str(Path(__file__).parent),
                                                                          pids=str(pids))])
    try:
        for _ in range(600):  # both workers serving
            if pids.is_file() and len(set(pids.read_text().split())) == 2:
                break
            time.sleep(0.05)
        workers = sorted(set(map(int, pids.read_text().split())))
        assert len(workers) == 2
        server = int(Path(f"/proc/{workers[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])  # their parent
        assert server != main.pid
        os.kill(main.pid, signal.SIGKILL)
        main.wait()
        left = [*workers, server]
        for _ in range(200):  # the watchdog polls once a second
            left = [p for p in left if _running(p)]
            if not left:
                break
            time.sleep(0.05)
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left, f"outlived the killed main process: {left} (workers {workers}, forkserver {server})"
    finally:
        main.kill()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
