"""The layout of every output folder: each file's name is spelled here and nowhere else.

A run directory (:class:`RunPaths`, written by training), an evaluation folder (:class:`EvaluationFiles`), an
interpretation folder (:class:`InterpretationFiles`), a report (:class:`ReportFiles`), a comparison
(:class:`CompareFiles`), browser tracks (:class:`TrackFiles`), a workflow directory (:class:`WorkflowFiles`)
and the demo (:class:`DemoFiles`). Table columns live beside their writers' readers: the predictions csv in
:mod:`chromoformer.files.predictions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from chromoformer.files.atomic import remove_stale_temps
from chromoformer.files.names import check_name, file_component, inside


@dataclass(frozen=True)
class RunPaths:
    """Files of one training run.

    ``-o DIR`` gives ``DIR/{last.pt, best.pt, metrics.tsv, ...}``; ``-o DIR/NAME.pt`` (the
    original's layout, several folds in one folder) gives ``DIR/NAME.pt``,
    ``DIR/NAME.best.pt``, ``DIR/NAME.metrics.tsv``, ... so folds never overwrite each other.
    """

    run_dir: Path
    last: Path
    best: Path
    metrics: Path
    val_predictions: Path
    log: Path
    config: Path
    lock: Path

    @classmethod
    def from_output(cls, out: Path) -> RunPaths:
        if out.suffix == ".pt":
            d, stem = out.parent, out.stem
            return cls(d, out, d / f"{stem}.best.pt", d / f"{stem}.metrics.tsv", d / f"{stem}.val_predictions.csv",
                       d / f"{stem}.train.log", d / f"{stem}.config.yaml", d / f".{stem}.lock")
        return cls(out, out / "last.pt", out / "best.pt", out / "metrics.tsv", out / "val_predictions.csv",
                   out / "train.log", out / "config.yaml", out / ".lock")

    @property
    def trackers(self) -> Path:
        """The folder the experiment trackers (``--logger``) write into: one sub-folder each
        (:data:`TRACKER_FILES`), and ``ids.json``, the tracker runs a resumed run continues."""
        if self.last.suffix == ".pt" and self.last.name != "last.pt":
            return self.run_dir / f"{self.last.stem}.trackers"
        return self.run_dir / "trackers"

    def staged_best(self, epoch: int) -> Path:
        """Where an epoch's new best checkpoint waits until that epoch is committed."""
        return self.best.with_name(f".{self.best.name}.epoch{epoch}")

    def staged_bests(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every staged best checkpoint present (see :meth:`staged_best`)."""
        pattern = re.compile(rf"\.{re.escape(self.best.name)}\.epoch(\d+)")
        found = ((pattern.fullmatch(p.name), p) for p in self.best.parent.glob(f".{self.best.name}.epoch*"))
        return [(int(m.group(1)), p) for m, p in found if m]

    def outputs(self) -> tuple[Path, ...]:
        return self.last, self.best, self.metrics, self.val_predictions, self.config


# Inside RunPaths.trackers: each tracker's own folder (and the csv tracker's two files), and the ids file.
TRACKER_FILES = {"tensorboard": "tensorboard", "mlflow": "mlruns", "wandb": "wandb", "csv": "csv",
                 "csv_metrics": "csv/metrics.csv", "csv_hparams": "csv/hparams.yaml", "ids": "ids.json"}


def clean_leftovers(p: RunPaths, staged: bool = False) -> None:
    """Remove temporaries of a killed writer of this run (call while holding the run's lock);
    with ``staged``, also best checkpoints of epochs that never committed."""
    for f in (*p.outputs(), p.log):
        remove_stale_temps(f, min_age=0)
    if staged:
        for _, f in p.staged_bests():
            f.unlink()


@dataclass(frozen=True)
class EvaluationFiles:
    """``chromoformer evaluate --out DIR``: pooled held-out metrics, predictions, calibration and plots."""

    METRICS = "metrics.tsv"

    dir: Path

    @property
    def metrics(self) -> Path:
        return self.dir / self.METRICS

    @property
    def oof_predictions(self) -> Path:
        return self.dir / "oof_predictions.csv"

    @property
    def calibration(self) -> Path:
        return self.dir / "calibration.tsv"

    @property
    def temperature(self) -> Path:
        return self.dir / "temperature.json"

    @property
    def roc_pr(self) -> Path:
        return self.dir / "roc_pr.png"

    @property
    def scatter(self) -> Path:
        return self.dir / "scatter.png"

    @property
    def reliability(self) -> Path:
        return self.dir / "reliability.png"

    def tables(self) -> tuple[Path, ...]:
        """The tables an evaluation writes (a folder holding any other file is not an evaluation's)."""
        return self.metrics, self.oof_predictions, self.calibration, self.temperature


@dataclass(frozen=True)
class InterpretationFiles:
    """``chromoformer interpret -o DIR``: the record, the tables, the arrays and per-gene plots."""

    dir: Path

    @property
    def record(self) -> Path:
        return self.dir / "interpret.json"

    @property
    def perturbation(self) -> Path:
        return self.dir / "perturbation.tsv"

    @property
    def attention(self) -> Path:
        return self.dir / "attention.tsv"

    @property
    def attributions(self) -> Path:
        return self.dir / "attributions.npz"

    @property
    def difference(self) -> Path:
        """Differential task: per gene, cell, region and mark, the attribution of the predicted fold change."""
        return self.dir / "difference.tsv"

    def plot(self, kind: str, gene_id: str) -> Path:
        """``attribution``, ``attention`` or (differential task) ``difference`` PNG of one gene (its id made a
        safe file name)."""
        return inside(self.dir / f"{kind}_{file_component(gene_id)}.png", self.dir)


@dataclass(frozen=True)
class ReportFiles:
    """``chromoformer report RUN``: ``RUN/report/index.html``, its figures, one page per interpreted gene."""

    dir: Path

    @classmethod
    def of_run(cls, run_dir: Path) -> ReportFiles:
        return cls(run_dir / "report")

    @property
    def index(self) -> Path:
        return self.dir / "index.html"

    @property
    def training_curves(self) -> Path:
        return self.dir / "training_curves.png"

    @property
    def genes(self) -> Path:
        return self.dir / "genes"

    def gene_page(self, gene_id: str) -> Path:
        return inside(self.genes / f"{file_component(gene_id)}.html", self.genes)

    def gene_plot(self, kind: str, gene_id: str) -> Path:
        return inside(self.genes / f"{kind}_{file_component(gene_id)}.png", self.genes)


@dataclass(frozen=True)
class CompareFiles:
    """``chromoformer compare -o DIR``: ``DIR/{model}/fold{k}/`` runs, ``DIR/comparison.tsv`` and its plot."""

    dir: Path

    @property
    def table(self) -> Path:
        return self.dir / "comparison.tsv"

    @property
    def folds(self) -> Path:
        return self.dir / "comparison_folds.tsv"

    @property
    def plot(self) -> Path:
        return self.dir / "comparison.png"

    def run(self, model: str, fold: int) -> Path:
        return self.dir / model / f"fold{fold}"


@dataclass(frozen=True)
class TrackFiles:
    """``chromoformer export -o DIR``: genome-browser files."""

    dir: Path

    @property
    def predictions_bedgraph(self) -> Path:
        return self.dir / "predictions.bedGraph"

    def bigwig(self, column: str) -> Path:
        return self.dir / f"{column}.bw"

    def attribution(self, mark: str) -> Path:
        return self.dir / f"attribution.{check_name(mark, 'mark name', str(self.dir))}.bw"

    @property
    def links_bedpe(self) -> Path:
        return self.dir / "pcre_links.bedpe"

    @property
    def links_interact(self) -> Path:
        return self.dir / "pcre_links.interact"

    @property
    def links_biginteract(self) -> Path:
        return self.dir / "pcre_links.bb"

    @property
    def predictions_bigbed(self) -> Path:
        return self.dir / "predictions.bb"


class WorkflowPattern:
    """The workflow folder's paths as snakemake patterns, named once: the Snakefile takes every path from here
    (``{sample}``, ``{mark}``, ``{fold}`` and ``{pair}`` are its wildcards) and :class:`WorkflowFiles` fills the
    same patterns in."""

    GENES = "genes.tsv"
    GENES_DROPPED = "genes.dropped.tsv"  # every gene left out, and why
    META = "{sample}/meta.csv"
    STORE_PART = "{sample}/store_parts/{mark}"
    STORE = "{sample}/store"
    RUN = "{sample}/runs/fold{fold}"
    TRAIN_DONE = RUN + "/train.done"  # a marker written after training ends (snakemake deletes failed outputs)
    EVALUATION = "{sample}/evaluation"
    METRICS = EVALUATION + "/" + EvaluationFiles.METRICS
    PREDICTIONS = "{sample}/predictions.csv"
    PAIR = "pairs/{pair}"  # a differential pair: the same layout under pairs/<name>/
    PAIR_TRAIN_DONE = PAIR + "/runs/fold{fold}/train.done"
    PAIR_METRICS = PAIR + "/evaluation/" + EvaluationFiles.METRICS
    PAIR_PREDICTIONS = PAIR + "/predictions.csv"
    DOWNLOAD = "downloads/{kind}/{name}"  # a public file the sheet names (chromoformer.workflow.remote_inputs)
    PCHIC_TABLE = "pchic/{tissue}.tsv"  # the original's pcHi-C pickles of a tissue as an interaction table

    @staticmethod
    def benchmark(step: str) -> str:
        """Snakemake's own measurement of a step (wall time, peak RSS): ``benchmarks/{step}.tsv``."""
        return f"benchmarks/{step}.tsv"

    @staticmethod
    def log(step: str) -> str:
        return f"logs/{step}.log"


@dataclass(frozen=True)
class WorkflowFiles:
    """``chromoformer workflow --directory DIR``: per sample ``meta.csv``, ``store/``, ``runs/fold{k}/``,
    ``evaluation/`` and ``predictions.csv`` (:class:`WorkflowPattern` filled in)."""

    dir: Path

    @property
    def resolved_sheet(self) -> Path:
        return self.dir / "samples.resolved.yaml"

    def preset_sheet(self, preset: str) -> Path:
        """The sheet ``chromoformer workflow --preset NAME`` writes (and then runs)."""
        return self.dir / f"{check_name(preset, 'preset', str(self.dir))}.samples.yaml"

    @property
    def lock(self) -> Path:
        return self.dir / ".chromoformer-workflow.lock"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def sample(self, name: str) -> Path:
        return self.dir / check_name(name, "sample name", str(self.dir))

    def _filled(self, pattern: str, sample: str, **wildcards: object) -> Path:
        self.sample(sample)  # the name is checked before it becomes a path
        return self.dir / pattern.format(sample=sample, **wildcards)

    def meta(self, sample: str) -> Path:
        return self._filled(WorkflowPattern.META, sample)

    def store(self, sample: str) -> Path:
        return self._filled(WorkflowPattern.STORE, sample)

    def run(self, sample: str, fold: int) -> RunPaths:
        return RunPaths.from_output(self._filled(WorkflowPattern.RUN, sample, fold=fold))

    def evaluation(self, sample: str) -> EvaluationFiles:
        return EvaluationFiles(self._filled(WorkflowPattern.EVALUATION, sample))

    def predictions(self, sample: str) -> Path:
        return self._filled(WorkflowPattern.PREDICTIONS, sample)


@dataclass(frozen=True)
class DemoFiles:
    """``chromoformer demo -o DIR`` and the reference demo folder it may read."""

    dir: Path

    @property
    def sheet(self) -> Path:
        return self.dir / "samples.yaml"

    @property
    def predictions(self) -> Path:
        return self.dir / "predictions.csv"

    @property
    def reference_predictions(self) -> Path:
        return self.dir / "reference_demo_predictions.csv"

    @staticmethod
    def reference_meta(ref: Path) -> Path:
        return ref / "demo_meta.csv"

    @staticmethod
    def reference_signal(ref: Path) -> Path:
        return ref / "demo_data"


@dataclass(frozen=True)
class StoreFiles:
    """A binned store directory (:mod:`chromoformer.data.store`): the sums, the region index, the manifest."""

    dir: Path

    @property
    def sums(self) -> Path:
        return self.dir / "sums.npy"

    @property
    def regions(self) -> Path:
        return self.dir / "regions.tsv"

    @property
    def manifest(self) -> Path:
        return self.dir / "manifest.json"

    @property
    def lock(self) -> Path:
        """Beside the store, not in it: the lock outlives a rebuild of the directory."""
        return self.dir.parent / f".{self.dir.name}.lock"

    @classmethod
    def names(cls) -> frozenset[str]:
        """The files a store holds (a folder holding anything else is not a store)."""
        f = cls(Path())
        return frozenset(p.name for p in (f.sums, f.regions, f.manifest))

    @classmethod
    def is_store(cls, path: str | Path) -> bool:
        return cls(Path(path)).manifest.is_file()


def npy_file(npy_dir: Path, name: str) -> Path:
    """The original layout's file of one region ``chrom:start-end``: ``npy_dir/chrom:start-end.npy``."""
    return Path(npy_dir) / f"{name}.npy"


def dropped_genes(gene_table: Path) -> Path:
    """Beside ``preprocess genes -o genes.tsv``: the genes left out and why (``genes.dropped.tsv``)."""
    return gene_table.with_name(f"{gene_table.name.split('.')[0]}.dropped.tsv")


@dataclass(frozen=True)
class SimulationFiles:
    """``chromoformer simulate -o DIR`` (and the synthetic npy dataset of the tests and ``demo --quick``)."""

    dir: Path

    @property
    def pchic(self) -> Path:
        return self.dir / "pchic.tsv"

    @property
    def expression(self) -> Path:
        return self.dir / "expression.tsv"

    @property
    def truth(self) -> Path:
        return self.dir / "truth.tsv"

    @property
    def pcre_truth(self) -> Path:
        return self.dir / "pcre_truth.tsv"

    @property
    def sheet(self) -> Path:
        """A ready sample sheet of what was simulated (``chromoformer workflow --config``)."""
        return self.dir / "samples.yaml"

    @property
    def meta(self) -> Path:
        return self.dir / "meta.csv"

    @property
    def npy(self) -> Path:
        return self.dir / "npy"


@dataclass(frozen=True)
class PairSimulationFiles:
    """A simulated pair of cell types: ``DIR/A`` and ``DIR/B`` (each a :class:`SimulationFiles`: meta.csv,
    npy/) and ``DIR/oracle.csv`` (gene_id, oracle_lfc,
    oracle_promoter_lfc, lfc: the noiseless fold change, its promoter term, the observed fold change)."""

    dir: Path

    def cell(self, name: str) -> SimulationFiles:
        return SimulationFiles(self.dir / name)

    @property
    def oracle(self) -> Path:
        return self.dir / "oracle.csv"


@dataclass(frozen=True)
class CachedFile:
    """One file of the download cache (:mod:`chromoformer.files.fetch`): ``root/folder/name``, its sha256 record,
    the partial download it grows from, and the lock its one downloader holds."""

    path: Path

    @classmethod
    def of(cls, root: Path, folder: str, name: str) -> CachedFile:
        return cls(Path(root) / folder / name)

    @property
    def record(self) -> Path:
        return self.path.with_name(f"{self.path.name}.sha256")

    @property
    def part(self) -> Path:
        return self.path.with_name(f"{self.path.name}.part")

    @property
    def lock(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")


def published_checkpoint_name(eid: str, task: str, fold: int) -> str:
    """figshare article 19424807's name of a published checkpoint (:mod:`chromoformer.engine.pretrained`)."""
    return f"chromoformer-{'reg-' if task == 'reg' else ''}reproduction-{eid}-conf1-fold{fold}.pt"


def published_listing_name(article: int, version: int) -> str:
    """The cached figshare listing of one article version."""
    return f"article-{article}-v{version}.json"


def encode_metadata_name(accession: str) -> str:
    """The cached JSON metadata of an ENCODE file (:mod:`chromoformer.files.remote`)."""
    return f"{accession}.json"
