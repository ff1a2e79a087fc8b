"""Bad-input cases: the workflow's sample sheet."""

from __future__ import annotations

from corpus.builders import sheet_case

CASES = {
    # ---- workflow sample sheet
    "sheet typo top": sheet_case(lambda s: s.update(anotation="x"), "unknown key 'anotation'"),
    "sheet typo signal option": sheet_case(lambda s: s.update(signal_options={"extnd": 200}),
                                           "unknown key 'signal_options.extnd'"),
    "sheet typo train": sheet_case(lambda s: s.update(train={"epocs": 5}), "unknown key 'train.epocs'"),
    "sheet wrong type": sheet_case(lambda s: s.update(train={"epochs": "five"}), "'train.epochs' must be int"),
    "sheet unknown mark": sheet_case(lambda s: s["samples"]["S1"]["signals"].update(H3K99me9="x"),
                                     "unknown mark(s) H3K99me9"),
    "sheet missing mark": sheet_case(lambda s: s.update(marks=["H3K4me3", "H3K27ac"]), "H3K27ac"),
    "sheet missing file": sheet_case(lambda s: s.update(annotation="nope.gtf"), "nope.gtf not found"),
    "sheet not a mapping": sheet_case(lambda s: "- a\n- b\n", "expected a mapping"),
    "sheet invalid yaml": sheet_case(lambda s: "samples: [\n", "invalid YAML"),
    "sheet no samples": sheet_case(lambda s: s.update(samples={}), "'samples' is empty"),
}
