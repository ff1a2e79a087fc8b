"""The read-level simulation, preprocessed as the workflow would: shared by the simulation benches."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chromoformer.config import MARKS
from chromoformer.files.atomic import write_table
from chromoformer.preprocess.expression import add_labels, assemble_metadata
from chromoformer.preprocess.genes import prepare_genes
from chromoformer.preprocess.pcres import gene_neighbors, read_interactions
from chromoformer.preprocess.signals import build_signal_store, gene_regions
from chromoformer.preprocess.simulate import SimConfig, simulate


def prepare(wd: Path, span_mb: float) -> tuple[pd.DataFrame, Path, Path, pd.DataFrame]:
    """Simulate ``span_mb`` Mb into ``wd`` (reused when already there); returns
    (metadata, its csv, the 7-mark binned store, the generative truth per gene)."""
    wd = Path(wd)
    meta_csv, store = wd / "meta.csv", wd / "store"
    if (wd / "sim" / "truth.tsv").is_file() and meta_csv.is_file() and (store / "manifest.json").is_file():
        sim = {"truth": wd / "sim" / "truth.tsv"}
    else:
        sim = simulate(wd / "sim", SimConfig(span_mb=span_mb))
        genes = add_labels(prepare_genes(sim["gtf"], chrom_sizes=sim["sizes"]), sim["expression"], "SIM")
        meta = assemble_metadata(gene_neighbors(genes, read_interactions(sim["pchic"])), "SIM")
        write_table(meta, meta_csv)
        from chromoformer.data import read_metadata

        build_signal_store(gene_regions(read_metadata(meta_csv), 40000), [sim[f"bam_{m}"] for m in MARKS],
                           store, marks=MARKS)
    truth = pd.read_csv(sim["truth"], sep="\t").set_index("gene_id")
    return pd.read_csv(meta_csv), meta_csv, store, truth
