"""Bad-input corpus: every input kind x {missing, empty, truncated, wrong type, wrong shape,
NaN/inf, out of range, inconsistent with another input}.

Each case must end with exit code 2, exactly one line ``chromoformer: error: ...`` that
names the offending file (and the problem), no traceback, and no output under a final
name. A case that exits 0 would be a silently wrong result; a traceback fails the test.
The corpus runs on a synthetic dataset and on the real demo genes (../shared).
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from chromoformer.cli import main
from chromoformer.config import load_config
from chromoformer.data.store_writer import build_store_from_npy
from chromoformer.data.synthetic import write_synthetic_dataset
from fault_inputs import (
    TINY,
    Case,
    Inputs,
    copy,
    edit_csv,
    edit_manifest,
    edit_regions,
    edit_sums,
    first_promoter_array,
    npy_with,
    reseal,
    truncate,
)

GTF_LINES = [
    ("chr1", 1_000_000, 1_010_000, "+", "G1"), ("chr1", 2_000_000, 2_030_000, "-", "G2"),
    ("chr7", 1_500_000, 1_520_000, "+", "G3"), ("chr7", 3_000_000, 3_004_000, "-", "G4"),
    ("chr2", 1_200_000, 1_260_000, "+", "G5"), ("chr9", 2_400_000, 2_401_000, "+", "G6"),
]


def _gtf_text(lines=GTF_LINES) -> str:
    rows = []
    for c, s, e, strand, g in lines:
        attrs = f'gene_id "{g}"; transcript_id "{g}.1"; gene_name "{g}"; transcript_type "protein_coding";'
        rows.append("\t".join([c, "test", "transcript", str(s + 1), str(e), ".", strand, ".", attrs]))
    return "\n".join(rows) + "\n"


def make_inputs(root, meta, npy) -> Inputs:
    cfg = load_config().to_dict() | TINY
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    store = root / "store"
    build_store_from_npy(npy, store)
    run = root / "run"
    main(["train", "-c", str(config), "-m", str(meta), "-d", str(store), "--fold", "1", "-o", str(run),
          "--epochs", "1", "--num-workers", "0"])
    gtf = root / "genes.gtf"
    gtf.write_text(_gtf_text())
    genes = root / "genes.tsv"
    main(["preprocess", "genes", "--annotation", str(gtf), "--out", str(genes)])
    expression = root / "expression.tsv"
    pd.DataFrame({"gene_id": [f"G{i}" for i in range(1, 7)], "S1": [0.5, 3.0, 10.0, 0.0, 7.5, 1.0]}).to_csv(
        expression, sep="\t", index=False)
    interactions = root / "pchic.tsv"
    pd.DataFrame({"bait_chrom": ["chr1", "chr7"], "bait_start": [999_000, 1_499_000],
                  "bait_end": [1_002_000, 1_502_000], "oe_chrom": ["chr1", "chr7"],
                  "oe_start": [1_100_000, 1_700_000], "oe_end": [1_105_000, 1_706_000],
                  "score": [3.2, 2.5]}).to_csv(interactions, sep="\t", index=False)
    reads = root / "reads.bed"
    reads.write_text("".join(f"chr1\t{999_000 + 37 * i}\t{999_100 + 37 * i}\tr{i}\t0\t+\n" for i in range(200)))
    sizes = root / "chrom.sizes"
    sizes.write_text("chr1\t249250621\nchr2\t243199373\nchr7\t159138663\nchr9\t141213431\n")
    return Inputs(meta, npy, store, run / "last.pt", config, run / "val_predictions.csv", gtf, expression,
                  interactions, genes, reads, sizes, root)


@pytest.fixture(scope="module")
def demo_inputs(demo, tmp_path_factory) -> Inputs:
    """The real Roadmap E003 demo genes (first 16, spread over the 4 splits) and their npy files."""
    root = tmp_path_factory.mktemp("corpus-demo")
    d = pd.read_csv(demo / "demo_meta.csv").head(16)
    d["split"] = [i % 4 + 1 for i in range(len(d))]
    meta = root / "meta.csv"
    d.to_csv(meta, index=False)
    # a copy: some cases point a command's output at its inputs, and a regression must never touch shared/
    npy = Path(shutil.copytree(demo / "demo_data", root / "demo_data"))
    return make_inputs(root, meta, npy)


@pytest.fixture(scope="module")
def synthetic_inputs(tmp_path_factory) -> Inputs:
    root = tmp_path_factory.mktemp("corpus")
    meta, npy = write_synthetic_dataset(root / "data", n_genes=8, seed=5)
    return make_inputs(root, meta, npy)


# ---------------------------------------------------------------------------------------------
# Cases. Each takes the valid inputs plus a fresh folder and returns a Case.


def predict(inp: Inputs, meta=None, npy=None, ckpt=None, *extra) -> Case:
    out = inp.out("pred.csv")
    argv = ["predict", "-m", meta or inp.meta, "-d", npy or inp.npy, "-k", ckpt or inp.ckpt, "-o", out, *extra]
    return Case([str(a) for a in argv], (), (out,))


def train(inp: Inputs, meta=None, npy=None, config=None, *extra) -> Case:
    out = inp.out("run")
    argv = ["train", "-c", config or inp.config, "-m", meta or inp.meta, "-d", npy or inp.npy, "--fold", "1",
            "-o", out, "--epochs", "1", "--num-workers", "0", *extra]
    return Case([str(a) for a in argv], (), (out,))


def expect(case: Case, *parts: object) -> Case:
    case.expect = tuple(str(p) for p in parts)
    return case


def meta_case(col: str, value: str, *why: str, row: int = 0, run=predict) -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        m = edit_csv(inp.meta, inp.out("meta.csv"), row, col, value)
        return expect(run(inp, meta=m), m, *why)
    return f


def meta_text(text: str, *why: str) -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        m = inp.out("meta.csv")
        m.write_bytes(text.encode("latin-1"))
        return expect(predict(inp, meta=m), m, *why)
    return f


def npy_case(make: Callable[[np.ndarray], np.ndarray | bytes | None], *why: str, run=predict):
    def f(inp: Inputs) -> Case:
        d, victim = npy_with(inp, "npy", make(first_promoter_array(inp)))
        return expect(run(inp, npy=d), victim.name, *why)
    return f


def store_case(edit: Callable, *why: str, file: str = "") -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        s = edit(copy(inp.store, inp.out("store")))
        return expect(predict(inp, npy=s), s / file if file else s, *why)
    return f


def ckpt_case(make: Callable, *why: str) -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        p = inp.out("model.pt")
        make(inp, p)
        return expect(predict(inp, ckpt=p), p, *why)
    return f


def ckpt_edit(**changes) -> Callable:
    def make(inp: Inputs, p) -> None:
        ck = torch.load(inp.ckpt, weights_only=False)
        for k, v in changes.items():
            if k == "nan":
                ck["net"][v] = ck["net"][v].clone().fill_(float("nan"))
            elif k == "drop":
                del ck["net"][v]
            else:
                ck[k] = v
        torch.save(ck, p)
    return make


def config_case(edit: Callable[[dict], object], *why: str) -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        c = inp.out("config.yaml")
        d = yaml.safe_load(inp.config.read_text())
        text = edit(d)
        c.write_text(text if isinstance(text, str) else yaml.safe_dump(d))
        return expect(train(inp, config=c), c, *why)
    return f


def set_key(path: str, value) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        d[last] = value
    return edit


def cli_case(kind: str, *args: str, why: str) -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        base = train(inp) if kind == "train" else predict(inp)
        argv = list(base.argv)
        if "--epochs" in args and "--epochs" in argv:
            k = argv.index("--epochs")
            del argv[k : k + 2]
        return Case([*argv, *args], (why,), base.absent)
    return f


def evaluate_case(make: Callable[[Inputs], list], *why: str) -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        files = make(inp)
        out = inp.out("eval")
        return Case(["evaluate", "--runs", *map(str, files), "--out", str(out)], tuple(map(str, why)), (out,))
    return f


def pred_file(inp: Inputs, text: str | None = None, col=None, value=None, name="val_predictions.csv"):
    d = inp.out(f"fold{len(list(inp.tmp.glob('fold*')))}")
    d.mkdir()
    p = d / name
    if text is not None:
        p.write_text(text)
    elif col is not None:
        edit_csv(inp.preds, p, 0, col, value)
    else:
        copy(inp.preds, p)
    return p


def genes_case(text: str | bytes, *why: str, name="a.gtf") -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        p = inp.out(name)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        out = inp.out("genes.tsv")
        return Case(["preprocess", "genes", "--annotation", str(p), "--out", str(out)], (str(p), *why), (out,))
    return f


def metadata_step(inp: Inputs, expression=None, interactions=None) -> Case:
    out = inp.out("meta.csv")
    argv = ["preprocess", "metadata", "--genes", inp.genes, "--expression", expression or inp.expression,
            "--eid", "S1", "--interactions", interactions or inp.interactions, "--out", out]
    return Case([str(a) for a in argv], (), (out,))


def table_case(which: str, edit: Callable[[pd.DataFrame], pd.DataFrame | str], *why: str):
    """`preprocess metadata` with its ``which`` table ('expression' or 'interactions') edited."""
    def f(inp: Inputs) -> Case:
        p = inp.out(f"{which}.tsv")
        new = edit(pd.read_csv(getattr(inp, which), sep="\t"))
        if isinstance(new, str):
            p.write_text(new)
        else:
            new.to_csv(p, sep="\t", index=False)
        return expect(metadata_step(inp, **{which: p}), p, *why)
    return f


SAF_HEAD = "GeneID\tChr\tStart\tEnd\tStrand\n"


def featurecounts_case(bad: dict[str, str], *why: str):
    """`preprocess metadata` on a featureCounts table (program line, Geneid..Length, a column named by
    its BAM path, found for --eid S1) with ``bad`` replacing the first gene's Length or count, or the
    sample column's name."""
    def f(inp: Inputs) -> Case:
        d = pd.read_csv(inp.expression, sep="\t")
        column = bad.get("column", "/data/S1.bam")
        rows = [[g, "chr1", "1", "1000", "+", "1000", str(int(10 * v))] for g, v in zip(d.gene_id, d.S1, strict=True)]
        rows[0][5] = bad.get("Length", rows[0][5])
        if "count" in bad:
            rows = [[*r[:6], bad["count"] if i == 0 or bad["count"] == "0" else r[6]] for i, r in enumerate(rows)]
        p = inp.out("counts.txt")
        head = f"# Program:featureCounts v2.0.3\nGeneid\tChr\tStart\tEnd\tStrand\tLength\t{column}\n"
        p.write_text(head + "".join("\t".join(r) + "\n" for r in rows))
        return expect(metadata_step(inp, expression=p), p, *why)
    return f


