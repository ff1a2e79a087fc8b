"""The one signal opener: an npy directory or a binned store in, the fastest :class:`RegionSource` out.

Every reader (training, prediction, interpretation, verify) opens signal here; building a store is the writer's
job (:mod:`chromoformer.data.store_writer`), which this module calls when a cache store is wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from chromoformer.config import default_marks
from chromoformer.data.sources import NpyDirSource
from chromoformer.data.store import BinnedStore
from chromoformer.data.store_writer import build_store_from_npy, npy_fingerprint
from chromoformer.errors import StoreError
from chromoformer.files.layouts import StoreFiles

log = logging.getLogger(__name__)


def open_source(
    npy_dir: str | Path,
    *, store: str | Path | None = None,
    build: bool = True,
    n_feats: int = 7,
    base: int = 100,
    marks: Sequence[str] | None = None,
) -> NpyDirSource | BinnedStore:
    """Pick the fastest source for a signal directory; input directories are never written to.

    * ``npy_dir`` that is itself a store is opened (and verified) as one;
    * ``store`` is used when it was built from ``npy_dir`` as it is now, at this ``base``
      with these ``marks``;
    * otherwise, with ``build``, ``store`` is (re)built from ``npy_dir`` and used;
    * otherwise (or without ``store``) the npy files (``n_feats`` rows each) are read directly.

    A store's base resolution must divide ``base`` (else :class:`StoreError`). Which of its
    marks a model reads is decided by :func:`chromoformer.data.marks.select_marks`.
    """
    npy_dir = Path(npy_dir)
    if StoreFiles.is_store(npy_dir):
        return _fits(BinnedStore(npy_dir), base)
    if not npy_dir.is_dir():
        raise StoreError(f"{npy_dir}: signal directory not found (expected an npy directory or a binned store)")
    if store is None:
        return NpyDirSource(npy_dir, n_feats, base)
    store = Path(store)
    names = list(marks) if marks is not None else list(default_marks(n_feats))
    if StoreFiles.is_store(store):
        try:
            s = BinnedStore(store)
            if ((s.base, s.n_feats, list(s.marks)) == (base, n_feats, names)
                    and s.manifest.get("source_fingerprint") == npy_fingerprint(npy_dir)):
                return s
            log.info("store %s was built from other files or settings than %s", store, npy_dir)
        except StoreError as e:
            log.warning("store %s is not usable (%s)", store, e)
    if not build:
        return NpyDirSource(npy_dir, n_feats, base)
    log.info("building binned store %s from %s (once)", store, npy_dir)
    return build_store_from_npy(npy_dir, store, base=base, n_feats=n_feats, marks=names)


def _fits(s: BinnedStore, base: int) -> BinnedStore:
    if base % s.base:
        raise StoreError(f"{s.path}: the store's base resolution is {s.base} bp, which does not divide the "
                         f"bin sizes' base {base} bp; rebuild it with a smaller --base")
    return s


def signal_marks(signal: str | Path) -> tuple[str, ...] | None:
    """The mark names a binned store records (None for an npy directory)."""
    if StoreFiles.is_store(signal):
        return BinnedStore(signal, verify=False).marks
    return None
