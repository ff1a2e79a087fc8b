"""The paper's public inputs by name: remote references, the restricted unpickler, the original's pcHi-C
pickles, and sample sheets whose values name remote files (downloads become workflow jobs)."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
import yaml

from chromoformer.cli import main as cli
from chromoformer.errors import FetchError, InteractionError, SampleSheetError
from chromoformer.files.checked import read_plain_pickle
from chromoformer.files.remote import remotes
from chromoformer.preprocess.pchic_pickles import pickles_to_table
from chromoformer.workflow.remote_inputs import roadmap_sheet
from chromoformer.workflow.sheet import check_sheet
from loopback import md5


@pytest.fixture
def bases(loopback, monkeypatch):
    for env, path in (("ROADMAP", "/roadmap"), ("ENCODE", "/encode"), ("PCHIC", "/pchic"), ("GENCODE", "/gencode"),
                      ("UCSC", "/ucsc")):
        monkeypatch.setenv(f"CHROMOFORMER_{env}_URL", loopback.url + path)
    return loopback


def test_each_reference_names_its_file(bases):
    u = bases.url
    (r,) = remotes("roadmap:E003/H3K4me3")
    assert (r.name, r.urls) == ("E003-H3K4me3.tagAlign.gz",
                                (f"{u}/roadmap/data/byFileType/alignments/consolidated/E003-H3K4me3.tagAlign.gz",))
    (r,) = remotes("roadmap-expression:E116")
    assert r.urls == (f"{u}/roadmap/data/byDataType/rna/expression/57epigenomes.RPKM.pc.gz",)
    assert [x.urls[0] for x in remotes("pchic:GM")] == [f"{u}/pchic/GM_frag2neighbors.pickle",
                                                        f"{u}/pchic/GM_pair2score.pickle"]
    assert remotes("gencode:v19")[0].urls == (f"{u}/gencode/release_19/gencode.v19.annotation.gtf.gz",)
    assert remotes("ucsc:hg19/chrom.sizes")[0].urls == (f"{u}/ucsc/hg19/bigZips/hg19.chrom.sizes",)
    (r,) = remotes({"url": "https://x.org/a/b/sample.bw", "md5": "A" * 32})
    assert (r.name, r.md5) == ("sample.bw", "a" * 32)
    for bad, said in (("roadmap:E3/H3K4me3", "not a known remote reference"), ({"url": "https://x/y.bw", "md5": "1"},
                      "is not 32 hex digits"), ({"url": "https://x/y.bw", "sha": "1"}, "unknown key"),
                      ("https://x.org/a/..", "is not a safe name"), ("https://x.org/", "is not a safe name")):
        with pytest.raises(FetchError, match=said):
            remotes(bad)


def test_encode_metadata_gives_the_file_and_its_md5(bases):
    data = b"BAM" * 100
    bases.add_json("/encode/files/ENCFF000AAA/", {"href": "/files/ENCFF000AAA/@@download/ENCFF000AAA.bam",
                                                 "md5sum": md5(data), "file_size": len(data)})
    (r,) = remotes("encode:ENCFF000AAA")
    assert (r.name, r.md5, r.size) == ("ENCFF000AAA.bam", md5(data), 300)
    assert r.urls == (f"{bases.url}/encode/files/ENCFF000AAA/@@download/ENCFF000AAA.bam",)
    bases.add_json("/encode/files/ENCFF000BBB/", {"href": "/files/x/../../etc/passwd", "md5sum": md5(data)})
    with pytest.raises(FetchError, match="is not a file of ENCFF000BBB"):
        remotes("encode:ENCFF000BBB")
    bases.add("/encode/files/ENCFF000CCC/", b"<html>not json</html>")
    with pytest.raises(FetchError, match="not the ENCODE portal's file metadata"):
        remotes("encode:ENCFF000CCC")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if unpickled by pickle.load


def test_the_restricted_unpickler_reads_plain_data_and_runs_nothing(tmp_path):
    plain = {"chr1:0-100": {"chr1:500-700", "chr1:900-950"}, ("a", "b"): [1, 2.5, None, True, b"x"]}
    (tmp_path / "ok.pickle").write_bytes(pickle.dumps(plain, protocol=3))  # protocol 3 pickles sets by a global
    assert read_plain_pickle(tmp_path / "ok.pickle", InteractionError, "x") == plain
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pickle").write_bytes(pickle.dumps({"k": _Payload(str(marker))}))
    with pytest.raises(InteractionError, match=r"evil.pickle: not a plain-data pickle \(UnpicklingError: refused "
                                               r"global io.open"):
        read_plain_pickle(tmp_path / "evil.pickle", InteractionError, "x")
    assert not marker.exists()
    (tmp_path / "cut.pickle").write_bytes(pickle.dumps(plain)[:20])
    with pytest.raises(InteractionError, match="not a plain-data pickle"):
        read_plain_pickle(tmp_path / "cut.pickle", InteractionError, "x")


def test_the_originals_pickles_become_an_interaction_table(tmp_path):
    f2n = {"chr1:1000-2000": {"chr1:5000-6000", "chr1:9000-9500", "chr1:7000-7100"}, "chr2:0-50": {"chr2:100-200"}}
    p2s = {("chr1:1000-2000", "chr1:5000-6000"): 2.5, ("chr1:1000-2000", "chr1:9000-9500"): 1.2,
           ("chr2:0-50", "chr2:100-200"): 7}
    (tmp_path / "f.pickle").write_bytes(pickle.dumps(f2n))
    (tmp_path / "p.pickle").write_bytes(pickle.dumps(p2s))
    assert pickles_to_table(tmp_path / "f.pickle", tmp_path / "p.pickle", tmp_path / "t.tsv") == 3
    t = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert t.values.tolist() == [["chr1", 1000, 2000, "chr1", 5000, 6000, 2.5],
                                 ["chr1", 1000, 2000, "chr1", 9000, 9500, 1.2],
                                 ["chr2", 0, 50, "chr2", 100, 200, 7.0]]  # the unscored pair is left out
    (tmp_path / "bad.pickle").write_bytes(pickle.dumps({"chr1:2000-1000": {"chr1:1-2"}}))
    with pytest.raises(InteractionError, match="'chr1:2000-1000' is not chrom:start-end with start < end"):
        pickles_to_table(tmp_path / "bad.pickle", tmp_path / "p.pickle", tmp_path / "t2.tsv")
    assert not (tmp_path / "t2.tsv").exists()


def test_a_sheet_naming_public_files_gets_one_download_job_per_file(bases, tmp_path):
    sheet = roadmap_sheet(["E003", "E016"], epochs=2)  # both use H1's pcHi-C and the one RPKM matrix
    sheet["expression"] = "roadmap-expression:E003"
    sheet["samples"]["E016"]["expression_column"] = "E016"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sheet))
    r = check_sheet(tmp_path / "s.yaml")
    e003 = r["samples"]["E003"]
    assert e003["signals"]["H3K4me3"] == "downloads/roadmap/E003-H3K4me3.tagAlign.gz"
    assert e003["interactions"] == r["samples"]["E016"]["interactions"] == "pchic/H1.tsv"
    assert r["expression"] == "downloads/roadmap/57epigenomes.RPKM.pc.gz" and e003["expression_column"] == "E003"
    assert r["samples"]["E016"]["expression_column"] == "E016"
    assert len(r["downloads"]) == 2 * 7 + 1 + 2 + 1 + 1  # signals, matrix, H1's two pickles, genes, sizes
    assert r["pchic_tables"] == {"H1": ["downloads/pchic/H1_frag2neighbors.pickle",
                                        "downloads/pchic/H1_pair2score.pickle"]}
    with pytest.raises(SampleSheetError, match="--preset roadmap: E999: the paper's epigenomes are E003"):
        roadmap_sheet(["E999"])
    sheet["samples"]["E016"]["signals"]["H3K9ac"] = {"url": "https://a.org/x/E016-H3K9ac.tagAlign.gz"}
    sheet["samples"]["E003"]["signals"]["H3K9ac"] = "https://b.org/E016-H3K9ac.tagAlign.gz"
    (tmp_path / "clash.yaml").write_text(yaml.safe_dump(sheet))
    with pytest.raises(SampleSheetError, match=r"two different remote files would both be downloads/url/E016-H3K9ac"):
        check_sheet(tmp_path / "clash.yaml")
    sheet["samples"]["E003"]["signals"]["H3K9ac"] = "roadmap:E3/x"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(sheet))
    with pytest.raises(SampleSheetError, match="sample E003, mark H3K9ac: 'roadmap:E3/x': not a known remote"):
        check_sheet(tmp_path / "bad.yaml")
    sheet["downloads"] = {"downloads/x/y": {"urls": ["file:///etc/passwd"]}}
    (tmp_path / "planted.yaml").write_text(yaml.safe_dump(sheet))
    with pytest.raises(SampleSheetError, match="'downloads' and 'pchic_tables' are written by chromoformer workflow"):
        check_sheet(tmp_path / "planted.yaml")


def test_preprocess_fetch_places_a_download_where_the_workflow_wants_it(bases, tmp_path):
    data = b"chr1\t0\t36\tN\t1000\t+\n" * 50
    url = bases.add("/roadmap/x.tagAlign.gz", data)
    out = tmp_path / "wf" / "downloads" / "roadmap" / "x.tagAlign.gz"
    cli(["preprocess", "fetch", "--url", url, "--md5", md5(data), "--size", str(len(data)), "-o", str(out)])
    assert out.read_bytes() == data and out.with_name("x.tagAlign.gz.sha256").is_file()
    cli(["preprocess", "fetch", "--url", url, "-o", str(out)])  # done: nothing fetched again
    assert len(bases.requests) == 1
