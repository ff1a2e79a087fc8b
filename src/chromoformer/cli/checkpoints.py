"""``chromoformer inspect`` (describe a checkpoint) and ``chromoformer export-weights`` (weights and run spec as
``.safetensors``)."""

from __future__ import annotations

import argparse
import logging

from chromoformer.cli import options
from chromoformer.errors import UsageError

log = logging.getLogger(__name__)


def build_inspect_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    options.checkpoints(p, several=False, positional=True)
    return p


def inspect(args: argparse.Namespace) -> None:
    from chromoformer.engine.checkpoint import Key
    from chromoformer.engine.loading import load_model

    m = load_model(options.checkpoint_list(args, several=False)[0])
    ck, st = m.checkpoint, m.stored
    n = sum(p.numel() for p in m.model.parameters())
    print(f"checkpoint   {m.path}")
    print(f"task         {m.task} ({type(m.model).__name__}, {n:,} parameters)")
    print(f"bin sizes    {', '.join(map(str, m.binsizes))}")
    print(f"marks        {', '.join(ck[Key.MARKS]) if ck.get(Key.MARKS) else 'not stored (original format)'}")
    print(f"config       {'stored' if Key.CONFIG in ck else 'default (not stored: original format)'}")
    for k in (Key.EPOCH, Key.FOLD, Key.BEST_EPOCH):
        if getattr(st, k) is not None:
            print(f"{k:<12} {getattr(st, k)}")
    if isinstance(ck.get(Key.VERSION), str):
        print(f"{'version':<12} {ck[Key.VERSION]!r}")
    # the original stores validation AUROC / R2 multiplied by 100
    for k, name in ((Key.LAST_VAL_AUC, "AUROC"), (Key.LAST_VAL_R2, "R2"),
                    (Key.LAST_VAL_PEARSON, "Pearson r of the fold change")):
        v = getattr(st, k)
        if v is not None:
            print(f"{k:<12} {v / 100:.3f} (validation {name} at that epoch; stored x100 as {v:.2f})")
    if st.last_val_loss is not None:
        print(f"last_val_loss {st.last_val_loss:.4f}")


def build_export_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    options.checkpoints(p, several=False, positional=True)
    options.output(p, help="output .safetensors file")
    return p


def export(args: argparse.Namespace) -> None:
    from chromoformer.engine.loading import export_weights

    if not str(args.output).endswith(".safetensors"):
        raise UsageError(f"-o {args.output}: the output must end in .safetensors")
    p = export_weights(options.checkpoint_list(args, several=False)[0], args.output)
    log.info("wrote %s (%.1f MB)", p, p.stat().st_size / 2**20)
