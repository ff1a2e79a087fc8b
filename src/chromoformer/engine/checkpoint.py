"""Checkpoint I/O: safe loading of the original published format, legacy key names, atomic saves.

The original checkpoints (SPEC §2) are dicts with ``net``, ``optimizer``, ``epoch``,
``last_val_loss``, ``last_val_auc``/``last_val_r2``, ``val_score`` and ``val_label``;
the last two are numpy arrays. They are loaded with ``torch.load(weights_only=True)``
and an allow-list of exactly the numpy types needed to rebuild plain arrays, so a
checkpoint carrying any other pickled object is refused rather than executed.
Checkpoints written here add ``config``, ``binsizes``, ``task`` and the scheduler state.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chromoformer.config import (
    ARCHS,
    DEFAULT_BINSIZES,
    ChromoformerConfig,
    ConfigError,
    default_marks,
)
from chromoformer.engine.stored import StoredMetrics, stored_metrics
from chromoformer.errors import CheckpointError
from chromoformer.files.io import atomic_write, not_an_input, require_file
from chromoformer.model import build_model
from chromoformer.spec import PROVENANCE_KEYS, SPEC_KEYS, TASKS, RunSpec


def _numpy_safe_globals() -> list:
    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    out: list = [
        np.ndarray,
        np.dtype,
        reconstruct,
        scalar,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (scalar, "numpy.core.multiarray.scalar"),
    ]
    for t in (np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64):
        out.append(type(np.dtype(t)))
    return out


STORED_KEYS = (*SPEC_KEYS, *PROVENANCE_KEYS)  # what a weights-only export keeps beside the weights


def _read_safetensors(path: Path) -> dict[str, Any]:
    """A weights-only export (:func:`export_weights`): the state dict plus the run spec in its metadata."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors needs the safetensors package "
                              "(pip install safetensors)") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            net = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        spec = {k: json.loads(v) for k, v in meta.items() if k in STORED_KEYS}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({' '.join(str(e).split())[:200]})") from None
    return {"net": net, **spec}


