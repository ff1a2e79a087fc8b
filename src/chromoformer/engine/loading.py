"""From a checkpoint dict to a model: the one checkpoint -> spec rule, strict loading, weights-only export.

Legacy key names (``module.``, ``embed{b}_a``...) are renamed to the current modules' (docs/original.md §2), the
task and bin sizes of the original format are told from the weights, and the weights are loaded strictly into the
model the spec builds; :func:`export_weights` writes them back out as ``.safetensors`` with the spec.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from chromoformer.config import ARCHS, DEFAULT_BINSIZES, MODEL_KEYS, ChromoformerConfig, ConfigError, default_marks
from chromoformer.engine.checkpoint import (
    PROVENANCE_KEYS,
    WEIGHT_KEYS,
    Key,
    StoredMetrics,
    read_checkpoint,
    spec_fields,
    stored_metrics,
)
from chromoformer.engine.memory import check_model_fits
from chromoformer.errors import CheckpointError, UsageError
from chromoformer.files.atomic import atomic_write
from chromoformer.files.checked import not_an_input
from chromoformer.model import build_model
from chromoformer.spec import TASKS, RunSpec

_RENAMES = [  # legacy prefix -> current prefix (docs/original.md §2)
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




@dataclass
class LoadedModel:
    """A checkpoint's model (eval mode), its run spec, the raw checkpoint dict and its stored
    numbers (checked: :mod:`chromoformer.engine.checkpoint`).

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
    return _spec_of(ck, canonical_state_dict(ck[Key.NET]), Path(path), config)


def _spec_of(ck: dict[str, Any], sd: dict[str, torch.Tensor], path: Path, config: ChromoformerConfig | None
             ) -> RunSpec:
    task = _stored(ck, Key.TASK, lambda v: v in TASKS, "'clf' or 'reg'", path) or infer_task(sd)
    binsizes = _stored(ck, Key.BINSIZES, lambda v: isinstance(v, (list, tuple)) and v and all(
        isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in v), "a list of positive bin sizes", path)
    binsizes = tuple(binsizes or infer_binsizes(sd))
    arch = _stored(ck, Key.ARCH, lambda v: v in ARCHS, f"one of {', '.join(ARCHS)}", path) or "chromoformer"
    try:
        own = ChromoformerConfig.from_dict(ck[Key.CONFIG], f"{path}[config]") if Key.CONFIG in ck else None
        if config is not None and own is not None and config.model != own.model:
            theirs, mine = own.to_dict(), config.to_dict()
            keys = [k for k in MODEL_KEYS if theirs[k] != mine[k]]
            shown = "; ".join(f"{k}: checkpoint {theirs[k]}, --config {mine[k]}" for k in keys[:3])
            raise UsageError(f"{path}: --config disagrees with the config stored in the checkpoint ({shown}); drop "
                             "--config (the checkpoint carries its own) or give the config it was trained with")
        config = config or own or ChromoformerConfig()
        stored = RunSpec.from_dict(ck[Key.SPEC], f"{path}[spec]") if Key.SPEC in ck else None
        # the protocol first: under a baseline's original one, RunSpec writes its recipe into the config
        spec = RunSpec(config, binsizes, tuple(ck.get(Key.MARKS) or default_marks(config.n_feats)), task, arch,
                       protocol=stored.protocol if stored is not None else "original")
        if stored is not None:  # written by us: the older keys must say the same (the user's --config may differ)
            spec = spec.replace(init_seed=stored.init_seed, parent=stored.parent, freeze=stored.freeze)
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
    sd = canonical_state_dict(ck[Key.NET])
    spec = _spec_of(ck, sd, path, config)
    task, binsizes = spec.task, spec.binsizes
    check_model_fits(spec, torch.device("cpu"), purpose="inference", where=str(path))  # it is built on the CPU
    try:
        model = build_model(task, spec.config, binsizes, spec.arch)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    _check_dtypes(sd, model.state_dict(), path)
    stored = stored_metrics(ck, path, task)  # the numbers beside the weights are checked too
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        if spec.arch == "attentivechrome" and any(k.startswith("bin_rnn.") for k in sd):
            raise CheckpointError(f"{path}: an AttentiveChrome checkpoint from before 2026-12-07, whose one bin-level "
                                  "encoder was shared by every mark (not the published model; docs/models.md): "
                                  "retrain it with this version") from None
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


def export_weights(checkpoint: str | Path, out: str | Path) -> Path:
    """Write a checkpoint's weights (no optimizer state) and run spec as ``.safetensors`` for sharing."""
    try:
        from safetensors.torch import save
    except ImportError:
        raise CheckpointError("exporting weights needs the safetensors package (pip install safetensors)") from None
    not_an_input(out, [checkpoint])
    lm = load_model(checkpoint)
    ck = lm.checkpoint
    meta = {**spec_fields(lm.spec), **{k: ck[k] for k in PROVENANCE_KEYS if ck.get(k) is not None}}
    state = {k: v.detach().contiguous() for k, v in lm.model.state_dict().items()}
    data = save(state, metadata={k: json.dumps(v) for k, v in meta.items()})
    atomic_write(out, lambda f: f.write(data), size_hint=len(data))
    return Path(out)
