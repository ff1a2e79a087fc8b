"""Will a model fit? Its size counted before it is built, against the memory this process may use.

Within :data:`chromoformer.config.LIMITS` a config can still describe a model larger than the machine (48 layers
of width 4096 at three resolutions: ~29 billion parameters). Built for real, its weights would be allocated and
written layer by layer until the kernel's OOM killer ended the process with no word from us. So the model is
first built on torch's ``meta`` device (shapes only, no memory), its parameters counted, and the bytes it needs
(float32 weights; for training also their gradients and Adam's two moments: 16 bytes a parameter) compared with
what is available: the host's ``MemAvailable`` and the address-space limit (``ulimit -v``), or a GPU's free memory.
Too much is one line saying how much, before anything is allocated. Activations are not counted (they grow with
the batch); an allocation that still fails is the command line's one "out of memory" line.
"""

from __future__ import annotations

import os
import resource

import torch

from chromoformer.errors import UsageError
from chromoformer.model import build_model
from chromoformer.spec import RunSpec

BYTES_PER_PARAMETER = {"inference": 4, "training": 16}  # float32 weights; + gradient + Adam's two moments


def parameter_count(spec: RunSpec) -> int:
    """Parameters of ``spec``'s model, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = build_model(spec.task, spec.config, spec.binsizes, spec.arch)
    return sum(p.numel() for p in model.parameters())


def available_bytes(device: torch.device) -> int | None:
    """Memory this process may still use on ``device`` (None where it cannot be told)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        try:
            with open(f"/proc/{os.getpid()}/statm") as f:
                used = int(f.read().split()[0]) * resource.getpagesize()
        except OSError:
            used = 0
        found.append(max(soft - used, 0))
    return min(found) if found else None


SMALL = 50_000_000  # parameters below which no machine that runs torch lacks the memory (counting is skipped)


def rough_count(spec: RunSpec) -> int:
    """An upper estimate of a Chromoformer-family model's parameters from its config alone (microseconds; the
    baselines' sizes do not grow with the config): the three transformer stacks at every resolution."""
    c = spec.config
    stacks = (c.embed, c.pairwise_interaction, c.regulation)
    per = sum(t.n_layers * (4 * t.d_model * max(t.d_model, c.embed.d_model) + 2 * t.d_model * t.d_ff) for t in stacks)
    return 2 * len(spec.binsizes) * per + c.d_head * c.embed.d_model * len(spec.binsizes) * 4


def check_model_fits(spec: RunSpec, device: torch.device, *, purpose: str, where: str) -> None:
    """Refuse, in one line naming ``where``, a model whose weights (and, for ``purpose="training"``, gradients and
    optimizer state) need more memory than ``device`` has available."""
    if rough_count(spec) < SMALL:
        return
    n = parameter_count(spec)
    need = n * BYTES_PER_PARAMETER[purpose]
    have = available_bytes(device)
    if have is not None and need > have:
        raise UsageError(f"{where}: the model ({spec.arch}, {n:,} parameters) needs about {need / 2**30:.1f} GiB "
                         f"for {purpose} before any data, but {have / 2**30:.1f} GiB are available on {device}; "
                         "lower the config's layer sizes (embed/pairwise_interaction/regulation: n_layers, d_model, "
                         "d_ff) or use a machine with more memory")
