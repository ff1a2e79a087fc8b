"""Sample-sheet values that name public files, turned into the workflow's own download jobs, and the paper's
preset sheet.

:func:`resolve_remote_inputs` replaces every remote value of a sheet (:mod:`chromoformer.files.remote`:
``roadmap:E003/H3K4me3``, ``roadmap-expression``, ``encode:ENCFF...``, ``pchic:H1``, ``gencode:v19``,
``ucsc:hg19/chrom.sizes``, a URL) by the path the workflow downloads it to, ``downloads/{kind}/{name}``
(relative to the workflow's directory), and records each file once under the sheet's ``downloads`` (URLs,
md5, size). A file used by several samples is one download job; the jobs take a ``network`` resource (``chromoformer
workflow --network-jobs``), are retried, and resume a cut transfer. ``pchic:TISSUE`` becomes ``pchic/{tissue}.tsv``,
made from the original's two pickles by ``preprocess pchic-pickles``.

:func:`roadmap_sheet` is ``chromoformer workflow --preset roadmap --samples E003 ...``: for any of the paper's
11 epigenomes, the 7 marks' consolidated tagAligns, the RPKM matrix, GENCODE v19 genes, hg19 chromosome sizes
and the pcHi-C sample the original used for the EID's tissue (docs/original.md §5.4).
"""

from __future__ import annotations

from typing import Any

from chromoformer.config import MARKS
from chromoformer.errors import ChromoformerError, SampleSheetError
from chromoformer.files.fetch import Remote
from chromoformer.files.layouts import WorkflowPattern
from chromoformer.files.remote import expression_column, is_remote, remotes

DOWNLOADS, PCHIC = (WorkflowPattern.DOWNLOAD.split("/")[0], WorkflowPattern.PCHIC_TABLE.split("/")[0])
# EID -> the pcHi-C tissue the original used for it (annotations/tissue_mapping.csv)
ROADMAP_TISSUE = {"E003": "H1", "E004": "ME", "E005": "TB", "E006": "MSC", "E007": "NPC", "E016": "H1",
                  "E066": "LI11", "E087": "PA", "E114": "LG", "E116": "GM", "E118": "LI11"}


def download_path(r: Remote) -> str:
    return WorkflowPattern.DOWNLOAD.format(kind=r.folder, name=r.name)


def _local(value: Any, where: str, sheet: dict, path: object) -> str:
    """The workflow path of one remote value; its download(s) recorded in ``sheet['downloads']``."""
    try:
        files = remotes(value)
    except ChromoformerError as e:
        raise SampleSheetError(f"{path}: {where}: {e}") from None
    for r in files:
        entry = {"urls": list(r.urls), **({"md5": r.md5} if r.md5 else {}), **({"size": r.size} if r.size else {})}
        downloads = sheet.setdefault("downloads", {})
        if downloads.get(download_path(r), entry) != entry:
            raise SampleSheetError(f"{path}: {where}: two different remote files would both be "
                                   f"{download_path(r)} ({downloads[download_path(r)]['urls'][0]} and {r.urls[0]}); "
                                   "name one of them by another URL or fetch it yourself")
        downloads[download_path(r)] = entry
    if isinstance(value, str) and value.startswith("pchic:"):
        tissue = value.split(":", 1)[1]
        sheet.setdefault("pchic_tables", {})[tissue] = [download_path(r) for r in files]
        return WorkflowPattern.PCHIC_TABLE.format(tissue=tissue)
    return download_path(files[0])


def resolve_remote_inputs(sheet: dict, path: object) -> dict:
    """``sheet`` with its remote values replaced by workflow paths (see the module docstring), in place."""
    for key in ("annotation", "expression", "chrom_sizes"):
        if is_remote(sheet.get(key)):
            column = expression_column(sheet[key]) if key == "expression" else None
            sheet[key] = _local(sheet[key], key, sheet, path)
            for s in sheet["samples"].values():
                if column and isinstance(s, dict):
                    s.setdefault("expression_column", column)
    for name, s in sheet["samples"].items():
        if not isinstance(s, dict):
            continue
        if is_remote(s.get("interactions")):
            s["interactions"] = _local(s["interactions"], f"sample {name}, interactions", sheet, path)
        for mark, value in (s.get("signals") or {}).items():
            if is_remote(value):
                s["signals"][mark] = _local(value, f"sample {name}, mark {mark}", sheet, path)
    return sheet


def is_workflow_output(value: object) -> bool:
    """Whether a (resolved) sheet path is made by the workflow itself (a download or a pcHi-C table)."""
    return isinstance(value, str) and value.startswith((f"{DOWNLOADS}/", f"{PCHIC}/"))


def roadmap_sheet(eids: list[str], epochs: int | None = None) -> dict[str, Any]:
    """The paper's inputs for ``eids`` as a sample sheet (refused: an EID the paper did not use)."""
    unknown = [e for e in eids if e not in ROADMAP_TISSUE]
    if unknown or not eids:
        raise SampleSheetError(f"--preset roadmap: {', '.join(unknown) or 'no sample'}: the paper's epigenomes are "
                               f"{', '.join(ROADMAP_TISSUE)}")
    sheet: dict[str, Any] = {
        "annotation": "gencode:v19", "chrom_sizes": "ucsc:hg19/chrom.sizes", "assembly": "hg19",
        "expression": "roadmap-expression", "marks": list(MARKS),
        "samples": {e: {"interactions": f"pchic:{ROADMAP_TISSUE[e]}",
                        "signals": {m: f"roadmap:{e}/{m}" for m in MARKS}} for e in eids}}
    if epochs is not None:
        sheet["train"] = {"epochs": epochs}
    return sheet