def gene_table_case(edit: Callable[[pd.DataFrame], pd.DataFrame | str | bytes | None], *why: str):
    """`preprocess metadata` with its genes.tsv edited (None: the file is absent)."""
    def f(inp: Inputs) -> Case:
        p = inp.out("genes.tsv")
        new = edit(pd.read_csv(inp.genes, sep="\t", dtype=str))
        if isinstance(new, bytes):
            p.write_bytes(new)
        elif isinstance(new, str):
            p.write_text(new)
        elif new is not None:
            new.to_csv(p, sep="\t", index=False)
        case = metadata_step(inp)
        argv = [str(p) if a == str(inp.genes) else a for a in case.argv]
        return expect(Case(argv, (), case.absent), p, *why)
    return f


def metadata_with(inp: Inputs, *extra: str, why: str) -> Case:
    case = metadata_step(inp)
    return Case([*case.argv, *extra], (why,), case.absent)


def genes_with(inp: Inputs, *extra: str, why: str) -> Case:
    out = inp.out("genes.tsv")
    return Case(["preprocess", "genes", "--annotation", str(inp.gtf), "--out", str(out), *extra], (why,), (out,))


def signals_with(inp: Inputs, *extra: str, why: str) -> Case:
    out = inp.out("sigstore")
    return Case(["preprocess", "signals", "--meta", str(inp.meta), "--signal", f"H3K4me3={inp.reads}", "--out",
                 str(out), *extra], (why,), (out,))


def _precious(inp: Inputs) -> Path:
    """A user's file in a folder a command is pointed at as its output folder."""
    p = inp.out("mine") / "keep.txt"
    p.parent.mkdir(exist_ok=True)
    p.write_text("keep me\n")
    return p


def _user_metrics(inp: Inputs) -> Path:
    p = inp.out("analysis") / "metrics.tsv"
    p.parent.mkdir(exist_ok=True)
    p.write_text("sample\tauroc\nE003\t0.91\n")
    return p


def _keeps(path: Path, case: Case) -> Case:
    """``case``, also checking that ``path`` (an input) is unchanged after the command."""
    case.keep = {p: p.read_bytes() for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file()}
    return case


def expression_case(edit, *why: str):
    return table_case("expression", edit, *why)


def interactions_case(edit, *why: str):
    return table_case("interactions", edit, *why)


def _bam(path: Path, sizes: Path, n_per_chrom: int) -> Path:
    """A coordinate-sorted, indexed BAM of ``n_per_chrom`` 36-bp reads from 999,000 on each chromosome."""
    pysam = pytest.importorskip("pysam")
    sq = [{"SN": c, "LN": int(n)} for c, n in (ln.split() for ln in sizes.read_text().splitlines())]
    with pysam.AlignmentFile(str(path), "wb", header={"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": sq}) as f:
        for tid in range(len(sq)):
            for i in range(n_per_chrom):
                a = pysam.AlignedSegment(f.header)
                a.query_name, a.reference_id, a.reference_start = f"r{tid}_{i}", tid, 999_000 + 7 * i
                a.cigarstring, a.query_sequence, a.mapping_quality = "36M", "A" * 36, 60
                f.write(a)
    pysam.index(str(path))
    return path


def bam_with_another_index(inp: Inputs) -> Case:
    """A BAM beside the index of another BAM (re-created, the old .bai left): reading it is an error."""
    bam = _bam(inp.out("x.bam"), inp.sizes, 50)
    other = _bam(inp.out("other.bam"), inp.sizes, 5000)
    shutil.copy(f"{other}.bai", f"{bam}.bai")
    out = inp.out("sigstore")
    return Case(["preprocess", "signals", "--meta", str(inp.meta), "--signal", f"H3K4me3={bam}", "--out", str(out)],
                (str(bam), "unreadable on chr", "index is another file's", "samtools index"), (out,))