def export_weights(checkpoint: str | Path, out: str | Path) -> Path:
    """Write a checkpoint's weights (no optimizer state) and run spec as ``.safetensors`` for sharing."""
    try:
        from safetensors.torch import save
    except ImportError:
        raise CheckpointError("exporting weights needs the safetensors package (pip install safetensors)") from None
    not_an_input(out, [checkpoint])
    lm = load_model(checkpoint)
    ck = lm.checkpoint
    meta = {**lm.spec.checkpoint_fields(), **{k: ck[k] for k in PROVENANCE_KEYS if ck.get(k) is not None}}
    state = {k: v.detach().contiguous() for k, v in lm.model.state_dict().items()}
    data = save(state, metadata={k: json.dumps(v) for k, v in meta.items()})
    atomic_write(out, lambda f: f.write(data), size_hint=len(data))
    return Path(out)


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True`` plus the numpy allow-list; errors name the file.

    A ``.safetensors`` file written by :func:`export_weights` is read too.
    """
    path = require_file(path, "checkpoint", CheckpointError)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    if path.suffix == ".safetensors":
        obj = _read_safetensors(path)
        return _checked(obj, path)
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL (\S+)", str(e))
        if m is None:
            raise CheckpointError(f"{path}: not a torch checkpoint (unrecognised or corrupt content)") from None
        raise CheckpointError(
            f"{path}: refused to load: it contains pickled global {m.group(1)}, not only tensors, numbers and "
            "numpy arrays"
        ) from None
    except Exception as e:  # noqa: BLE001 - the unpickler raises anything (IndexError on text, KeyError...)
        first = (str(e).splitlines() or ["truncated"])[0] or "truncated"
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {first})") from None
    if isinstance(obj, dict) and "net" not in obj and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        obj = {"net": obj}  # a bare state_dict
    return _checked(obj, path)


def _checked(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict) or not isinstance(obj.get("net"), dict):
        raise CheckpointError(f"{path}: expected a dict with a 'net' state_dict")
    for k, v in obj["net"].items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{path}: net[{k!r}] is a {type(v).__name__}, not a tensor")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: weight {k} contains NaN or infinite values (diverged or corrupt "
                                  "training); use an earlier checkpoint")
    return obj


_RENAMES = [  # legacy prefix -> current prefix (SPEC §2)
    (re.compile(r"^module\."), ""),
    (re.compile(r"^embed(\d+)_a\."), r"embed.\1."),
    (re.compile(r"^embed(\d+)_b\."), r"pairwise_interaction.\1."),
    (re.compile(r"^transformer(\d+)\."), r"regulation.\1.transformer."),
    (re.compile(r"^embed(\d+)\."), r"embed.\1."),
    (re.compile(r"^pw_int(\d+)\."), r"pairwise_interaction.\1."),
    (re.compile(r"^reg(\d+)\."), r"regulation.\1."),
    (re.compile(r"\.lin_proj_c\."), ".lin_proj_pcre."),
]


def canonical_key(key: str) -> str:
    """Map v1.0.0 (``embed2000``, ``pw_int2000``, ``reg2000``) and research-code names
    (``embed2000_a``, ``embed2000_b``, ``transformer2000``, ``lin_proj_c``) to current names."""
    for pat, rep in _RENAMES:
        key = pat.sub(rep, key)
    return key


def canonical_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        ck = canonical_key(k)
        if ck in out:
            raise CheckpointError(f"state_dict keys {k!r} and another both map to {ck!r}")
        out[ck] = v
    return out


def infer_task(sd: dict[str, torch.Tensor]) -> str:
    w = sd.get("fc_head.2.weight")
    if w is None:
        raise CheckpointError("state_dict has no fc_head.2.weight; cannot tell classifier from regressor")
    return {2: "clf", 1: "reg"}.get(w.shape[0]) or _bad_head(w.shape)


def _bad_head(shape: tuple) -> str:
    raise CheckpointError(f"fc_head.2.weight has shape {tuple(shape)}; expected 2 (clf) or 1 (reg) rows")


def infer_binsizes(sd: dict[str, torch.Tensor]) -> tuple[int, ...]:
    seen: list[int] = []
    for k in sd:
        m = re.match(r"^embed\.(\d+)\.", k)
        if m and int(m.group(1)) not in seen:
            seen.append(int(m.group(1)))
    return tuple(seen) or DEFAULT_BINSIZES


WEIGHT_KEYS = ("net", "optimizer")  # the entries a LoadedModel does not keep (see its docstring)


@dataclass
class LoadedModel:
    """A checkpoint's model (eval mode), its run spec, the raw checkpoint dict and its stored
    numbers (checked: :mod:`chromoformer.engine.stored`).

    ``checkpoint`` holds every entry of the file but the weights and the optimizer state
    (:data:`WEIGHT_KEYS`): the weights live on in ``model``, and keeping a second copy of them and
    the optimizer's two moments would triple the memory of every loaded checkpoint (a 4-fold
    ensemble held 256 MiB more for nothing). Resuming reads the file itself (:func:`read_checkpoint`).
    """

    model: torch.nn.Module
    spec: RunSpec
    checkpoint: dict[str, Any]
    path: Path
    stored: StoredMetrics

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def config(self) -> ChromoformerConfig:
        return self.spec.config

    @property
    def binsizes(self) -> tuple[int, ...]:
        return self.spec.binsizes

    @property
    def arch(self) -> str:
        return self.spec.arch

    @property
    def marks(self) -> tuple[str, ...]:
        return self.spec.marks


def _stored(ck: dict, key: str, ok, what: str, path: Path):
    v = ck.get(key)
    if v is not None and not ok(v):
        raise CheckpointError(f"{path}: stored {key} {v!r} is not {what}")
    return v


def spec_of(ck: dict[str, Any], path: str | Path = "<checkpoint>", config: ChromoformerConfig | None = None
            ) -> RunSpec:
    """The run spec of a checkpoint dict: the one rule, for ours and the original format alike.

    Ours store ``spec`` (and its fields again under the older keys, which must agree with it). The original
    format stores none: the task is told by the head (2 logits or 1 value), the bin sizes by the embedding
    names, the config and marks are the defaults it was trained with. ``config`` (a user's ``--config``)
    replaces the stored config.
    """
    return _spec_of(ck, canonical_state_dict(ck["net"]), Path(path), config)


def _spec_of(ck: dict[str, Any], sd: dict[str, torch.Tensor], path: Path, config: ChromoformerConfig | None
             ) -> RunSpec:
    task = _stored(ck, "task", lambda v: v in TASKS, "'clf' or 'reg'", path) or infer_task(sd)
    binsizes = _stored(ck, "binsizes", lambda v: isinstance(v, (list, tuple)) and v and all(
        isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in v), "a list of positive bin sizes", path)
    binsizes = tuple(binsizes or infer_binsizes(sd))
    arch = _stored(ck, "arch", lambda v: v in ARCHS, f"one of {', '.join(ARCHS)}", path) or "chromoformer"
    try:
        own = ChromoformerConfig.from_dict(ck["config"], f"{path}[config]") if "config" in ck else None
        config = config or own or ChromoformerConfig()
        spec = RunSpec(config, binsizes, tuple(ck.get("marks") or default_marks(config.n_feats)), task, arch)
        if "spec" in ck:  # written by us: the older keys must say the same (the user's --config may differ)
            stored = RunSpec.from_dict(ck["spec"], f"{path}[spec]")
            spec = spec.replace(init_seed=stored.init_seed)
            differ = spec.replace(config=own or stored.config).differences(stored)
            if differ:
                raise CheckpointError(f"{path}: its spec and its own {', '.join(differ)} disagree (the file was "
                                      "edited or is corrupt)")
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    return spec


def load_model(
    path: str | Path, config: ChromoformerConfig | None = None, map_location: str | torch.device = "cpu"
) -> LoadedModel:
    """Build the right model for a checkpoint (ours or original) and load it strictly, in eval mode."""
    path = Path(path)
    ck = read_checkpoint(path, map_location)
    sd = canonical_state_dict(ck["net"])
    spec = _spec_of(ck, sd, path, config)
    task, binsizes = spec.task, spec.binsizes
    try:
        model = build_model(task, spec.config, binsizes, spec.arch)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    _check_dtypes(sd, model.state_dict(), path)
    stored = stored_metrics(ck, path, task)  # the numbers beside the weights are checked too
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        msg = " ".join(str(e).split())
        raise CheckpointError(
            f"{path}: weights do not fit a {task} model with this config and bin sizes {binsizes} "
            f"(pass the training config with --config): {msg[:300]}"
        ) from None
    model.eval()
    kept = {k: v for k, v in ck.items() if k not in WEIGHT_KEYS}
    return LoadedModel(model, spec, kept, path, stored)


def _check_dtypes(sd: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """A float weight stored as an integer (or bool/complex) tensor would be cast silently by
    ``load_state_dict``, truncating every value: refuse it, naming the first such key."""
    for k, want in expected.items():
        got = sd.get(k)
        if got is not None and want.is_floating_point() and not got.is_floating_point():
            raise CheckpointError(f"{path}: weight {k} is stored as {str(got.dtype).removeprefix('torch.')}, not "
                                  "a floating-point type (a converted or corrupt checkpoint); its values would be "
                                  "truncated")


def checkpoint_nbytes(payload: dict[str, Any]) -> int:
    """About the size ``payload`` takes on disk (its tensors, plus 1 MB for the rest)."""
    total = 0
    stack: list[Any] = [payload]
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            total += v.numel() * v.element_size()
        elif isinstance(v, np.ndarray):
            total += v.nbytes
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return total + 2**20


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` atomically (temp file, fsync, rename); checks the free space first."""
    atomic_write(path, lambda f: torch.save(payload, f), size_hint=checkpoint_nbytes(payload))
