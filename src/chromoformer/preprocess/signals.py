"""Signal files of one sample (one per mark) -> binned store of every promoter and pCRE region.

No genome-wide per-base bedGraph is ever written: each chromosome's reads are loaded once
and only the regions' 100-bp sums are kept. ``normalisation='rpm'`` scales each mark by
1e6 / (its reads passing the filters); the default ``'raw'`` keeps raw depth, as the
published checkpoints expect. Options, files and totals go into the store's manifest.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from chromoformer.data.binning import F32_MAX, base_sums
from chromoformer.data.metadata import Gene, Region, parse_region
from chromoformer.data.store import BinnedStore
from chromoformer.data.store_writer import StoreWriter
from chromoformer.files.layouts import StoreFiles
from chromoformer.files.names import check_name
from chromoformer.preprocess.assembly import canonical, from_sizes
from chromoformer.preprocess.coverage import ReadOptions, SignalError, check_chromosomes, open_signal
from chromoformer.progress import tqdm

log = logging.getLogger(__name__)


def gene_regions(genes: Sequence[Gene], w_prom: int) -> list[Region]:
    """Unique regions, in first-seen order: each gene's TSS +- w_prom/2, then its pCREs."""
    if w_prom < 2 or w_prom % 2:
        raise SignalError(f"--w-prom must be a positive even number of bp, got {w_prom}")
    seen: dict[str, Region] = {}
    half = w_prom // 2
    for g in genes:
        if g.tss - half < 0:
            raise SignalError(f"{g.where}: TSS {g.chrom}:{g.tss} is within {half} bp of "
                              "the chromosome start; drop it when preparing genes")
        for r in (Region(g.chrom, g.tss - half, g.tss + half), *g.pcres):
            seen.setdefault(r.name, r)
    return list(seen.values())




def check_values(depth: np.ndarray, path: str | Path, region: Region) -> None:
    """A value track's values over ``region`` must be finite and >= 0 (NaN = no data is 0 already)."""
    bad = ~np.isfinite(depth) | (depth < 0)
    if bad.any():
        i = int(np.argmax(bad))
        why = ("signals are depths or coverage, >= 0: is this a log-ratio track?" if depth[i] < 0 else
               "signals must be finite")
        raise SignalError(f"{path}: {region.chrom}:{region.start + i + 1}: value {depth[i]:g} ({why})")


