"""A failing loop over a multi-process DataLoader stops its workers at once (library callers)."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pandas as pd
import pytest
import torch

from chromoformer import ChromoformerClassifier
from chromoformer.data.synthetic import write_synthetic_dataset
from chromoformer.errors import DataError
from chromoformer.predict import predict


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
                num_workers=workers, batch_size=2)  # the keywords README documents
    # the error (and its traceback, which holds the loader iterator) is still alive here
    assert info.value is not None
    assert set(multiprocessing.active_children()) <= before


def test_no_worker_outlives_a_failed_training_epoch(nan_inputs, tmp_path):
    from chromoformer.spec import RunSpec
    from chromoformer.train import train_fold

    meta = pd.read_csv(nan_inputs / "meta.csv")
    meta["split"] = [1, 2] * 4
    meta.to_csv(nan_inputs / "meta2.csv", index=False)
    before = set(multiprocessing.active_children())
    with pytest.raises(DataError, match="NaN or infinite"):
        # read straight from the npy files (no store build), so the NaN is met inside a loader worker
        train_fold(RunSpec().replace(num_epoch=1, bsz=2), meta=nan_inputs / "meta2.csv", signal=nan_inputs / "npy",
                   fold=1, output=tmp_path / "run", cache_store=False, num_workers=1)
    assert set(multiprocessing.active_children()) <= before
