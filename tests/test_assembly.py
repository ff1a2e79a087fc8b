"""One genome assembly across a run's inputs: named from chromosome sizes or annotation headers,
recorded in the store and the checkpoint, and a mixed sheet refused in one line before any job runs."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import yaml

from chromoformer.errors import AnnotationError, SampleSheetError, SignalError
from chromoformer.preprocess.assembly import canonical, from_annotation, from_sizes
from chromoformer.workflow.sheet import check_one_assembly

HG19 = {"chr1": 249_250_621, "chr2": 243_199_373, "chrX": 155_270_560}
HG38 = {"chr1": 248_956_422, "chr2": 242_193_529, "chrX": 156_040_895}


def _bigwig(path, sizes):
    pyBigWig = pytest.importorskip("pyBigWig")
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()))
    c = next(iter(sizes))
    bw.addEntries([c], [1000], ends=[2000], values=[3.0])
    bw.close()
    return path


def _gtf(path, header):
    path.write_text(header + 'chr1\tt\ttranscript\t50001\t60000\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; '
                    'gene_type "protein_coding"; gene_name "A";\n')
    return path


def test_assembly_named_from_sizes_and_headers(tmp_path):
    assert from_sizes(HG19) == "hg19" and from_sizes(HG38) == "hg38"
    assert from_sizes({"1": 248_956_422}) == "hg38"  # Ensembl naming
    assert from_sizes({"chr1": 1_000_000}) is None and from_sizes({}) is None
    assert from_sizes({"chr1": 249_250_621, "chr2": 242_193_529}) is None  # contradictory: not named
    assert canonical("GRCh38.p14") == "hg38" and canonical("GRCh37") == "hg19"
    assert canonical("mySpecies1") == "myspecies1"
    cases = {"#!genome-build GRCh38.p14\n": "hg38", "##description: evidence-based annotation of the human genome "
             "(GRCh37), version 19\n": "hg19", "##gff-version 3\n#!genome-build GRCm39\n": "mm39", "": None}
    for i, (header, want) in enumerate(cases.items()):
        assert from_annotation(_gtf(tmp_path / f"a{i}.gtf", header)) == want


def test_inputs_of_two_assemblies_are_one_line_errors(tmp_path):
    a = _gtf(tmp_path / "a.gtf", "#!genome-build GRCh38.p14\n")
    bw19, bw38 = _bigwig(tmp_path / "h19.bw", HG19), _bigwig(tmp_path / "h38.bw", HG38)
    assert check_one_assembly([("ann", a, "annotation"), ("m1", bw38, "signal")], None, "s.yaml") == "hg38"
    with pytest.raises(SampleSheetError, match=r"mixed assemblies: ann \(a.gtf\) is hg38 \(its header\) but m1 "
                                               r"\(h19.bw\) is hg19 \(chr1 is 249,250,621 bp\)"):
        check_one_assembly([("ann", a, "annotation"), ("m1", bw19, "signal")], None, "s.yaml")
    with pytest.raises(SampleSheetError, match=r"m1 .h38.bw. is hg38 .* the sheet says assembly GRCh37 \(hg19\)"):
        check_one_assembly([("m1", bw38, "signal")], "GRCh37", "s.yaml")
    sizes = tmp_path / "hg19.chrom.sizes"
    sizes.write_text("".join(f"{c}\t{n}\n" for c, n in HG19.items()))
    from chromoformer.preprocess.genes import prepare_genes

    with pytest.raises(AnnotationError, match="its header says hg38 but .*hg19.chrom.sizes has hg19"):
        prepare_genes(a, chrom_sizes=sizes)


@pytest.mark.skipif(shutil.which("chromoformer") is None, reason="console script not installed")
def test_mixed_assembly_sheet_is_refused_in_one_line_before_any_job(tmp_path):
    a = _gtf(tmp_path / "a.gtf", "##description: evidence-based annotation of the human genome (GRCh38)\n")
    (tmp_path / "e.tsv").write_text("gene_id\tS\nG1\t1\n")
    (tmp_path / "i.ibed").write_text("bait_chr\tbait_start\tbait_end\totherEnd_chr\totherEnd_start\totherEnd_end\t"
                                     "score\n")
    k4 = str(_bigwig(tmp_path / "k4.bw", HG19))
    sheet = {"annotation": str(a), "expression": "e.tsv", "marks": ["H3K4me3"],
             "samples": {"S": {"interactions": "i.ibed", "signals": {"H3K4me3": k4}}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sheet))
    r = subprocess.run(["chromoformer", "workflow", "--config", str(tmp_path / "s.yaml"), "--directory",
                        str(tmp_path / "wf")], capture_output=True, text=True)
    err = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(err) == 1, r.stderr
    assert "mixed assemblies: the annotation (a.gtf) is hg38" in err[0]
    assert "sample S, mark H3K4me3 (k4.bw) is hg19" in err[0]
    assert not (tmp_path / "wf" / "genes.tsv").exists()


def test_store_and_checkpoint_record_the_assembly(tmp_path):
    from chromoformer.data.marks import MarkView
    from chromoformer.data.metadata import Region
    from chromoformer.preprocess.signals import build_signal_store
    from chromoformer.training.trainer import data_provenance

    bw = _bigwig(tmp_path / "h38.bw", HG38)
    regions = [Region("chr1", 0, 4000)]
    store = build_signal_store(regions, [bw], tmp_path / "st", marks=["H3K4me3"])
    assert store.manifest["assembly"] == "hg38" and store.manifest["contigs"] == {"chr1": HG38["chr1"]}
    np.testing.assert_array_equal(store.region_sums(regions[0], None, "g1")[:, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
                                  + [300.0] * 10 + [0.0] * 20)
    view = MarkView(store, [0], ["H3K4me3"])
    assert data_provenance(view)["assembly"] == "hg38"
    with pytest.raises(SignalError, match="chromosome sizes of hg38, but the assembly given is hg19"):
        build_signal_store(regions, [bw], tmp_path / "st2", marks=["H3K4me3"], assembly="hg19")
    assert not (tmp_path / "st2").exists()
    named = build_signal_store(regions, [bw], tmp_path / "st3", marks=["H3K4me3"], assembly="GRCh38")
    assert named.manifest["assembly"] == "hg38"