def build_signal_store(
    regions: Sequence[Region],
    signals: Sequence[str | Path],
    out: str | Path,
    *, marks: Sequence[str] | None = None,
    base: int = 100,
    opts: ReadOptions | None = None,
    normalisation: str = "raw",
    chrom_sizes: dict[str, int] | None = None,
    chrom_sizes_source: str = "the chromosome sizes",
    assembly: str | None = None,
) -> BinnedStore:
    """Compute every region's base-bin sums for each signal file (column order = ``signals``).

    The manifest records the contigs and the assembly: ``assembly`` if given (the files'
    chromosome sizes must not name another), else the one the sizes name, if any.
    """
    if normalisation not in ("raw", "rpm"):
        raise SignalError(f"normalisation must be 'raw' or 'rpm', got {normalisation!r}")
    if assembly is not None and not assembly.strip():
        raise SignalError("--assembly is empty; name the genome (hg19, hg38...) or leave the option out")
    for m in marks or ():
        check_name(m, "mark name", "--signal", SignalError)  # marks become track names and file names
    regions = list(regions)
    by_chrom = _by_chrom(regions, chrom_sizes, chrom_sizes_source)
    opts = opts or ReadOptions()
    totals, files = [], []
    contigs: dict[str, int] = {}  # the regions' chromosome sizes from the first file that has a header
    contigs_from = ""
    with StoreWriter(out, regions, base, len(signals), marks) as w:
        for col, path in enumerate(signals):
            sig = open_signal(path, opts)
            check_chromosomes(sig, set(by_chrom), chrom_sizes, chrom_sizes_source)
            is_reads = hasattr(sig, "spans")  # reads (BAM, BED) or values (bigWig, bedGraph)
            header = _checked_header(sig, path, by_chrom, contigs, contigs_from)
            if header and not contigs:
                contigs, contigs_from = dict(sorted(header.items())), str(path)
            files.append(str(Path(path).resolve()))
            rpm = normalisation == "rpm" and is_reads
            if normalisation == "rpm" and not is_reads:
                log.warning("%s: track values are used as they are; RPM scaling does not apply", path)
            label = marks[col] if marks else Path(path).name
            counted = _write_column(w, col, sig, path, by_chrom, base, label)
            if is_reads and counted == 0:
                log.warning("%s: NO reads pass the filters on the regions' chromosomes: mark %s will be all zeros; "
                            "check the file and the read options", path, label)
            total = counted + sig.total_reads(exclude=frozenset(by_chrom)) if rpm else counted
            if rpm and total:  # raw sums are integers, exact in float32: scaling afterwards changes no value
                w.sums[:, col] = (w.sums[:, col].astype(np.float64) * (1e6 / total)).astype(np.float32)
            totals.append(total)
        contigs = contigs or ({c: chrom_sizes[c] for c in sorted(by_chrom)} if chrom_sizes else {})
        found = from_sizes(contigs) if contigs else None
        if assembly and found and canonical(assembly) != found:
            raise SignalError(f"{contigs_from or chrom_sizes_source}: chromosome sizes of {found}, but the assembly "
                              f"given is {assembly}; use files of one assembly")
        return w.commit({
            "assembly": canonical(assembly) if assembly else found,
            "source": "chromoformer preprocess signals",
            "files": files, "normalisation": "raw read depth" if normalisation == "raw" else "reads per million",
            "read_totals": totals, "read_options": asdict(opts),
            "read_totals_scope": "all chromosomes" if normalisation == "rpm" else "the regions' chromosomes",
            "contigs": contigs,
        })


def _by_chrom(regions: list[Region], chrom_sizes: dict[str, int] | None, source: str) -> dict[str, list[Region]]:
    """The regions grouped by chromosome, each checked to lie within the chromosome sizes (when given)."""
    by_chrom: dict[str, list[Region]] = defaultdict(list)
    for r in regions:
        if chrom_sizes is not None:
            if r.chrom not in chrom_sizes:
                raise SignalError(f"{source}: no size for chromosome {r.chrom} (region {r.name})")
            if r.end > chrom_sizes[r.chrom]:
                raise SignalError(f"{source}: region {r.name} runs past the end of {r.chrom} "
                                  f"({chrom_sizes[r.chrom]} bp); do the genes, reads and sizes use one assembly?")
        by_chrom[r.chrom].append(r)
    return by_chrom


def _checked_header(sig, path: str | Path, by_chrom: dict[str, list[Region]], contigs: dict[str, int],
                    contigs_from: str) -> dict[str, int]:
    """The file's header sizes of the regions' chromosomes; they must agree with the files read before and hold
    every region."""
    header = {c: int(n) for c, n in (getattr(sig, "sizes", None) or {}).items() if c in by_chrom}
    clash = [c for c in header if c in contigs and contigs[c] != header[c]]
    if clash:
        c = clash[0]
        raise SignalError(f"{path}: {c} is {header[c]} bp here but {contigs[c]} bp in {contigs_from}: the "
                          "signal files come from different assemblies")
    past = [(c, r) for c, n in header.items() for r in by_chrom[c] if r.start >= n]
    if past:
        c, r = past[0]
        raise SignalError(f"{path}: region {r.name} starts past the end of {c} ({header[c]} bp in this file's "
                          f"header; {len(past)} region(s) do): the genes and the signal come from different "
                          "assemblies")
    return header


