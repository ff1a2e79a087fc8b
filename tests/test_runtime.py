"""The one options object (engine/runtime.Runtime): every value checked once, at construction, in one line that
names the flag; the values it accepts reach the functions that take it."""

from __future__ import annotations

import pytest
import torch

from chromoformer.engine.runtime import MAX_BATCH, MAX_THREADS, Runtime
from chromoformer.errors import UsageError


@pytest.mark.parametrize("kw, message", [
    ({"num_workers": -1}, "num_workers must be an integer >= 0"),
    ({"num_workers": 1.5}, "num_workers must be an integer >= 0"),
    ({"threads": 0}, "--threads must be >= 1"),
    ({"threads": 100_000}, f"at most {MAX_THREADS}"),
    ({"batch_size": 0}, "--batch-size must be >= 1"),
    ({"batch_size": True}, "--batch-size must be >= 1"),
    ({"batch_size": MAX_BATCH + 1}, f"at most {MAX_BATCH}"),
    ({"device": "gpu7"}, "not a torch device"),
    ({"device": 3}, "--device must be a device name"),
])
def test_impossible_values_are_one_line_naming_the_flag(kw, message):
    with pytest.raises(UsageError, match=message) as e:
        Runtime(**kw)
    assert "\n" not in str(e.value)


def test_accepted_values_and_replace_checks_again():
    r = Runtime(device="cpu", num_workers=None, threads=2, batch_size=7)
    assert r.torch_device() == torch.device("cpu") and (r.num_workers, r.threads, r.batch_size) == (None, 2, 7)
    assert r.replace(batch_size=3).batch_size == 3
    with pytest.raises(UsageError, match="--threads"):
        r.replace(threads=-2)
    with pytest.raises(AttributeError):
        r.threads = 4  # frozen: what was checked stays as checked
