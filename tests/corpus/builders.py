"""Builders shared by the bad-input corpus: the inputs every case edits, and one helper per input kind."""

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
from chromoformer.data.sources import build_store_from_npy
from chromoformer.data.synthetic import write_synthetic_dataset
from fault_inputs import (
    TINY,
    Case,
    Inputs,
    copy,
    edit_csv,
    first_promoter_array,
    npy_with,
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


def demo_inputs_in(root: Path, demo: Path) -> Inputs:
    """The real Roadmap E003 demo genes (first 16, spread over the 4 splits) and their npy files."""
    d = pd.read_csv(demo / "demo_meta.csv").head(16)
    d["split"] = [i % 4 + 1 for i in range(len(d))]
    meta = root / "meta.csv"
    d.to_csv(meta, index=False)
    # a copy: some cases point a command's output at its inputs, and a regression must never touch shared/
    npy = Path(shutil.copytree(demo / "demo_data", root / "demo_data"))
    return make_inputs(root, meta, npy)


def synthetic_inputs_in(root: Path) -> Inputs:
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