def _write_column(w: StoreWriter, col: int, sig, path: str | Path, by_chrom: dict[str, list[Region]], base: int,
                  label: str) -> int:
    """One file's base-bin sums of every region into store column ``col``; returns the reads it counted on the
    regions' chromosomes (0 for a value track)."""
    is_reads = hasattr(sig, "spans")
    counted = 0  # reads of the chromosomes loaded below; the others are counted after
    for chrom, rs in tqdm(sorted(by_chrom.items()), desc=f"signal {label}", unit="chrom", leave=False):
        spans = None if not is_reads or chrom not in sig.chroms else sig.spans(chrom)
        counted += len(spans.starts) if spans is not None else 0
        for r in rs:
            if not is_reads:
                depth = sig.depth(chrom, r.start, r.end) if chrom in sig.chroms else None
            else:
                depth = spans.depth(r.start, r.end) if spans is not None else None
            if depth is None:
                continue  # chromosome absent from this file: stays 0 (warned above)
            if not is_reads:
                check_values(depth, path, r)
            sums = base_sums(depth[None].astype(np.float64), base)[:, 0]
            if sums.max(initial=0) > F32_MAX:
                raise SignalError(f"{path}: values over {r.name} sum to {sums.max():.3g} in a {base}-bp bin, "
                                  "past float32; is this a depth or coverage track?")
            w.put(r, sums.astype(np.float32), col)
    return counted


def merge_signal_stores(parts: Sequence[str | Path], out: str | Path) -> BinnedStore:
    """Stores of the same regions built per mark (e.g. one snakemake job each) -> one store, marks in order.

    Every part must hold the same regions at the same base with the same read options and
    contigs; their marks must be distinct. Columns are copied in chunks (memory stays flat).
    """
    target = Path(out).resolve()
    for part in parts:
        src = Path(part).resolve()
        if src == target or target in src.parents or src in target.parents:
            raise SignalError(f"--out {out}: the merged store would overwrite the part {part}; write it elsewhere")
    stores = [BinnedStore(p) for p in parts]
    if not stores:
        raise SignalError("no store to merge")
    first = stores[0]
    names = [r for s in stores for r in s.marks]
    if len(set(names)) != len(names):
        raise SignalError(f"the stores to merge repeat a mark ({', '.join(names)})")
    regions = pd.read_csv(StoreFiles(first.path).regions, sep="\t")
    for s in stores[1:]:
        for key in ("base", "read_options", "contigs", "normalisation"):
            if s.manifest.get(key) != first.manifest.get(key):
                raise SignalError(f"{s.path}: its {key} differs from {first.path}'s; build every mark with the "
                                  "same options and regions")
        if not regions.equals(pd.read_csv(StoreFiles(s.path).regions, sep="\t")):
            raise SignalError(f"{s.path}: its regions differ from {first.path}'s (built from another metadata?)")
    todo = [parse_region(n) for n in regions.name]
    with StoreWriter(out, todo, first.base, len(names), names) as w:
        col = 0
        for s in stores:
            for lo in range(0, len(s.sums), 1 << 20):
                w.sums[lo : lo + (1 << 20), col : col + s.n_feats] = s.sums[lo : lo + (1 << 20)]
            col += s.n_feats
        m = first.manifest
        assembly = {s.manifest.get("assembly") for s in stores} - {None}
        if len(assembly) > 1:
            raise SignalError(f"the stores to merge record different assemblies ({', '.join(sorted(assembly))})")
        return w.commit({
            "source": "chromoformer preprocess merge-stores",
            "files": [f for s in stores for f in s.manifest.get("files", [])],
            "normalisation": m.get("normalisation"), "read_options": m.get("read_options"),
            "read_totals": [t for s in stores for t in s.manifest.get("read_totals", [])],
            "read_totals_scope": m.get("read_totals_scope"), "contigs": m.get("contigs", {}),
            "assembly": assembly.pop() if assembly else None,
            "merged_from": [_beside(p, target) for p in parts],
        })


def _beside(part: str | Path, store: Path) -> str:
    """``part``'s path relative to the merged ``store``'s folder: the parts are scratch folders (the
    workflow deletes them), so the same inputs merged in two work directories give the same manifest."""
    return os.path.relpath(Path(part).resolve(), store.parent)
