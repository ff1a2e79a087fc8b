"""A fold ensemble is predicted in one pass of the data path (each batch loaded once, run through every
checkpoint); each checkpoint's outputs must be those it gives alone, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chromoformer.data import ChromoformerDataset, NpyDirSource, read_metadata
from chromoformer.data.loader import make_loader
from chromoformer.engine.batches import ensemble_batches, predict_batches
from chromoformer.engine.checkpoint import save_checkpoint, spec_fields
from chromoformer.engine.runtime import Runtime
from chromoformer.inference.predict import ensemble_frame, load_ensemble, predict_genes
from chromoformer.model import build_model
from chromoformer.spec import RunSpec

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> list:
    d = tmp_path_factory.mktemp("ensemble")
    spec = RunSpec()
    paths = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        model = build_model(spec.task, spec.config, spec.binsizes, spec.arch)
        paths.append(d / f"fold{seed}.pt")
        save_checkpoint({"net": model.state_dict(), **spec_fields(spec)}, paths[-1])
    return paths


@pytest.mark.parametrize("batch_size,workers", [(5, 0), (7, 1)])
def test_one_pass_gives_each_checkpoints_own_outputs(synthetic, checkpoints, batch_size, workers):
    meta, npy = synthetic
    spec = RunSpec()
    genes = read_metadata(meta)
    ds = ChromoformerDataset(genes, NpyDirSource(npy), spec.config)
    models = [m.model for m in load_ensemble(checkpoints)]
    alone = [predict_batches(m, make_loader(ds, batch_size=batch_size), CPU) for m in models]
    outs, labels, ids = ensemble_batches(models, make_loader(ds, batch_size=batch_size, num_workers=workers), CPU)
    assert len(outs) == len(models) and ids == [g.gene_id for g in genes]
    for (want, want_labels, want_ids), got in zip(alone, outs, strict=True):
        assert got.shape == (len(genes), 2) and np.array_equal(got, want)
        assert np.array_equal(labels, want_labels) and ids == want_ids
    assert not np.array_equal(outs[0], outs[1])  # three different models: the test compares something

    frame = predict_genes(checkpoints, genes, NpyDirSource(npy),
                          runtime=Runtime(num_workers=workers, batch_size=batch_size))
    expected = ensemble_frame(ids, [a[0] for a in alone], "clf")
    assert frame.equals(expected)


def test_no_genes_gives_one_empty_output_per_model(checkpoints):
    models = [m.model for m in load_ensemble(checkpoints)]
    outs, labels, ids = ensemble_batches(models, [], CPU)
    assert [o.shape for o in outs] == [(0, 0)] * 3 and labels.shape == (0,) and ids == []