def bigwig_case(value: float, *why: str) -> Callable[[Inputs], Case]:
    """A bigWig over the regions (value 2 per base) with ``value`` at chr1:999,301-999,400."""
    def f(inp: Inputs) -> Case:
        pyBigWig = pytest.importorskip("pyBigWig")
        sizes = [(c, int(n)) for c, n in (ln.split() for ln in inp.sizes.read_text().splitlines())]
        bw_path = inp.out("x.bw")
        bw = pyBigWig.open(str(bw_path), "w")
        bw.addHeader(sizes)
        starts = list(range(998_000, 1_010_000, 100))
        values = [value if s == 999_300 else 2.0 for s in starts]
        bw.addEntries(["chr1"] * len(starts), starts, ends=[s + 100 for s in starts], values=values)
        bw.close()
        out = inp.out("sigstore")
        return Case(["preprocess", "signals", "--meta", str(inp.meta), "--signal", f"H3K4me3={bw_path}", "--out",
                     str(out)], (str(bw_path), *why), (out,))
    return f


BIG_SIZES = "".join(f"chr{c}\t250000000\n" for c in [*range(1, 23), "X", "Y"])


def signals_case(reads: str | bytes | None, *why: str, name="reads.bed", sizes: str | None = None):
    def f(inp: Inputs) -> Case:
        p = inp.out(name)
        if isinstance(reads, bytes):
            p.write_bytes(reads)
        elif reads is not None:
            p.write_text(reads)
        out = inp.out("sigstore")
        argv = ["preprocess", "signals", "--meta", str(inp.meta), "--signal", f"H3K4me3={p}", "--out", str(out)]
        what = p
        if sizes is not None:
            s = inp.out("sizes.txt")
            s.write_text(sizes)
            argv += ["--chrom-sizes", str(s)]
            what = s
        return Case(argv, (str(what), *why), (out,))
    return f


def sheet_case(edit: Callable[[dict], object], *why: str) -> Callable[[Inputs], Case]:
    def f(inp: Inputs) -> Case:
        sheet = {"annotation": str(inp.gtf), "expression": str(inp.expression), "marks": ["H3K4me3"],
                 "samples": {"S1": {"interactions": str(inp.interactions), "signals": {"H3K4me3": str(inp.reads)}}}}
        text = edit(sheet)
        p = inp.out("samples.yaml")
        p.write_text(text if isinstance(text, str) else yaml.safe_dump(sheet))
        return Case(["workflow", "--config", str(p), "--directory", str(inp.out("wf"))], (str(p), *why),
                    (inp.out("wf") / "samples.resolved.yaml",))
    return f


def _pickled(inp: Inputs, p) -> None:
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"net": {}, "x": Payload()}, p)


def pcre_case(neighbors: str, scores: str, *why: str) -> Callable[[Inputs], Case]:
    """Gene 0 with the given neighbors/scores ('{c}' = its chromosome)."""
    def f(inp: Inputs) -> Case:
        d = pd.read_csv(inp.meta, dtype=str, keep_default_na=False)
        d.loc[0, "neighbors"] = neighbors.replace("{c}", d.chrom[0])
        d.loc[0, "scores"] = scores
        m = inp.out("meta.csv")
        d.to_csv(m, index=False)
        return expect(predict(inp, meta=m), f"{m}:2", f"gene {d.gene_id[0]}", *why)
    return f



NAN_NPY = lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x)  # noqa: E731
def _interpretation(inp: Inputs) -> Path:
    """A copy (in the case's tmp) of one valid interpretation of the fixture's checkpoint, made once."""
    import shutil

    from chromoformer.data import read_metadata

    cache = inp.ckpt.parent.parent / "interp"
    if not (cache / "interpret.json").is_file():
        genes = [g.gene_id for g in read_metadata(inp.meta) if g.pcres][:2]
        main(["interpret", "-m", str(inp.meta), "-d", str(inp.npy), "-k", str(inp.ckpt), "-o", str(cache),
              "--ig-steps", "0", "--genes", *genes])
    return Path(shutil.copytree(cache, inp.out("interp")))


def interp_case(command: str, broken: Callable[[Path], object], *why: str) -> Callable[[Inputs], Case]:
    """``report`` or ``export`` (with chromosome sizes) over an interpretation with ``broken`` applied."""
    def f(inp: Inputs) -> Case:
        d = _interpretation(inp)
        broken(d)
        if command == "report":
            run = inp.out("run")
            run.mkdir()
            (run / "metrics.tsv").write_text((inp.ckpt.parent / "metrics.tsv").read_text())
            return Case(["report", str(run), "--interpretation", str(d)], why, (run / "report",))
        out, sizes = inp.out("tracks"), inp.out("sizes.txt")
        sizes.write_text("".join(f"chr{c}\t300000000\n" for c in [*range(1, 23), "X", "Y"]))
        return Case(["export", "-m", str(inp.meta), "-o", str(out), "--interpretation", str(d), "--chrom-sizes",
                     str(sizes)], why, (out,))
    return f


def export_case(edit: Callable[[pd.DataFrame], pd.DataFrame], *why: str, sizes: str | None = None,
                out: str = "tracks") -> Callable[[Inputs], Case]:
    """``export --predictions`` with the prediction csv edited (and chromosome sizes text if given)."""
    def f(inp: Inputs) -> Case:
        from chromoformer.data import read_metadata

        ids = [g.gene_id for g in read_metadata(inp.meta)]
        p = inp.out("pred.csv")
        edit(pd.DataFrame({"gene_id": ids, "prediction": 0.5, "prediction_sd": 0.1})).to_csv(p, index=False)
        argv = ["export", "-m", str(inp.meta), "-o", str(inp.out(out)), "--predictions", str(p)]
        if sizes is not None:
            (inp.out("sizes.txt")).write_text(sizes)
            argv += ["--chrom-sizes", str(inp.out("sizes.txt"))]
        return Case(argv, why, (inp.out(out),))
    return f


def _first(d: pd.DataFrame, **cols) -> pd.DataFrame:
    return d.astype(object).assign(**{c: [v, *d[c][1:]] for c, v in cols.items()})


def _edit_tsv(path: Path, **cols) -> None:
    t = pd.read_csv(path, sep="\t", dtype=str)
    for c, v in cols.items():
        t = t.drop(columns=c) if v is None else t.assign(**{c: [v, *t[c][1:]]})
    t.to_csv(path, sep="\t", index=False)


