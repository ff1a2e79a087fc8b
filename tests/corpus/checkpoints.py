"""Bad-input cases: checkpoints (ours and the original format)."""

from __future__ import annotations

import torch

from corpus.builders import Case, _ckpt_as_reg, _ckpt_marks, _pickled, ckpt_case, ckpt_edit, expect, predict
from fault_inputs import truncate

CASES = {
    # ---- checkpoints
    "ckpt missing": lambda i: expect(predict(i, ckpt=i.out("x.pt")), i.out("x.pt"), "not found"),
    "ckpt directory": lambda i: expect(predict(i, ckpt=i.tmp), i.tmp, "is a directory"),
    "ckpt empty": ckpt_case(lambda i, p: p.write_bytes(b""), "empty file"),
    "ckpt truncated": ckpt_case(lambda i, p: truncate(i.ckpt, p, 0.5), "not a readable torch checkpoint"),
    "ckpt random bytes": ckpt_case(lambda i, p: p.write_bytes(bytes(range(256)) * 64), "not a torch checkpoint"),
    "ckpt is a csv": ckpt_case(lambda i, p: p.write_text("gene_id,score\nA,1\n"), "not a torch checkpoint"),
    "ckpt pickled object": ckpt_case(_pickled, "refused to load", "print"),
    "ckpt not a dict": ckpt_case(lambda i, p: torch.save([1, 2, 3], p), "expected a dict"),
    "ckpt nan weight": ckpt_case(ckpt_edit(nan="fc_head.2.weight"), "NaN or infinite", "fc_head.2.weight"),
    "ckpt missing weight": ckpt_case(ckpt_edit(drop="fc_head.0.bias"), "weights do not fit"),
    "ckpt unknown task": ckpt_case(ckpt_edit(task="segment"), "stored task"),
    "ckpt unknown arch": ckpt_case(ckpt_edit(arch="resnet"), "stored arch"),
    "ckpt bad binsizes": ckpt_case(ckpt_edit(binsizes=[2000, -5]), "stored binsizes"),
    "ckpt binsizes not dividing": ckpt_case(ckpt_edit(binsizes=[2000, 300]), "300"),
    "ckpt bad config": ckpt_case(ckpt_edit(config={"lr": 1}), "missing config key"),
    "ckpt spec edited": ckpt_case(ckpt_edit(binsizes=[2000, 500]), "spec and its own binsizes disagree"),
    "ckpt spec not a mapping": ckpt_case(ckpt_edit(spec=[1, 2]), "must be a mapping"),
    "ckpt spec unknown key": ckpt_case(ckpt_edit(spec={"dropout": 0.1}), "unknown run spec key"),
    "ckpt marks differ from store": lambda i: expect(predict(i, npy=i.store, ckpt=_ckpt_marks(i)), "differ"),
    "ensemble of clf and reg": lambda i: expect(
        Case([*predict(i).argv, "-k", str(_ckpt_as_reg(i))], ()), "task"),
}
