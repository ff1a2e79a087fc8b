"""Marks by name: give a model the signal rows it was trained on, in its order.

A binned store names its marks; a checkpoint names the marks its model reads. When they
differ in order or in names, prediction refuses to guess: the user maps them explicitly
(``--mark-map MODEL_MARK=STORE_MARK``, or ``by-name`` to take equal names in the model's
order), and :func:`select_marks` returns a view of the source with those rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from chromoformer.data.metadata import Region
from chromoformer.data.sources import RegionSource
from chromoformer.errors import StoreError, UsageError

log = logging.getLogger(__name__)
BY_NAME = "by-name"


class MarkView:
    """``source`` with its signal columns picked and ordered by ``columns`` (named ``marks``).

    A column of -1 is an absent mark: its values are 0 and ``present`` says it is absent, so
    a model trained with mark dropout replaces it by its learned "absent" input.
    """

    def __init__(self, source: RegionSource, columns: Sequence[int], marks: Sequence[str]) -> None:
        self.source, self.columns, self.marks = source, list(columns), tuple(marks)
        self.base, self.n_feats = source.base, len(self.columns)
        self.path = getattr(source, "dir", None) or getattr(source, "path", None)
        self.present = tuple(c >= 0 for c in self.columns) if min(self.columns, default=0) < 0 else None
        self._known = [i for i, c in enumerate(self.columns) if c >= 0]

    def has(self, region: Region) -> bool:
        return self.source.has(region)

    def check(self, region: Region, gene: str) -> None:
        self.source.check(region, gene)

    def region_sums(self, region: Region, crop: tuple[int, int] | None, gene: str | None) -> np.ndarray:
        sums = self.source.region_sums(region, crop, gene)
        if self.present is None:
            return sums[:, self.columns]
        out = np.zeros((len(sums), self.n_feats), dtype=sums.dtype)
        out[:, self._known] = sums[:, [self.columns[i] for i in self._known]]
        return out


def parse_mark_map(items: Sequence[str] | None) -> dict[str, str] | str | None:
    """``['H3K27ac=K27ac', ...]`` -> dict; ``['by-name']`` -> ``'by-name'``; nothing -> None."""
    if not items:
        return None
    if list(items) == [BY_NAME]:
        return BY_NAME
    out: dict[str, str] = {}
    for it in items:
        model_mark, sep, store_mark = it.partition("=")
        if not sep or not model_mark or not store_mark:
            raise UsageError(f"--mark-map {it!r}: expected MODEL_MARK=STORE_MARK (or the single word {BY_NAME})")
        if model_mark in out:
            raise UsageError(f"--mark-map: {model_mark} is mapped twice")
        out[model_mark] = store_mark
    return out


def select_marks(source: RegionSource, marks: Sequence[str], mark_map: Mapping[str, str] | str | None = None,
                 absent: Sequence[str] = ()) -> RegionSource:
    """A source giving the model's ``marks`` in order; a mismatch without ``mark_map`` is an error.

    ``mark_map`` maps model marks to source marks (unmapped marks keep their name), or is
    ``'by-name'``. Unnamed sources (npy directories) are read in row order. ``absent``: model
    marks not measured; they need not be in the source and are read as absent (see MarkView).
    """
    marks = tuple(marks)
    have = getattr(source, "marks", None)
    where = getattr(source, "dir", None) or getattr(source, "path", None) or Path("signal")
    if absent:
        return _with_absent(source, marks, mark_map, tuple(absent), where)
    if have is None:
        if mark_map:
            raise UsageError(f"{where}: --mark-map needs a source with named marks (a binned store); npy rows "
                             "have no names")
        if source.n_feats != len(marks):
            raise StoreError(f"{where}: the signal has {source.n_feats} marks per region but the model reads "
                             f"{len(marks)} ({', '.join(marks)})")
        return source
    have = tuple(have)
    if not mark_map:
        if have == marks:
            return source
        how = "order" if set(have) == set(marks) else "names"
        raise StoreError(f"{where}: the store's marks ({', '.join(have)}) differ from the model's "
                         f"({', '.join(marks)}) in {how}; map them explicitly with --mark-map "
                         f"MODEL_MARK=STORE_MARK (or --mark-map {BY_NAME} to pick equal names in the model's order)")
    mapping = {} if mark_map == BY_NAME else dict(mark_map)
    unknown = sorted(set(mapping) - set(marks))
    if unknown:
        raise UsageError(f"--mark-map: {', '.join(unknown)} not among the model's marks ({', '.join(marks)})")
    want = [mapping.get(m, m) for m in marks]
    missing = [w for w in want if w not in have]
    if missing:
        raise StoreError(f"{where}: the store has no mark {', '.join(missing)} (it has {', '.join(have)}); "
                         "map each model mark to one of those with --mark-map MODEL_MARK=STORE_MARK")
    if len(set(want)) != len(want):
        raise UsageError(f"--mark-map: two model marks map to the same store mark ({', '.join(want)})")
    if tuple(want) == have:
        return source
    log.info("reading store marks %s as the model's %s", ", ".join(want), ", ".join(marks))
    return MarkView(source, [have.index(w) for w in want], marks)


def _with_absent(source: RegionSource, marks: tuple[str, ...], mark_map: Mapping[str, str] | str | None,
                 absent: tuple[str, ...], where: object) -> MarkView:
    unknown = sorted(set(absent) - set(marks))
    if unknown:
        raise UsageError(f"--absent-marks: {', '.join(unknown)} not among the model's marks ({', '.join(marks)})")
    if set(absent) == set(marks):
        raise UsageError("--absent-marks: at least one of the model's marks must be measured")
    have = getattr(source, "marks", None)
    if have is None:
        raise UsageError(f"{where}: absent marks need a source with named marks (a binned store); npy rows have "
                         "no names")
    mapping = {} if mark_map in (None, BY_NAME) else dict(mark_map)
    want = {m: mapping.get(m, m) for m in marks if m not in absent}
    missing = [w for w in want.values() if w not in have]
    if missing:
        raise StoreError(f"{where}: the store has no mark {', '.join(missing)} (it has {', '.join(have)}); map it "
                         "with --mark-map MODEL_MARK=STORE_MARK or list it in --absent-marks")
    log.info("predicting without %s (absent: the model's learned stand-in is used)", ", ".join(absent))
    return MarkView(source, [have.index(want[m]) if m in want else -1 for m in marks], marks)