def _other_genes_npz(d: Path) -> None:
    with np.load(d / "attributions.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["gene_id"] = np.array([f"X{i}" for i in range(len(arrays["gene_id"]))])
    np.savez(d / "attributions.npz", **arrays)


CASES: dict[str, Callable[[Inputs], Case]] = {
    # ---- metadata csv
    "meta missing": lambda i: expect(predict(i, meta=i.out("none.csv")), i.out("none.csv"), "not found"),
    "meta is a directory": lambda i: expect(predict(i, meta=i.tmp), i.tmp, "is a directory"),
    "meta empty": meta_text("", "empty"),
    "meta ragged row": meta_text("gene_id,label,chrom,start,end,strand\nG1,1,chr1,50000,50001,+,extra\n", "fields"),
    "meta header only": meta_text("gene_id,label,chrom,start,end,strand,split\n", "no genes"),
    "meta binary": meta_text("\x00\xff\xfe garbage \x00\n\x01,\x02\n", ""),
    "meta truncated": lambda i: expect(predict(i, meta=_cut_mid_row(i)), i.out("meta.csv"), "fields"),
    "meta missing column": lambda i: expect(predict(i, meta=_drop_col(i, "strand")), "strand"),
    "label 0.7": meta_case("label", "0.7", "label must be an integer"),
    "label 2": meta_case("label", "2", "label must be 0 or 1"),
    "label text": meta_case("label", "yes", "label must be a number"),
    "start float": meta_case("start", "3566667.5", "start must be an integer"),
    "start negative": meta_case("start", "-5", "negative TSS"),
    "start text": meta_case("start", "chr1", "start must be a number"),
    "strand": meta_case("strand", "*", "strand must be"),
    "split 7 (train)": meta_case("split", "7", "split must be 1..4", run=train),
    "split text (train)": meta_case("split", "one", "split must be a number", run=train),
    "split missing (train)": meta_case("split", "", "missing value in column 'split'", run=train),
    "expression nan (reg)": lambda i: expect(train(i, edit_csv(i.meta, i.out("meta.csv"), 0, "expression", "nan"),
                                                   None, None, "--regression"), "expression must be finite"),
    "expression negative (reg)": lambda i: expect(train(i, edit_csv(i.meta, i.out("meta.csv"), 0, "expression",
                                                                    "-1"), None, None, "--regression"),
                                                  "negative expression"),
    "score nan": pcre_case("{c}:3000000-3001000", "nan", "scores must be finite"),
    "score inf": pcre_case("{c}:3000000-3001000", "inf", "scores must be finite"),
    "score text": pcre_case("{c}:3000000-3001000", "high", "scores must be a number"),
    "score negative": pcre_case("{c}:3000000-3001000", "-2", "negative interaction score"),
    "scores count": pcre_case("{c}:3000000-3001000", "1;2", "1 neighbors but 2 scores"),
    "scores without neighbors": meta_case("neighbors", "", "scores given but no neighbors", row=None),
    "neighbors without scores": meta_case("scores", "", "neighbors but no scores", row=None),
    "neighbor reversed": pcre_case("{c}:5000-4000", "2", "empty or reversed"),
    "neighbor malformed": pcre_case("{c}-5000", "2", "malformed interval"),
    "neighbor trans": pcre_case("chrZ:1000-2000", "2", "pCREs are cis"),
    "neighbor too long": pcre_case("{c}:100-50000", "2", "longer than w_max"),
    "too many neighbors": pcre_case(";".join(f"{{c}}:{k * 1000}-{k * 1000 + 500}" for k in range(1, 10)),
                                    ";".join(["2"] * 9), "exceed i_max=8"),
    "duplicate gene": meta_case("gene_id", "SAME", "duplicate gene_id", row=None),
    "empty gene id": meta_case("gene_id", "", "empty gene_id"),
    "eid absent": lambda i: expect(predict(i, None, None, None, "--eid", "E999"), "no rows with eid"),
    "gene near chromosome start": meta_case("start", "100", "within 20000 bp of the chromosome start"),
    "gene region absent from signals": lambda i: expect(predict(i, meta=edit_csv(i.meta, i.out("meta.csv"), 0, "start",
                                                                                "123456789")), "missing npy file",
                                                        f"gene {pd.read_csv(i.meta).gene_id[0]}"),
    # ---- npy files
    "npy zero bytes": npy_case(lambda x: b"", "unreadable npy"),
    "npy truncated": npy_case(lambda x: b"\x93NUMPY\x01\x00v\x00{'descr': '<f2'", "unreadable npy"),
    "npy garbage": npy_case(lambda x: bytes(range(256)) * 4, "unreadable npy"),
    "npy wrong shape": npy_case(lambda x: x[:6], "expected a numeric array of shape (7,"),
    "npy transposed": npy_case(lambda x: x.T.copy(), "expected a numeric array"),
    "npy object dtype": npy_case(lambda x: np.array([["a"] * 3] * 7, dtype=object), "unreadable npy"),
    "npy string dtype": npy_case(lambda x: np.full(x.shape, "a"), "expected a numeric array"),
    "npy complex": npy_case(lambda x: x.astype(np.complex64), "expected a numeric array"),
    "npy nan": npy_case(NAN_NPY, "NaN or infinite"),
    "npy inf": npy_case(lambda x: x + np.inf, "NaN or infinite"),
    "npy negative": npy_case(lambda x: x - 1, "negative values"),
    "npy nan (train store build)": npy_case(NAN_NPY, "NaN or infinite", run=train),
    "npy nan (DataLoader worker)": npy_case(NAN_NPY, "NaN or infinite",
                                            run=lambda i, npy: predict(i, None, npy, None, "--num-workers", "1")),
    "npy missing": npy_case(lambda x: None, "missing npy file"),
    "npy dir missing": lambda i: expect(predict(i, npy=i.out("nope")), i.out("nope"), "not found"),
    # ---- binned store
    "store regions swapped": store_case(lambda s: _swap_rows(s), "checksum", file="regions.tsv"),
    "store offset past end": store_case(lambda s: reseal(edit_regions(s, 2, offset=10**9)), "do not tile"),
    "store negative length": store_case(lambda s: reseal(edit_regions(s, 1, length=-5)), "do not tile"),
    "store length vs name": store_case(lambda s: reseal(edit_regions(s, 0, length=39900)), "do not tile"),
    "store base edited": store_case(lambda s: edit_manifest(s, base=50), "edited", file="manifest.json"),
    "store base edited, resealed": store_case(lambda s: reseal(edit_manifest(s, base=200)), "do not tile"),
    "store marks reordered": store_case(lambda s: edit_manifest(s, marks=_marks(s)[::-1]), "edited"),
    "store marks reordered, resealed": store_case(lambda s: reseal(edit_manifest(s, marks=_marks(s)[::-1])),
                                                  "differ from the model's", "order"),
    "store n_feats edited": store_case(lambda s: reseal(edit_manifest(s, n_feats=6, marks=_marks(s)[:6])),
                                       "expected float32"),
    "store nan sums": store_case(lambda s: edit_sums(s, np.nan), "checksum", file="sums.npy"),
    "store nan sums, resealed": store_case(lambda s: reseal(edit_sums(s, np.nan)), "NaN, infinite or negative"),
    "store negative sums, resealed": store_case(lambda s: reseal(edit_sums(s, -3.0)), "NaN, infinite or negative"),
    "store sums truncated": store_case(lambda s: truncate(s / "sums.npy", s / "sums.npy", 0.7) and s, "checksum"),
    "store sums truncated, resealed": store_case(lambda s: reseal(truncate(s / "sums.npy", s / "sums.npy",
                                                                           0.7).parent), "unreadable"),
    "store sums missing": store_case(lambda s: (s / "sums.npy").unlink() or s, "missing from the store"),
    "store regions missing": store_case(lambda s: (s / "regions.tsv").unlink() or s, "missing from the store"),
    "store manifest not json": store_case(lambda s: (s / "manifest.json").write_text("{oops") and s,
                                          "not valid JSON"),
    "store manifest empty object": store_case(lambda s: (s / "manifest.json").write_text("{}") and s,
                                              "not a chromoformer binned store"),
    "store old version": store_case(lambda s: edit_manifest(s, version=1), "version 1"),
    "store manifest no checksums": store_case(lambda s: edit_manifest(s, sha256=None), "checksums"),
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
    # ---- config
    "config missing": lambda i: expect(train(i, config=i.out("none.yaml")), "not found"),
    "config empty": config_case(lambda d: "", "expected a mapping"),
    "config not yaml": config_case(lambda d: "embed: [unclosed\n", "invalid YAML"),
    "config binary": lambda i: expect(train(i, config=_binary(i)), "not a text"),
    "config unknown key": config_case(set_key("embed.dropout", 0.1), "unknown config key"),
    "config missing key": config_case(lambda d: d.pop("gamma"), "missing config key"),
    "config lr text": config_case(set_key("lr", "fast"), "lr must be a number"),
    "config lr nan": config_case(set_key("lr", "nan"), "lr must be a positive number"),
    "config lr negative": config_case(set_key("lr", -1), "lr must be a positive number"),
    "config gamma negative": config_case(set_key("gamma", -0.5), "gamma"),
    "config epochs 0": config_case(set_key("num_epoch", 0), "num_epoch must be >= 1"),
    "config bsz 0": config_case(set_key("bsz", 0), "bsz must be >= 1"),
    "config layers -1": config_case(set_key("embed.n_layers", -1), "embed.n_layers must be >= 1"),
    "config heads 0": config_case(set_key("regulation.n_heads", 0), "regulation.n_heads must be >= 1"),
    "config d_model -16": config_case(set_key("embed.d_model", -16), "embed.d_model must be >= 1"),
    "config d_ff 0": config_case(set_key("pairwise_interaction.d_ff", 0), "d_ff must be >= 1"),
    "config d_head -3": config_case(set_key("d_head", -3), "d_head must be >= 1"),
    "config d_model not divisible": config_case(set_key("regulation.d_model", 15), "not divisible"),
    "config float where int": config_case(set_key("i_max", 8.5), "i_max must be an integer"),
    "config n_feats vs data": lambda i: expect(config_case(set_key("n_feats", 6))(i), "(6,", "got float16 (7,"),
    # ---- command-line values
    "train --epochs 0": cli_case("train", "--epochs", "0", why="--epochs must be >= 1"),
    "train --epochs -3": cli_case("train", "--epochs", "-3", why="--epochs must be >= 1"),
    "train --binsizes 300": cli_case("train", "--binsizes", "2000", "500", "300", why="300"),
    "train --binsizes 0": cli_case("train", "--binsizes", "0", why="--binsizes"),
    "train --fold 5": lambda i: Case([a if a != "1" else "5" for a in train(i).argv], ("--fold", "invalid choice"),
                                     (i.out("run"),)),
    "train --threads 0": cli_case("train", "--threads", "0", why="--threads must be >= 1"),
    "train --use-wandb": cli_case("train", "--use-wandb", why="--use-wandb"),
    "predict -o directory": lambda i: Case([*predict(i).argv[:-1], str(i.tmp)], ("is a directory",)),
    "predict -o under a file": lambda i: Case([*predict(i).argv[:-1], str(i.meta / "pred.csv")],
                                              ("cannot create the folder",)),
    "train -o under a file": lambda i: Case([*train(i).argv[:train(i).argv.index("-o") + 1], str(i.meta / "run"),
                                             "--epochs", "1", "--num-workers", "0"], ("cannot create the folder",)),
    "evaluate --out under a file": lambda i: Case(["evaluate", "--runs", str(i.preds), "--out", str(i.meta / "ev")],
                                                  ("cannot create the folder",)),
    "predict --batch-size 0": cli_case("predict", "--batch-size", "0", why="batch size"),
    "verify --score-tol -1": lambda i: Case(["verify", str(i.ckpt), "-m", str(i.meta), "-d", str(i.npy),
                                             "--score-tol", "-1"], ("--score-tol must be a finite number >= 0",)),
    "verify --metric-tol nan": lambda i: Case(["verify", str(i.ckpt), "--metric-tol", "nan"], ("--metric-tol",)),
    "compare --epochs 0": lambda i: Case(["compare", "-m", str(i.meta), "-d", str(i.npy), "-o", str(i.out("cmp")),
                                          "--epochs", "0"], ("--epochs must be >= 1",), (i.out("cmp"),)),
    "compare --folds twice": lambda i: Case(["compare", "-m", str(i.meta), "-d", str(i.npy), "-o",
                                             str(i.out("cmp")), "--folds", "1", "1"], ("--folds lists 1 twice",),
                                            (i.out("cmp"),)),
    "compare --folds 9": lambda i: Case(["compare", "-m", str(i.meta), "-d", str(i.npy), "-o", str(i.out("cmp")),
                                         "--folds", "9"], ("0..4", "9"), (i.out("cmp"),)),
    "predict -o is the metadata": lambda i: _keeps(i.meta, Case([*predict(i).argv[:-1], str(i.meta)],
                                                              ("would overwrite the input", str(i.meta)))),
    "store -o is the npy dir": lambda i: _keeps(i.npy, Case(["build-store", "-d", str(i.npy), "-o", str(i.npy)],
                                                           ("would overwrite the input",))),
    "store -o holds the npy dir": lambda i: _keeps(i.npy, Case(["build-store", "-d", str(i.npy), "-o",
                                                               str(i.npy.parent)], ("would overwrite the input",))),
    "store -o a folder of other files": lambda i: _keeps(_precious(i), Case(
        ["build-store", "-d", str(i.npy), "-o", str(_precious(i).parent)], ("not a store's", "keep.txt"))),
    "reads --out a folder of other files": lambda i: _keeps(_precious(i), Case(
        ["preprocess", "signals", "--meta", str(i.meta), "--signal", f"H3K4me3={i.reads}", "--out",
         str(_precious(i).parent)], ("not a store's",))),
    "evaluate --out a run dir": lambda i: _keeps(i.ckpt.parent / "metrics.tsv", Case(
        ["evaluate", "--runs", str(i.preds), "--out", str(i.ckpt.parent)], ("a training run directory",))),
    "gtf --out is the annotation": lambda i: _keeps(i.gtf, Case(["preprocess", "genes", "--annotation", str(i.gtf),
                                                               "--out", str(i.gtf)], ("would overwrite the input",))),
    "store merge into a part": lambda i: Case(["preprocess", "merge-stores", "--part", str(i.store), "--out",
                                               str(i.store)], ("would overwrite the part",)),
    "train -o a folder with a metrics.tsv": lambda i: _keeps(_user_metrics(i), Case(
        [*train(i).argv[:train(i).argv.index("-o") + 1], str(_user_metrics(i).parent), "--epochs", "1",
         "--num-workers", "0"], ("already holds metrics.tsv", "choose another --output"))),
    "train --device tpu": cli_case("train", "--device", "tpu", why="not a torch device"),
    "predict --device typo": cli_case("predict", "--device", "cdua", why="not a torch device"),
    **({} if torch.cuda.is_available() else {
        "train --device cuda (none here)": cli_case("train", "--device", "cuda", why="no cuda device is available"),
        "predict --device cuda (none here)": cli_case("predict", "--device", "cuda", why="no cuda device")}),
    "train --exp-id path": lambda i: Case([a for a in train(i).argv if a not in ("-o", str(i.out("run")))]
                                          + ["--exp-id", "../../escape"], ("--exp-id", "a name, not a path"), ()),
    "reads --extend negative": lambda i: signals_with(i, "--extend", "-10", why="--extend must be >= 0"),
    "reads --min-mapq 300": lambda i: signals_with(i, "--min-mapq", "300", why="--min-mapq in 0..255"),
    "reads --w-prom 0": lambda i: signals_with(i, "--w-prom", "0", why="--w-prom must be a positive even"),
    "reads --i-max 0": lambda i: signals_with(i, "--i-max", "0", why="--i-max and --w-max must be >= 1"),
    "reads --assembly empty": lambda i: signals_with(i, "--assembly", "", why="--assembly is empty"),
    # ---- report, inspect, interpret
    "report not a run": lambda i: Case(["report", str(i.tmp)], (str(i.tmp), "not a training run directory")),
    "report missing dir": lambda i: Case(["report", str(i.out("nope"))], ("not found",)),
    "report garbage metrics": lambda i: Case(["report", str(_run_with(i, "metrics.tsv", "\x00\x01 garbage\n"))],
                                             ("metrics.tsv", "not a chromoformer metrics.tsv"),),
    "interp json garbage": interp_case("report", lambda d: (d / "interpret.json").write_text("{not json"),
                                       "interpret.json", "unreadable interpretation record"),
    "interp json wrong": interp_case("report", lambda d: (d / "interpret.json").write_text('{"genes": []}'),
                                     "not a chromoformer interpretation record"),
    "interp json missing": interp_case("export", lambda d: (d / "interpret.json").unlink(), "interpret.json",
                                       "not found"),
    "interp folder missing": interp_case("export", lambda d: __import__("shutil").rmtree(d),
                                         "interpretation folder not found"),
    "interp perturbation missing column": interp_case("report", lambda d: _edit_tsv(d / "perturbation.tsv",
                                                                                   delta=None),
                                                      "perturbation.tsv", "missing column(s) delta"),
    "interp perturbation nan": interp_case("export", lambda d: _edit_tsv(d / "perturbation.tsv", delta="nan"),
                                           "perturbation.tsv:2", "not a finite number"),
    "interp perturbation missing": interp_case("export", lambda d: (d / "perturbation.tsv").unlink(),
                                               "perturbation table", "not found"),
    "interp attention binary": interp_case("report", lambda d: (d / "attention.tsv").write_bytes(b"\xff\x00\x81"),
                                           "attention.tsv", "not a readable attention table"),
    "interp attention weight text": interp_case("export", lambda d: _edit_tsv(d / "attention.tsv", weight="x"),
                                                "attention.tsv:2", "weight 'x' is not a finite number"),
    "interp attributions truncated": interp_case(
        "export", lambda d: (d / "attributions.npz").write_bytes((d / "attributions.npz").read_bytes()[:100]),
        "attributions.npz", "unreadable attribution arrays"),
    "interp attributions missing": interp_case("export", lambda d: (d / "attributions.npz").unlink(),
                                               "attribution arrays", "not found"),
    "interp attributions other genes": interp_case("export", _other_genes_npz, "list different genes"),
    "report metrics without losses": lambda i: Case(["report", str(_run_with(i, "metrics.tsv", "epoch\tfoo\n1\t2\n"))],
                                                    ("metrics.tsv", "train_loss and val_loss"),),
    "export prediction nan": export_case(lambda d: _first(d, prediction="nan"), "pred.csv:2",
                                         "prediction NaN or empty is not a finite number"),
    "export prediction text": export_case(lambda d: _first(d, prediction="high"), "prediction 'high'"),
    "export prediction inf": export_case(lambda d: _first(d, prediction="inf"), "prediction 'inf'"),
    "export sd negative": export_case(lambda d: _first(d, prediction_sd="-0.5"), "prediction_sd '-0.5'", ">= 0"),
    "export prediction duplicate": export_case(lambda d: pd.concat([d, d.head(1)]), "more than one prediction"),
    "export no prediction column": export_case(lambda d: d.drop(columns="prediction"), "expected a 'chromoformer "
                                                                                        "predict' csv"),
    "export sizes too small": export_case(lambda d: d, "past the chromosome's size", "another assembly",
                                          sizes="".join(f"chr{c}\t1000\n" for c in [*range(1, 23), "X", "Y"])),
    "export sizes other naming": export_case(lambda d: d, "not in the chromosome sizes",
                                             sizes="".join(f"{c}\t300000000\n" for c in [*range(1, 23), "X", "Y"])),
    "export out not creatable": export_case(lambda d: d, "cannot create the output directory",
                                            out="pred.csv/tracks"),
    "ckpt text file": ckpt_case(lambda i, p: p.write_text("epoch\ttrain_loss\n1\t0.5\n"),
                                "not a readable torch checkpoint"),
    "inspect garbage": lambda i: Case(["inspect", str(_garbage(i))], ("not a torch checkpoint",)),
    "interpret unknown gene": lambda i: Case(["interpret", "-m", str(i.meta), "-d", str(i.npy), "-k", str(i.ckpt),
                                              "-o", str(i.out("interp")), "--genes", "NOPE"], ("NOPE", "not found"),
                                             (i.out("interp"),)),
    "interpret --ig-steps -1": lambda i: Case(["interpret", "-m", str(i.meta), "-d", str(i.npy), "-k",
                                               str(i.ckpt), "-o", str(i.out("interp")), "--ig-steps", "-1"],
                                              ("--ig-steps",), (i.out("interp"),)),
    "interpret --score-delta nan": lambda i: Case(["interpret", "-m", str(i.meta), "-d", str(i.npy), "-k",
                                                   str(i.ckpt), "-o", str(i.out("interp")), "--score-delta", "nan"],
                                                  ("--score-delta", "finite"), (i.out("interp"),)),
    "simulate span 0": lambda i: Case(["simulate", "--out", str(i.out("sim")), "--span-mb", "0"], ("span_mb",),
                                      (i.out("sim"),)),
    "simulate span negative": lambda i: Case(["simulate", "--out", str(i.out("sim")), "--span-mb", "-3"],
                                             ("span_mb must be > 0",), (i.out("sim"),)),
    "simulate span too long": lambda i: Case(["simulate", "--out", str(i.out("sim")), "--span-mb", "500"],
                                             ("--span-mb 500", "Mb after"), ()),
    "simulate seed negative": lambda i: Case(["simulate", "--out", str(i.out("sim")), "--seed", "-1"],
                                             ("seed >= 0",), (i.out("sim"),)),
    "simulate genome 0 genes": lambda i: Case(["simulate", "--out", str(i.out("sim")), "--genome-scale", "--genes",
                                               "0"], ("genes x fraction must be >= 4",), (i.out("sim"),)),
    "simulate out not creatable": lambda i: Case(["simulate", "--out", str(i.meta / "sim")], (str(i.meta),), ()),
    "store base 0": lambda i: Case(["build-store", "-d", str(i.npy), "-o", str(i.out("st")), "--base", "0"],
                                   ("base bin must be >= 1",), (i.out("st"),)),
    "reads signal without mark": lambda i: Case(["preprocess", "signals", "--meta", str(i.meta), "--signal",
                                                 str(i.reads), "--out", str(i.out("sg"))], ("MARK=FILE",),
                                                (i.out("sg"),)),
    "reads signal empty mark": lambda i: Case(["preprocess", "signals", "--meta", str(i.meta), "--signal",
                                               f"={i.reads}", "--out", str(i.out("sg"))], ("MARK=FILE",),
                                              (i.out("sg"),)),
    "pchic --min-score nan": lambda i: metadata_with(i, "--min-score", "nan", why="--min-score must be finite"),
    "pchic --w-max 0": lambda i: metadata_with(i, "--w-max", "0", why="--w-max >= 1"),
    "pchic --i-max -1": lambda i: metadata_with(i, "--i-max", "-1", why="--i-max >= 1"),
    "pchic --max-distance -1": lambda i: metadata_with(i, "--max-distance", "-1", why="--max-distance must be > 0"),
    "gtf --w-prom 0": lambda i: genes_with(i, "--w-prom", "0", why="--w-prom must be a positive even"),
    "gtf --w-prom odd": lambda i: genes_with(i, "--w-prom", "40001", why="--w-prom must be a positive even"),
    "gtf --biotype empty": lambda i: genes_with(i, "--biotype", "", why="--biotype is empty"),
    "gtf out under a file": lambda i: Case(["preprocess", "genes", "--annotation", str(i.gtf), "--out",
                                            str(i.gtf / "genes.tsv")], ("cannot create the folder", "is a file"), ()),
    # ---- evaluate
    "evaluate missing": evaluate_case(lambda i: [i.out("none.csv")], "not found"),
    "evaluate empty": evaluate_case(lambda i: [pred_file(i, "")], "empty file"),
    "evaluate header only": evaluate_case(lambda i: [pred_file(i, "gene_id,label,score\n")], "header only"),
    "evaluate no score": evaluate_case(lambda i: [pred_file(i, "gene_id,label\nA,1\n")], "missing column(s) score"),
    "evaluate nan score": evaluate_case(lambda i: [pred_file(i, col="score", value="nan")], "not a finite number"),
    "evaluate text label": evaluate_case(lambda i: [pred_file(i, col="label", value="x")], "not a finite number"),
    "evaluate truncated .csv.gz": evaluate_case(lambda i: [_gz_cut(i)], "not a readable prediction table"),
    "evaluate same file twice": evaluate_case(lambda i: [i.preds, i.preds], "given twice"),
    "evaluate gene in two folds": evaluate_case(lambda i: [pred_file(i), pred_file(i)], "more than one file"),
    "evaluate clf with reg": evaluate_case(lambda i: [pred_file(i), pred_file(i, "gene_id,label,score\nZ,3.5,2\n"
                                                                                "Y,1.25,1\n")], "regressor"),
    # ---- annotation
    "gtf missing": lambda i: Case(["preprocess", "genes", "--annotation", str(i.out("x.gtf")), "--out",
                                   str(i.out("g.tsv"))], ("not found",), (i.out("g.tsv"),)),
    "gtf empty": genes_case("", "no transcript features"),
    "gtf start > end": genes_case(_gtf_text([("chr1", 5000, 1000, "+", "GX")]), "start 5001 > end 1000"),
    "gtf coordinates text": genes_case(_gtf_text().replace("\t1000001\t", "\tone\t"), "must be integers"),
    "gtf bad strand": genes_case(_gtf_text().replace("\t+\t", "\t*\t"), "strand"),
    "gtf too few columns": genes_case("chr1\tx\ttranscript\n", "expected 9 tab-separated"),
    "gtf.gz garbage": genes_case(b"\x1f\x8b\x08\x00garbage", "unreadable", name="a.gtf.gz"),
    "gtf.gz truncated": genes_case(gzip.compress(_gtf_text().encode())[:60], "unreadable", name="a.gtf.gz"),
    "refGene garbage": genes_case(b"\x00\x01\x02", "", name="refGene.txt"),
    "saf start text": genes_case(SAF_HEAD + "A\tchr1\tx\t200\t+\n", "a.saf:2", "must be integers", name="a.saf"),
    "saf too few columns": genes_case(SAF_HEAD + "A\tchr1\t100\n", "a.saf:2", "5 tab-separated SAF", name="a.saf"),
    "saf header only": genes_case(SAF_HEAD, "no transcript features", name="a.saf"),
    "saf start > end": genes_case(SAF_HEAD + "A\tchr1\t900\t200\t+\n", "a.saf:2", "start 900 > end 200",
                                  name="a.saf"),
    "saf bad strand": genes_case(SAF_HEAD + "A\tchr1\t21000\t21200\t+\nA\tchr1\t22000\t22100\t*\n", "a.saf:3",
                                 "strand", name="a.saf"),
    "saf only alt contigs": genes_case(SAF_HEAD + "A\tchr6_apd_hap1\t21000\t21200\t+\n", "no gene is left",
                                       "only on non-primary", "chr6_apd_hap1", "primary-assembly", name="a.saf"),
    # ---- expression
    "expression missing column": expression_case(lambda d: d.rename(columns={"S1": "S2"}),
                                                 "no sample column (or row) 'S1'"),
    "expression nan": expression_case(lambda d: d.assign(S1=[np.nan, *d.S1[1:]]), "G1", "not a finite number"),
    "expression negative": expression_case(lambda d: d.assign(S1=[-1.0, *d.S1[1:]]), "G1", ">= 0"),
    "expression text": expression_case(lambda d: d.assign(S1=["high", *d.S1[1:].astype(str)]), "'high'"),
    "expression all zero": expression_case(lambda d: d.assign(S1=0.0), "median expression"),
    "expression empty file": expression_case(lambda d: "", "not a readable expression table: empty file"),
    "expression no gene matches": expression_case(lambda d: d.assign(gene_id=[f"X{i}" for i in range(6)]),
                                                  "none of the"),
    "featurecounts length NA": featurecounts_case({"Length": "NA"}, "G1", "featureCounts Length NaN or empty"),
    "featurecounts length 0": featurecounts_case({"Length": "0"}, "G1", "featureCounts Length"),
    "featurecounts no sample": featurecounts_case({"column": "/data/S9.bam"}, "featureCounts sample columns are",
                                                  "/data/S9.bam"),
    "featurecounts all zero": featurecounts_case({"count": "0"}, "every count is 0"),
    "featurecounts count text": featurecounts_case({"count": "many"}, "G1", "'many'"),
    "genes table missing": gene_table_case(lambda d: None, "gene table not found"),
    "genes table binary": gene_table_case(lambda d: b"\xff\xfe\x00garbage", "not a readable gene table"),
    "genes table empty file": gene_table_case(lambda d: "", "empty file"),
    "genes table header only": gene_table_case(lambda d: d.iloc[:0], "no genes"),
    "genes table missing column": gene_table_case(lambda d: d.drop(columns="tss_all"), "missing column(s) tss_all"),
    "genes table start text": gene_table_case(lambda d: d.assign(start=["x", *d.start[1:]]), ":2:", "G1",
                                              "start 'x' is not an integer"),
    "genes table start float": gene_table_case(lambda d: d.assign(start=["1.5", *d.start[1:]]), "not an integer"),
    "genes table split missing": gene_table_case(lambda d: d.assign(split=[None, *d.split[1:]]),
                                                "split NaN or empty is not an integer"),
    "genes table reversed": gene_table_case(lambda d: d.assign(end=["0", *d.end[1:]]), "end <= start"),
    "genes table bad strand": gene_table_case(lambda d: d.assign(strand=[".", *d.strand[1:]]), "strand"),
    "genes table tss text": gene_table_case(lambda d: d.assign(tss_all=["a;b", *d.tss_all[1:]]), "tss_all"),
    "genes table duplicate": gene_table_case(lambda d: pd.concat([d, d.head(1)]), "appears twice"),
    # ---- interactions
    "pchic empty": interactions_case(lambda d: "", "empty"),
    "pchic header only": interactions_case(lambda d: d.iloc[:0], "empty"),
    "pchic missing column": interactions_case(lambda d: d.drop(columns="score"), "missing column(s) score"),
    "pchic score inf": interactions_case(lambda d: d.assign(score=[np.inf, 2.0]), "score", "finite"),
    "pchic score nan": interactions_case(lambda d: d.assign(score=[np.nan, 2.0]), "score", "finite"),
    "pchic coordinate text": interactions_case(lambda d: d.assign(oe_start=["x", 5]), "oe_start", "integer"),
    "pchic coordinate float": interactions_case(lambda d: d.assign(oe_start=[1.5, 5.0]), "oe_start", "integer"),
    "pchic reversed": interactions_case(lambda d: d.assign(oe_end=[1, 1_706_000]), "reversed"),
    # ---- signals
    "reads missing": signals_case(None, "not found"),
    "reads start > end": signals_case("chr1\t500\t100\n", ":1:", "start 500 > end 100"),
    "reads text coordinate": signals_case("chr1\tfive\t100\n", ":1:", "expected chrom, start, end"),
    "reads.gz garbage": signals_case(b"\x1f\x8b\x08garbage", "unreadable", name="reads.bed.gz"),
    "reads wrong chromosome naming": signals_case("1\t999000\t999100\n", "other 'chr' naming"),
    "bigwig garbage": signals_case(b"not a bigwig", "not a bigWig", name="x.bw"),
    "bam garbage": signals_case(b"not a bam", "not a readable BAM", name="x.bam"),
    "bam with another BAM's index": bam_with_another_index,
    "bigwig negative values": bigwig_case(-1.5, "chr1:999301: value -1.5", "log-ratio"),
    "bigwig infinite value": bigwig_case(np.inf, "chr1:999301: value inf", "finite"),
    "bedgraph values past float32": signals_case("chr1\t999000\t999100\t1e37\n", "values over chr1:", "past float32",
                                                 name="x.bedGraph"),
    "chrom sizes garbage": signals_case("chr1\t999000\t999100\n", ":1:", "positive integer size", "'chr1\\tbig'",
                                        sizes="chr1\tbig\n"),
    "chrom sizes duplicate": signals_case("chr1\t999000\t999100\n", ":3:", "chr1 is listed twice (first on line 1)",
                                          sizes="chr1\t249250621\n# a comment\nchr1\t249250621\n"),
    "chrom sizes empty": signals_case("chr1\t999000\t999100\n", "no chromosome sizes", sizes="# nothing\n"),
    "chrom sizes too small": signals_case("chr1\t999000\t999100\n", "runs past the end", sizes="chr1\t1000\n"
                                          "chr2\t1000\nchr3\t1000\nchr4\t1000\nchr5\t1000\nchr6\t1000\nchr7\t1000\n"
                                          "chr8\t1000\nchr9\t1000\nchr10\t1000\nchr11\t1000\nchr12\t1000\n"),
    "reads past the chromosome end": signals_case("chr1\t999000\t999100\nchr1\t249999990\t250000026\n",
                                                  "reads run to 250000026 on chr1, past its end (250000000 bp",
                                                  "different assemblies", name="reads.bed", sizes=BIG_SIZES),
    "bedgraph past the chromosome end": signals_case("chr1\t0\t100\t1.5\nchr1\t249999990\t250000100\t2\n",
                                                     "intervals run to 250000100 on chr1", "different assemblies",
                                                     name="x.bedGraph", sizes=BIG_SIZES),
    "bedgraph empty": signals_case("track type=bedGraph\n", "the file holds no intervals", name="x.bedGraph"),
    "reads empty": signals_case("# no reads\n", "the file holds no reads"),
    "bedgraph value nan": signals_case("chr1\t0\t100\tnan\n", ":1:", "finite value >= 0", name="x.bedGraph"),
    "bedgraph overlapping": signals_case("chr1\t0\t100\t1\nchr1\t50\t150\t2\n", "overlapping intervals on chr1",
                                         name="x.bedGraph"),
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


def _cut_mid_row(inp: Inputs):
    """The file as a crash while writing it leaves it: cut in the middle of its 4th row."""
    text = inp.meta.read_text()
    lines = text.splitlines(keepends=True)
    cut = sum(len(x) for x in lines[:4]) + 25
    p = inp.out("meta.csv")
    p.write_text(text[:cut])
    return p


def _gz_cut(inp: Inputs):
    d = inp.out("foldgz")
    d.mkdir()
    p = d / "val_predictions.csv.gz"
    p.write_bytes(gzip.compress(inp.preds.read_bytes())[:40])
    return p


def _garbage(inp: Inputs):
    p = inp.out("g.pt")
    p.write_bytes(b"garbage" * 50)
    return p


def _run_with(inp: Inputs, name: str, text: str):
    d = inp.out("run")
    d.mkdir()
    (d / name).write_text(text)
    return d


def _drop_col(inp: Inputs, col: str):
    p = inp.out("meta.csv")
    pd.read_csv(inp.meta).drop(columns=col).to_csv(p, index=False)
    return p


def _trans(inp: Inputs):
    d = pd.read_csv(inp.meta, dtype=str, keep_default_na=False)
    i = next(i for i, n in enumerate(d.neighbors) if n)
    chrom = d.chrom[i]
    d.loc[i, "neighbors"] = d.neighbors[i].replace(f"{chrom}:", "chrZ:", 1)
    p = inp.out("meta.csv")
    d.to_csv(p, index=False)
    return p


def _swap_rows(s):
    lines = (s / "regions.tsv").read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    (s / "regions.tsv").write_text("\n".join(lines) + "\n")
    return s


def _marks(s) -> list[str]:
    return json.loads((s / "manifest.json").read_text())["marks"]


def _ckpt_marks(inp: Inputs):
    p = inp.out("marks.pt")
    ck = torch.load(inp.ckpt, weights_only=False)
    ck["marks"] = ck["spec"]["marks"] = list(reversed(ck["marks"]))  # a model trained on other marks
    torch.save(ck, p)
    return p


def _ckpt_as_reg(inp: Inputs):
    from chromoformer.model import build_model

    p = inp.out("reg.pt")
    ck = torch.load(inp.ckpt, weights_only=False)
    cfg = load_config(inp.config)
    ck["net"] = build_model("reg", cfg).state_dict()
    ck["task"] = ck["spec"]["task"] = "reg"
    torch.save(ck, p)
    return p


def _binary(inp: Inputs):
    p = inp.out("config.yaml")
    p.write_bytes(b"\xff\xfe\x00\x81garbage")
    return p


def run_case(case: Case, capsys) -> tuple[int, list[str], str]:
    try:
        main(case.argv)
        code = 0
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.replace("\r", "\n")
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    return code, errors, err


def check(case: Case, capsys) -> None:
    code, errors, err = run_case(case, capsys)
    assert code == 2, f"exit {code} (0 = a silently wrong result); stderr: {err[-1500:]}"
    assert "Traceback" not in err, err[-3000:]
    assert len(errors) == 1 and errors[0].startswith(("chromoformer: error: ", "chromoformer ")), errors or err[-800:]
    for part in case.expect:
        assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    for p in case.absent:
        assert not p.exists(), f"{p} was written although the command failed"
    for p, content in case.keep.items():
        assert p.is_file() and p.read_bytes() == content, f"the input {p} was changed or removed"


@pytest.mark.parametrize("name", list(CASES))
def test_synthetic(name, synthetic_inputs, tmp_path, capsys):
    inp = Inputs(**{**synthetic_inputs.__dict__, "tmp": tmp_path})
    check(CASES[name](inp), capsys)


DEMO_KINDS = ("meta", "label", "start", "strand", "split", "expression", "score", "scores", "neighbor", "neighbors",
              "too", "duplicate", "empty", "eid", "gene", "npy", "store", "ckpt", "ensemble")


@pytest.mark.parametrize("name", [n for n in CASES if n.split()[0] in DEMO_KINDS])
def test_real_demo(name, demo_inputs, tmp_path, capsys):
    inp = Inputs(**{**demo_inputs.__dict__, "tmp": tmp_path})
    check(CASES[name](inp), capsys)


def test_corpus_counts():
    """The corpus covers every input kind (the closing note reports these counts)."""
    kinds = {name.split()[0] for name in CASES}
    assert {"meta", "npy", "store", "ckpt", "config", "train", "predict", "evaluate", "gtf", "saf", "genes",
            "expression", "featurecounts", "pchic", "reads", "sheet", "interp", "export", "simulate"} <= kinds
    assert len(CASES) >= 150
