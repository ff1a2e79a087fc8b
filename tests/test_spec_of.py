"""One checkpoint -> spec rule (engine.checkpoint.spec_of), used by load_model and by resume alike."""

from __future__ import annotations

import pytest

from chromoformer.config import ChromoformerConfig
from chromoformer.engine.checkpoint import SPEC_KEYS, save_checkpoint, spec_fields
from chromoformer.engine.loading import load_model, spec_of
from chromoformer.errors import CheckpointError
from chromoformer.model import build_model
from chromoformer.spec import RunSpec


def test_an_original_format_regressor_is_a_regressor_with_its_own_bin_sizes(tmp_path):
    """The original stores no task and no bin sizes: the head (1 value) and the embedding names tell them."""
    net = build_model("reg", ChromoformerConfig(), (500, 100)).state_dict()
    spec = spec_of({"net": net})
    assert (spec.task, spec.binsizes, spec.arch) == ("reg", (500, 100), "chromoformer")
    save_checkpoint({"net": net, "epoch": 3}, tmp_path / "orig.pt")
    assert load_model(tmp_path / "orig.pt").spec == spec


def test_our_checkpoint_gives_back_its_spec_and_its_fields_must_agree():
    spec = RunSpec(task="reg", binsizes=(2000, 100), init_seed=7).replace(num_epoch=3)
    ck = {"net": build_model("reg", spec.config, spec.binsizes).state_dict(), **spec_fields(spec)}
    assert set(spec_fields(spec)) == set(SPEC_KEYS)
    assert spec_of(ck) == spec
    with pytest.raises(CheckpointError, match="disagree"):
        spec_of({**ck, "binsizes": [2000, 500]})
