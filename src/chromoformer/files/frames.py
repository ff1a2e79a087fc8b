"""Tables in the formats other tools read: csv/tsv, parquet and AnnData ``.h5ad``, chosen by the file's suffix.

Every format holds the csv's numbers exactly: floating-point columns are first rounded to the csv's 7 significant
digits (:func:`as_written`), so a table read back from parquet or h5ad equals the one read from the csv, bit for bit
(``tests/test_frames.py``). parquet needs ``pyarrow`` (``pip install 'chromoformer-ng[parquet]'``), h5ad needs
``anndata`` (``[anndata]``); each is imported only when its format is asked for.

The h5ad layout, for a table of genes: observations are the genes (``obs_names`` = the ``index`` column, with the
``obs`` annotation columns given, e.g. chrom, TSS, strand and split), variables are the table's numeric columns
(``X``, genes x statistics, float64); text columns of the table are kept in ``obs`` too, and ``uns["columns"]``
records the table's column order, so reading it back gives the same table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.errors import UsageError
from chromoformer.files.atomic import atomic_write, write_table
from chromoformer.files.checked import read_table, require_file

FLOAT_FORMAT = "%.7g"  # the csv's digits, and so every format's
FORMATS = {".parquet": "parquet", ".h5ad": "h5ad", ".tsv": "tsv"}  # any other suffix: csv
NEEDS = {"parquet": ("pyarrow", "parquet"), "h5ad": ("anndata", "anndata")}  # format: (module, extra)


def table_format(path: str | Path) -> str:
    """``parquet``, ``h5ad``, ``tsv`` or ``csv`` (the default), by ``path``'s suffix."""
    return FORMATS.get(Path(path).suffix.lower(), "csv")


def _module(fmt: str, path: str | Path):
    import importlib

    module, extra = NEEDS[fmt]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{path}: writing or reading .{fmt} needs the {module} package: pip install "
                         f"'chromoformer-ng[{extra}]'") from None


def as_written(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every floating-point column rounded to :data:`FLOAT_FORMAT`, as the csv holds it."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            v = out[c].to_numpy(dtype=np.float64)
            out[c] = np.array([float(FLOAT_FORMAT % x) for x in v], dtype=np.float64) if len(v) else v
    return out


def write_frame(df: pd.DataFrame, path: str | Path, *, index: str | None = None, obs: pd.DataFrame | None = None,
                uns: Mapping[str, object] | None = None) -> Path:
    """Write ``df`` atomically in the format of ``path``'s suffix; ``index``, ``obs`` and ``uns``: h5ad only (the
    column naming the observations, their annotation indexed like it, and unstructured metadata)."""
    fmt = table_format(path)
    if fmt in ("csv", "tsv"):
        write_table(df, path, sep="\t" if fmt == "tsv" else ",", float_format=FLOAT_FORMAT)
    elif fmt == "parquet":
        _module("parquet", path)
        table = as_written(df)
        atomic_write(path, lambda f: table.to_parquet(f, index=False))
    else:
        _write_h5ad(as_written(df), Path(path), index, obs, uns or {})
    return Path(path)


def _write_h5ad(df: pd.DataFrame, path: Path, index: str | None, obs: pd.DataFrame | None,
                uns: Mapping[str, object]) -> None:
    ad = _module("h5ad", path)
    if index is None or index not in df:
        raise ValueError("an h5ad table needs its observation column (index)")
    numeric = [c for c in df.columns if c != index and pd.api.types.is_numeric_dtype(df[c])]
    text = [c for c in df.columns if c != index and c not in numeric]
    names = df[index].astype(str).to_numpy()
    o = pd.DataFrame(index=pd.Index(names, name=index))
    if obs is not None:
        o = o.join(obs.drop(columns=[c for c in obs.columns if c in df.columns], errors="ignore"), how="left")
    for c in text:
        o[c] = df[c].astype(str).to_numpy()
    adata = ad.AnnData(X=df[numeric].to_numpy(dtype=np.float64).reshape(len(df), len(numeric)), obs=o,
                       var=pd.DataFrame(index=pd.Index(numeric, name="statistic")))
    adata.uns.update({**uns, "columns": list(df.columns), "index": index})
    # HDF5 locks the file it writes, which the locked temp of atomic_path already is: write it in a private
    # folder, then place its bytes atomically (a table of genes: megabytes at most)
    with tempfile.TemporaryDirectory(prefix=".h5ad-", dir=path.parent) as d:
        adata.write_h5ad(Path(d) / "table.h5ad")
        data = (Path(d) / "table.h5ad").read_bytes()
    atomic_write(path, lambda f: f.write(data))


def read_frame(path: str | Path, error: type[Exception], what: str, **read_csv) -> pd.DataFrame:
    """A table written by :func:`write_frame` (or any csv/tsv/parquet/h5ad of that shape), read by ``path``'s suffix;
    an unreadable file is ``error`` naming it and ``what`` it should have been. ``read_csv``: csv/tsv only."""
    fmt = table_format(require_file(path, what, error))
    if fmt in ("csv", "tsv"):
        return read_table(path, error, what, **({"sep": "\t"} if fmt == "tsv" else {}), **read_csv)
    mod = _module(fmt, path)
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        adata = mod.read_h5ad(path)
    except Exception as e:  # noqa: BLE001 - any reader failure is an unreadable file, named
        raise error(f"{path}: not a readable {what} ({' '.join(str(e).split())[:200]})") from None
    index, columns = adata.uns.get("index"), list(adata.uns.get("columns", []))
    if not index or not columns:
        raise error(f"{path}: not a {what} written by chromoformer (no 'index'/'columns' in uns)")
    table = pd.DataFrame(np.asarray(adata.X, dtype=np.float64), columns=list(adata.var_names))
    table.insert(0, index, list(adata.obs_names))
    for c in columns:
        if c not in table:
            if c not in adata.obs:
                raise error(f"{path}: column {c} is neither a variable nor an observation column")
            table[c] = adata.obs[c].astype(str).to_numpy()
    return table[columns]



def beside_as_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` again as parquet beside the tsv/csv ``path`` (same stem): for ``--parquet``."""
    return write_frame(df, Path(path).with_suffix(".parquet"))
