"""``chromoformer preprocess STEP``: the steps the Snakefile orchestrates.

``chromoformer build-store``: an npy directory -> a compact pre-binned store (training builds one itself).

``chromoformer simulate``: a read-level synthetic dataset (BAMs, GTF, pcHi-C, expression), or a whole hg19
genome with ``--genome-scale``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import yaml

from chromoformer.cli import command_help, options
from chromoformer.config import DEFAULT_CONFIG
from chromoformer.data.sources import build_store_from_npy
from chromoformer.errors import UsageError
from chromoformer.files.atomic import writable_output, write_table, write_text
from chromoformer.files.checked import not_an_input
from chromoformer.files.layouts import SimulationFiles, dropped_genes
from chromoformer.preprocess.hic_scores import MAX_DISTANCE
from chromoformer.preprocess.pcres import MIN_SCORE
from chromoformer.workflow.sheet import simulated_sheet

log = logging.getLogger(__name__)
HELP = options.HelpFormatter


def _genes(a: argparse.Namespace) -> None:
    from pathlib import Path

    from chromoformer.preprocess.genes import prepare_genes

    writable_output(a.output, "gene table")
    not_an_input(a.output, [a.annotation, a.chrom_sizes], "--out")
    dropped: list[tuple[str, str]] = []
    g = prepare_genes(a.annotation, w_prom=a.w_prom, chrom_sizes=a.chrom_sizes,
                      biotype=None if a.biotype == "any" else a.biotype, dropped=dropped)
    write_table(g, a.output, sep="\t")
    out = Path(a.output)
    where = dropped_genes(out)
    write_table(pd.DataFrame(dropped, columns=["gene_id", "reason"]), where, sep="\t")
    log.info("wrote %d genes to %s; %d dropped genes and why to %s", len(g), a.output, len(dropped), where)


def _metadata(a: argparse.Namespace) -> None:
    from chromoformer.preprocess.expression import add_labels, assemble_metadata
    from chromoformer.preprocess.genes import read_gene_table
    from chromoformer.preprocess.hic_files import is_contact_matrix
    from chromoformer.preprocess.hic_scores import interactions_from_cool
    from chromoformer.preprocess.pcres import gene_neighbors, read_interactions

    writable_output(a.output, "metadata csv")
    not_an_input(a.output, [a.genes, a.expression, a.interactions], "--out")
    genes = read_gene_table(a.genes)
    genes = add_labels(genes, a.expression, a.column or a.eid, a.unit)
    if is_contact_matrix(a.interactions):
        inter = interactions_from_cool(a.interactions, genes, weight=None if a.weight == "none" else a.weight,
                                       max_distance=a.max_distance, w_max=a.w_max, min_score=a.min_score)
    else:
        if a.max_distance <= 0:
            raise UsageError(f"--max-distance must be > 0 bp, got {a.max_distance}")
        if a.max_distance != MAX_DISTANCE or a.weight != "weight":
            log.warning("--max-distance / --weight apply to Hi-C matrices (.cool/.mcool/.hic); the pcHi-C table %s "
                        "is used as given", a.interactions)
        inter = read_interactions(a.interactions)
    genes = gene_neighbors(genes, inter, min_score=a.min_score, w_max=a.w_max, i_max=a.i_max)
    write_table(assemble_metadata(genes, a.eid), a.output, float_format="%.6g")
    log.info("wrote metadata of %d genes to %s", len(genes), a.output)


def _signals(a: argparse.Namespace) -> None:
    from chromoformer.data.genome import read_chrom_sizes
    from chromoformer.data.metadata import read_metadata
    from chromoformer.preprocess.coverage import ReadOptions
    from chromoformer.preprocess.signals import build_signal_store, gene_regions

    bad = [s for s in a.signal if "=" not in s or not s.split("=", 1)[0].strip() or not s.split("=", 1)[1].strip()]
    if bad:
        raise UsageError(f"--signal {bad[0]!r}: give MARK=FILE (e.g. H3K4me3=H3K4me3.bam)")
    marks, files = zip(*(s.split("=", 1) for s in a.signal), strict=True)
    not_an_input(a.output, [a.meta, a.chrom_sizes, *files], "--out")
    if a.i_max < 1 or a.w_max < 1:
        raise UsageError(f"--i-max and --w-max must be >= 1, got {a.i_max} and {a.w_max}")
    genes = read_metadata(a.meta, i_max=a.i_max, w_max=a.w_max)
    opts = ReadOptions(a.extend, a.shift, a.min_mapq, a.skip_duplicates, a.skip_secondary)
    sizes = read_chrom_sizes(a.chrom_sizes) if a.chrom_sizes else None
    s = build_signal_store(gene_regions(genes, a.w_prom), files, a.output, marks=marks, base=a.base, opts=opts,
                           normalisation=a.normalisation, chrom_sizes=sizes,
                           chrom_sizes_source=a.chrom_sizes or "the chromosome sizes", assembly=a.assembly)
    log.info("wrote store %s: %d regions x %d marks", s.path, len(s), s.n_feats)


def _merge_stores(a: argparse.Namespace) -> None:
    from chromoformer.preprocess.signals import merge_signal_stores

    s = merge_signal_stores(a.part, a.output)
    log.info("wrote store %s: %d regions x %d marks (%s)", s.path, len(s), s.n_feats, ", ".join(s.marks))


def _export_npy(a: argparse.Namespace) -> None:
    from pathlib import Path

    import numpy as np

    from chromoformer.data.metadata import read_metadata
    from chromoformer.data.store import BinnedStore
    from chromoformer.files.atomic import atomic_write
    from chromoformer.files.layouts import npy_file
    from chromoformer.preprocess.signals import gene_regions

    not_an_input(a.output, [a.meta], "--out", folders=[a.store])
    store = BinnedStore(a.store)
    if store.base != 1:
        raise UsageError(f"{a.store}: per-base npy export needs a store built with --base 1 (this one: {store.base})")
    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    for r in gene_regions(read_metadata(a.meta), a.w_prom):
        x = store.region_sums(r, None, "-").T.astype(np.float16)
        atomic_write(npy_file(out, r.name), lambda f, x=x: np.save(f, x))


def _fetch(a: argparse.Namespace) -> None:
    from pathlib import Path

    from chromoformer.files.fetch import Remote, fetch

    out = Path(a.output)
    remote = Remote(out.name, tuple(a.url), a.md5, a.size, folder=out.parent.name)
    log.info("fetched %s", fetch(remote, cache=out.parent.parent))


def _pchic_pickles(a: argparse.Namespace) -> None:
    from chromoformer.preprocess.pchic_pickles import pickles_to_table

    not_an_input(a.output, [a.frag2neighbors, a.pair2score], "--out")
    log.info("wrote %d interactions to %s", pickles_to_table(a.frag2neighbors, a.pair2score, a.output), a.output)


def build_preprocess_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer preprocess", description=command_help("preprocess"))
    steps = p.add_subparsers(dest="step", required=True)

    g = steps.add_parser("genes", help="annotation -> one TSS per gene with its CV split", formatter_class=HELP)
    g.add_argument("--annotation", required=True, help="GTF/GFF3, UCSC refGene/knownGene, BED12, featureCounts SAF "
                   "or parquet (gzip ok; told by content)")
    options.output(g, help="output file or directory")
    g.add_argument("--chrom-sizes", default=None, help="drop genes whose promoter window leaves the chromosome")
    g.add_argument("--biotype", default="protein_coding", help="transcript biotype to keep ('any' for all)")
    g.add_argument("--w-prom", type=int, default=DEFAULT_CONFIG.w_prom, help="promoter window (bp) centred on the TSS")
    g.set_defaults(func=_genes)

    m = steps.add_parser("metadata", help="genes + expression + interactions -> metadata csv",
                          formatter_class=HELP)
    m.add_argument("--genes", required=True, help="genes.tsv from 'preprocess genes'")
    m.add_argument("--expression", required=True,
                   help="genes x samples table (tsv/csv/GTEx gct/featureCounts output, gzip ok)")
    m.add_argument("--eid", required=True, help="sample name (eid column)")
    m.add_argument("--column", default=None,
                   help="expression column (default: --eid; a featureCounts column /path/E003.bam is found as E003)")
    m.add_argument("--unit", choices=("rpkm", "fpkm", "tpm", "counts"), default=None,
                   help="unit of the expression values; counts become RPKM with exon-union lengths (featureCounts' "
                        "Length column, else the annotation's) (default: RPKM, and a table of whole numbers only "
                        "is refused as raw counts)")
    m.add_argument("--interactions", required=True, help="pcHi-C table, CHiCAGO ibed, .cool/.mcool::resolutions/N or "
                   ".hic[::resolutions/N]")
    m.add_argument("--min-score", type=float, default=MIN_SCORE, help="keep interactions with score above this")
    m.add_argument("--w-max", type=int, default=DEFAULT_CONFIG.w_max, help="longest pCRE kept (bp)")
    m.add_argument("--i-max", type=int, default=DEFAULT_CONFIG.i_max, help="most pCREs kept per gene")
    m.add_argument("--weight", default="weight",
                   help="Hi-C balancing weights: a .cool bins column, a .hic normalisation (KR, SCALE, VC...), "
                   "or 'none' for raw counts")
    m.add_argument("--max-distance", type=int, default=MAX_DISTANCE,
                   help="Hi-C (.cool/.hic): farthest other end from the TSS bin (bp); pcHi-C tables are used as given")
    options.output(m, help="output file or directory")
    m.set_defaults(func=_metadata)

    mg = steps.add_parser("merge-stores", help="stores of the same regions built per mark -> one store",
                          formatter_class=HELP)
    mg.add_argument("--part", required=True, nargs="+", help="store directories, in the marks' order")
    options.output(mg, help="output store directory")
    mg.set_defaults(func=_merge_stores)

    s = steps.add_parser("signals", help="BAM/BED/bigWig per mark -> binned store of all regions",
                          formatter_class=HELP)
    options.meta(s)
    s.add_argument("--signal", required=True, action="append", metavar="MARK=FILE",
                   help="one per mark, in the model's mark order")
    options.output(s, help="output file or directory")
    s.add_argument("--base", type=int, default=100,
        help="base bin (bp) of the store; every bin size must be a multiple")
    s.add_argument("--w-prom", type=int, default=DEFAULT_CONFIG.w_prom, help="promoter window (bp) centred on the TSS")
    s.add_argument("--w-max", type=int, default=DEFAULT_CONFIG.w_max, help="longest pCRE kept (bp)")
    s.add_argument("--i-max", type=int, default=DEFAULT_CONFIG.i_max, help="most pCREs kept per gene")
    s.add_argument("--extend", type=int, default=0, help="extend reads to this fragment length")
    s.add_argument("--shift", type=int, default=0, help="shift reads this many bp towards their 3' end")
    s.add_argument("--min-mapq", type=int, default=0, help="skip reads with a lower MAPQ")
    s.add_argument("--skip-duplicates", action="store_true", help="skip reads flagged as duplicates (0x400)")
    s.add_argument("--skip-secondary", action="store_true",
        help="skip secondary and supplementary alignments (0x100, 0x800)")
    s.add_argument("--normalisation", choices=("raw", "rpm"), default="raw",
        help="raw read depth (as the published checkpoints expect) or reads per million")
    s.add_argument("--chrom-sizes", default=None, help="chrom<TAB>size file: regions past a chromosome end are errors")
    s.add_argument("--assembly", default=None, help="the genome assembly (e.g. hg38), recorded in the store; files "
                   "whose chromosome sizes name another are an error (default: named from the sizes)")
    s.set_defaults(func=_signals)

    e = steps.add_parser("export-npy", help="store built with --base 1 -> the original npy directory",
                          formatter_class=HELP)
    options.meta(e)
    e.add_argument("--store", required=True, help="a store built with --base 1")
    options.output(e, help="output file or directory")
    e.add_argument("--w-prom", type=int, default=DEFAULT_CONFIG.w_prom, help="promoter window (bp) centred on the TSS")
    e.set_defaults(func=_export_npy)

    f = steps.add_parser("fetch", help="download one public file (resumed, checked, once per cache): the workflow's "
                         "download jobs", formatter_class=HELP)
    f.add_argument("--url", nargs="+", required=True, help="URLs tried in order")
    f.add_argument("--md5", default=None, help="the md5 the source publishes")
    f.add_argument("--size", type=int, default=None, help="the size in bytes the source declares")
    options.output(f, help="where the file goes: DIR/KIND/NAME (its sha256 record and partial download beside it)")
    f.set_defaults(func=_fetch)

    k = steps.add_parser("pchic-pickles", help="the original's {tissue}_frag2neighbors / _pair2score pickles -> "
                         "interaction table (read with a restricted unpickler)", formatter_class=HELP)
    k.add_argument("--frag2neighbors", required=True, help="{tissue}_frag2neighbors.pickle (bait -> other ends)")
    k.add_argument("--pair2score", required=True, help="{tissue}_pair2score.pickle ((bait, other end) -> score)")
    options.output(k, help="interaction table (tsv)")
    k.set_defaults(func=_pchic_pickles)
    return p


def run_preprocess(args: argparse.Namespace) -> None:
    args.func(args)


log = logging.getLogger(__name__)


def build_store_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer build-store", description=command_help("build-store"))
    p.add_argument("-d", "--npy-dir", required=True, help="directory of the original chrom:start-end.npy files")
    options.output(p, help="store directory to write")
    p.add_argument("--base", type=int, default=100, help="base bin (bp); every bin size must be a multiple")
    p.add_argument("--n-feats", type=int, default=7, help="number of marks (rows) in each npy file")
    p.add_argument("--marks", nargs="+", default=None,
                   help="names of the npy rows, in order (default: the paper's 7 marks, or mark1..markN)")
    return p


def run_store(args: argparse.Namespace) -> None:
    if args.marks and len(args.marks) != args.n_feats:
        raise UsageError(f"--marks names {len(args.marks)} marks but --n-feats is {args.n_feats}")
    not_an_input(args.output, [], folders=[args.npy_dir])
    s = build_store_from_npy(args.npy_dir, args.output, base=args.base, n_feats=args.n_feats, marks=args.marks)
    log.info("wrote store %s: %d regions, %d base bins of %d bp", s.path, len(s), s.sums.shape[0], s.base)


def build_simulate_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="chromoformer simulate", description=command_help("simulate"))
    options.output(p, help="output directory")
    p.add_argument("--span-mb", type=float, default=60.0, help="Mb of real chr11 mark layout to use")
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation")
    p.add_argument("--genome-scale", action="store_true",
                   help="a whole hg19 genome: real TSSs, 23 chromosomes, ~19,000 genes, 25 M reads per mark")
    p.add_argument("--fraction", type=float, default=1.0, help="--genome-scale: this share of every chromosome")
    p.add_argument("--reads-per-mark", type=int, default=25_000_000,
                   help="--genome-scale: reads per mark at fraction 1")
    p.add_argument("--genes", type=int, default=19_000, help="--genome-scale: genes at fraction 1")
    p.add_argument("--pair", action="store_true",
                   help="two cell types A and B of one genome (seeds S and S+1: their own reads, contacts and "
                        "expression) and a sheet that trains each and the differential pair B vs A")
    return p


def run_simulate(args: argparse.Namespace) -> None:
    if args.pair and args.genome_scale:
        raise UsageError("--pair simulates two cell types of the chr11 layout; --genome-scale simulates one whole "
                         "genome: give one of them")
    if args.genome_scale:
        from chromoformer.preprocess.simulate_genome import GenomeSimConfig, simulate_genome

        paths = simulate_genome(args.output, GenomeSimConfig(fraction=args.fraction,
                                                             reads_per_mark=args.reads_per_mark, genes=args.genes,
                                                             seed=args.seed))
    elif args.pair:
        from chromoformer.preprocess.simulate import SimConfig, simulate_cells

        cells, expression = simulate_cells(args.output, SimConfig(span_mb=args.span_mb, seed=args.seed))
        paths = {"expression": expression, **{f"{c}:{k}": v for c, p in cells.items() for k, v in p.items()}}
    else:
        from chromoformer.preprocess.simulate import SimConfig, simulate

        paths = simulate(args.output, SimConfig(span_mb=args.span_mb, seed=args.seed))
    for k, v in paths.items():
        print(f"{k:<14} {v}")
    sheet = SimulationFiles(Path(args.output)).sheet
    cells = cells if args.pair else {"SIM": paths}
    write_text(sheet, yaml.safe_dump(simulated_sheet(cells, expression if args.pair else paths["expression"],
                                                     pair=args.pair), sort_keys=False))
    print(f"sample sheet   {sheet}\nrun it with:   chromoformer workflow --config {sheet} --directory "
          f"{Path(args.output) / 'results'} --cores 2")
