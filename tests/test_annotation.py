"""Annotations as users have them: GTF, gene+exon GTF, GFF3 (GENCODE/Ensembl/RefSeq), UCSC tables, BED12.

Small hand-made files with exactly known TSSs, plus the real GENCODE and Ensembl GTF
subsets that pyranges ships (skipped when pyranges is absent).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from chromoformer.errors import AnnotationError
from chromoformer.preprocess.annotation import read_transcripts, sniff
from chromoformer.preprocess.genes import genes_from_transcripts, prepare_genes

# gene A (+): transcripts 1001-5000 and 2001-9000 (1-based) -> longest is T2, TSS 2000 (0-based)
# gene B (-): transcripts 100001-130000 and 100001-110000 -> longest T3, TSS 129999
GTF = """\
chr1\tsrc\tgene\t1001\t9000\t.\t+\t.\tgene_id "A"; gene_type "protein_coding"; gene_name "GA";
chr1\tsrc\ttranscript\t1001\t5000\t.\t+\t.\tgene_id "A"; transcript_id "T1"; transcript_type "protein_coding";
chr1\tsrc\texon\t1001\t1200\t.\t+\t.\tgene_id "A"; transcript_id "T1"; transcript_type "protein_coding";
chr1\tsrc\texon\t4001\t5000\t.\t+\t.\tgene_id "A"; transcript_id "T1"; transcript_type "protein_coding";
chr1\tsrc\ttranscript\t2001\t9000\t.\t+\t.\tgene_id "A"; transcript_id "T2"; transcript_type "protein_coding";
chr1\tsrc\texon\t2001\t2500\t.\t+\t.\tgene_id "A"; transcript_id "T2"; transcript_type "protein_coding";
chr1\tsrc\texon\t8001\t9000\t.\t+\t.\tgene_id "A"; transcript_id "T2"; transcript_type "protein_coding";
chr5\tsrc\ttranscript\t100001\t130000\t.\t-\t.\tgene_id "B"; transcript_id "T3"; transcript_type "protein_coding";
chr5\tsrc\texon\t100001\t101000\t.\t-\t.\tgene_id "B"; transcript_id "T3"; transcript_type "protein_coding";
chr5\tsrc\texon\t129001\t130000\t.\t-\t.\tgene_id "B"; transcript_id "T3"; transcript_type "protein_coding";
chr5\tsrc\ttranscript\t100001\t110000\t.\t-\t.\tgene_id "B"; transcript_id "T4"; transcript_type "protein_coding";
chr5\tsrc\texon\t100001\t110000\t.\t-\t.\tgene_id "B"; transcript_id "T4"; transcript_type "protein_coding";
chr5\tsrc\ttranscript\t500001\t501000\t.\t+\t.\tgene_id "L"; transcript_id "T5"; transcript_type "lncRNA";
"""
WANT = {"A": ("chr1", 2000, "+", {2000, 1000}), "B": ("chr5", 129999, "-", {129999, 109999})}
SIZES = {"chr1": 1_000_000, "chr5": 1_000_000, "chr6": 1_000_000, "chrX": 1_000_000, "chrY": 1_000_000}


def _check(genes: pd.DataFrame, want=WANT) -> None:
    g = genes.set_index("gene_id")
    assert sorted(g.index) == sorted(want)
    for gid, (chrom, tss, strand, all_tss) in want.items():
        assert (g.chrom[gid], int(g.start[gid]), g.strand[gid]) == (chrom, tss, strand), gid
        assert {int(t) for t in g.tss_all[gid].split(";")} == all_tss, gid


def _genes(path: Path, biotype="protein_coding", w_prom=2000) -> pd.DataFrame:
    return genes_from_transcripts(read_transcripts(path, biotype), w_prom=w_prom, chrom_sizes=SIZES)


def test_gtf(tmp_path):
    p = tmp_path / "a.gtf"
    p.write_text(GTF)
    assert sniff(p) == "gtf"
    _check(_genes(p))


def test_gzipped_gtf_with_any_name_is_told_by_content(tmp_path):
    p = tmp_path / "annotation.txt"
    p.write_bytes(gzip.compress(GTF.encode()))
    _check(_genes(p))


def test_gene_and_exon_only_gtf_takes_transcripts_from_exons(tmp_path, caplog):
    p = tmp_path / "exons.gtf"
    p.write_text("".join(x for x in GTF.splitlines(keepends=True) if "\ttranscript\t" not in x))
    _check(_genes(p))
    assert "span of their exons" in caplog.text


def test_gene_only_gtf_takes_gene_lines(tmp_path, caplog):
    p = tmp_path / "genes.gtf"
    p.write_text("".join(x for x in GTF.splitlines(keepends=True) if "\tgene\t" in x))
    tx = read_transcripts(p)
    assert tx.gene_id.tolist() == ["A"] and "gene line taken as one transcript" in caplog.text


def _to_gff3(gtf: str, style: str) -> str:
    """The GTF above as GENCODE-, Ensembl- or RefSeq-style GFF3 (same coordinates)."""
    out = ["##gff-version 3"]
    for line in gtf.splitlines():
        p = line.split("\t")
        a = dict(kv.strip().split(" ", 1) for kv in p[8].strip().strip(";").split(";"))
        a = {k: v.strip('"') for k, v in a.items()}
        if p[2] == "exon":
            continue
        if p[2] == "gene":
            continue
        if style == "gencode":
            attrs = (f"ID={a['transcript_id']};Parent={a['gene_id']};gene_id={a['gene_id']};"
                     f"transcript_id={a['transcript_id']};transcript_type={a['transcript_type']}")
            out.append("\t".join([*p[:2], "transcript", *p[3:8], attrs]))
        elif style == "ensembl":
            out.append("\t".join([*p[:2], "gene", *p[3:8], f"ID=gene:{a['gene_id']};gene_id={a['gene_id']};"
                                  f"Name=G{a['gene_id']}"]))
            kind = "mRNA" if a["transcript_type"] == "protein_coding" else "lnc_RNA"
            out.append("\t".join([*p[:2], kind, *p[3:8], f"ID=transcript:{a['transcript_id']};Parent=gene:"
                                  f"{a['gene_id']};biotype={a['transcript_type']}"]))
        else:  # RefSeq: gene-NAME ids, gene_biotype on the gene, mRNA for coding transcripts
            out.append("\t".join([*p[:2], "gene", *p[3:8], f"ID=gene-{a['gene_id']};Name={a['gene_id']};"
                                  f"gene_biotype={a['transcript_type']}"]))
            if a["transcript_type"] == "protein_coding":
                out.append("\t".join([*p[:2], "mRNA", *p[3:8], f"ID=rna-{a['transcript_id']};Parent=gene-"
                                      f"{a['gene_id']};gene={a['gene_id']}%2Cx"]))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("style", ["gencode", "ensembl", "refseq"])
def test_gff3(tmp_path, style):
    p = tmp_path / "a.gff3"
    p.write_text(_to_gff3(GTF, style))
    assert sniff(p) == "gff3"
    _check(_genes(p))


REFGENE = [  # bin, name, chrom, strand, txStart, txEnd, cdsStart, cdsEnd, exonCount, starts, ends, score, name2, ...
    (1, "NM_1", "chr6", "+", 300000, 310000, "HLA-A"),
    (1, "NM_2", "chr6_apd_hap1", "+", 5000, 15000, "HLA-A"),       # alt copy of a primary gene
    (1, "NM_3", "chr6_cox_hap2", "-", 8000, 9000, "ONLYALT"),      # no primary copy
    (1, "NM_4", "chrX", "+", 200000, 201000, "PARG"),              # pseudoautosomal: chrX and chrY
    (1, "NM_5", "chrY", "+", 200000, 201000, "PARG"),
    (1, "NR_6", "chr1", "-", 400000, 402000, "NONCODING"),
    (1, "NM_7", "chr1", "-", 600000, 610000, "TWOCHROMS"),
    (1, "NM_8", "chr5", "-", 600000, 610000, "TWOCHROMS"),
]


def _refgene(path: Path) -> Path:
    rows = ["\t".join(map(str, (*r[:6], r[4], r[5], 1, f"{r[4]},", f"{r[5]},", 0, r[6], "cmpl", "cmpl", "0,")))
            for r in REFGENE]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_refgene_primary_copies_kept_alt_only_and_par_explicit(tmp_path):
    p = _refgene(tmp_path / "refGene.txt")
    assert sniff(p) == "refgene"
    dropped: list = []
    g = genes_from_transcripts(read_transcripts(p), w_prom=2000, chrom_sizes=SIZES,
                               dropped=dropped).set_index("gene_id")
    assert sorted(g.index) == ["HLA-A", "PARG"]
    assert (g.chrom["HLA-A"], g.start["HLA-A"]) == ("chr6", 300000)
    assert g.chrom["PARG"] == "chrX"
    reasons = dict(dropped)
    assert reasons["ONLYALT"].startswith("only on non-primary contigs")
    assert reasons["TWOCHROMS"].startswith("on several chromosomes")
    assert "NONCODING" not in reasons and "NONCODING" not in g.index  # NR_: not protein coding, not a "drop"
    g_any = genes_from_transcripts(read_transcripts(p, None), w_prom=2000, chrom_sizes=SIZES).set_index("gene_id")
    assert g_any.start["NONCODING"] == 401999


def test_refgene_other_biotype_is_refused(tmp_path):
    with pytest.raises(AnnotationError, match="no biotypes"):
        read_transcripts(_refgene(tmp_path / "r.txt"), "lncRNA")


def test_knowngene_and_bed12(tmp_path, caplog):
    kg = tmp_path / "knownGene.txt"
    kg.write_text("uc001.1\tchr1\t+\t2000\t9000\t2100\t8900\t2\t2000,8000,\t2500,9000,\tP1\tuc001.1\n"
                  "uc002.1\tchr5\t-\t100000\t130000\t100100\t129000\t1\t100000,\t130000,\tP2\tuc002.1\n")
    assert sniff(kg) == "genepred"
    g = _genes(kg).set_index("gene_id")
    assert g.start.to_dict() == {"uc001.1": 2000, "uc002.1": 129999}
    assert "each transcript is its own gene" in caplog.text
    bed6 = tmp_path / "genes6.bed"
    bed6.write_bytes(b"chr1\t2000\t9000\tA\t0\t+\r\nchr5\t100000\t130000\tB\t0\t-\r\n")  # CRLF: strand last
    assert _genes(bed6).set_index("gene_id").start.to_dict() == {"A": 2000, "B": 129999}
    bed = tmp_path / "genes.bed"
    bed.write_text("chr1\t2000\t9000\tA\t0\t+\t2100\t8900\t0\t2\t500,1000,\t0,6000,\n"
                   "chr1\t1000\t5000\tA\t0\t+\t1100\t4900\t0\t1\t4000,\t0,\n"
                   "chr5\t100000\t130000\tB\t0\t-\t100100\t129000\t0\t1\t30000,\t0,\n")
    assert sniff(bed) == "bed"
    g = _genes(bed).set_index("gene_id")
    assert g.start.to_dict() == {"A": 2000, "B": 129999}


@pytest.mark.parametrize(("text", "message"), [
    ("just some words\n", "not a recognised annotation"),
    ("", "not a recognised annotation"),
    ("chr1\tsrc\ttranscript\t500\t100\t.\t+\t.\tgene_id \"A\"; transcript_id \"T\";\n", "start 500 > end 100"),
    ("chr1\tsrc\ttranscript\t100\t500\t.\t*\t.\tgene_id \"A\"; transcript_id \"T\";\n", "strand"),
    ("chr1\tsrc\ttranscript\t100\t500\t.\t+\t.\ttranscript_id \"T\";\n", "without gene_id"),
    ("PAR1 not really parquet", "parquet"),
])
def test_bad_annotations_name_file_and_line(tmp_path, text, message):
    p = tmp_path / "bad.annotation"
    p.write_text(text)
    with pytest.raises(AnnotationError, match=message) as e:
        read_transcripts(p, None)
    assert str(p) in str(e.value)


PYRANGES = Path(pytest.importorskip("pyranges").__file__).parent / "example_data"


@pytest.mark.parametrize("name", ["gencode_human.gtf.gz", "ensembl_human.gtf.gz"])
def test_real_gtf_subsets_match_an_independent_derivation(name, tmp_path):
    """pyranges' real GENCODE v29 / Ensembl subsets: TSS of the longest transcript, by pandas alone;
    the same file without transcript lines (gene + exon only, as shipped with expression tables) agrees."""
    src = PYRANGES / name
    with gzip.open(src, "rt") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    tx = pd.DataFrame([r for r in rows if r[2] == "transcript"])
    attr = tx[8].str.extract(r'gene_id "([^"]+)".*transcript_id "([^"]+)"')
    btype = tx[8].str.extract(r'transcript_(?:type|biotype) "([^"]+)"')[0]
    t = pd.DataFrame({"gene": attr[0], "tid": attr[1], "chrom": tx[0], "start": tx[3].astype(int) - 1,
                      "end": tx[4].astype(int), "strand": tx[6]})[btype.eq("protein_coding").to_numpy()]
    t = t.assign(span=t.end - t.start).sort_values(["gene", "span", "tid"], ascending=[True, False, True])
    first = t.groupby("gene").head(1).set_index("gene")
    want = first.start.where(first.strand == "+", first.end - 1)
    chrom = {c if c.startswith("chr") else f"chr{c}" for c in t.chrom}
    sizes = {**{c: 10**9 for c in chrom}, **{c.removeprefix("chr"): 10**9 for c in chrom}}
    got = genes_from_transcripts(read_transcripts(src), w_prom=40000, chrom_sizes=sizes).set_index("gene_id").start
    want = want[want.index.isin(got.index)]
    assert len(got) >= 10 and len(want) == len(got)
    assert (got.loc[want.index] == want).all()
    exons_only = tmp_path / "exons.gtf"
    exons_only.write_text("".join("\t".join(r) + "\n" for r in rows if r[2] in ("gene", "exon")))
    got2 = genes_from_transcripts(read_transcripts(exons_only), w_prom=40000,
                                  chrom_sizes=sizes).set_index("gene_id").start
    assert got2.sort_index().equals(got.sort_index())


def test_prepare_genes_reports_every_dropped_gene(tmp_path):
    p = _refgene(tmp_path / "refGene.txt")
    sizes = tmp_path / "sizes"
    sizes.write_text("chr6\t1000000\nchrX\t1000000\nchrY\t1000000\nchr1\t1000000\n")
    dropped: list = []
    g = prepare_genes(p, w_prom=2000, chrom_sizes=sizes, dropped=dropped)
    reasons = dict(dropped)
    assert "HLA-A" in set(g.gene_id) and reasons["TWOCHROMS"].startswith("on several")
    assert set(reasons) == {"ONLYALT", "TWOCHROMS"}


def test_a_gtf_name_gets_line_level_errors_for_content_that_fits_nothing(tmp_path):
    p = tmp_path / "bad.gtf.gz"
    p.write_bytes(gzip.compress(b"chr1\tsrc\ttranscript\n"))
    with pytest.raises(AnnotationError, match=r"bad.gtf.gz:1: expected 9 tab-separated GTF columns"):
        read_transcripts(p)


def test_ncbi_refseq_gff3_accessions_become_chromosome_names(tmp_path):
    """NCBI's RefSeq GFF3 uses accessions (NC_000001.11); its 'region' lines say which chromosome each is.
    Scaffolds and alt loci (NT_/NW_) keep their accession and are set aside as non-primary."""
    ncbi = _to_gff3(GTF, "refseq").replace("chr1\t", "NC_000001.11\t").replace("chr5\t", "NC_000005.10\t")
    ncbi = ncbi.replace("##gff-version 3\n", "##gff-version 3\n"
                        "NC_000001.11\tRefSeq\tregion\t1\t248956422\t.\t+\t.\tID=NC_000001.11:1..248956422;"
                        "chromosome=1;genome=chromosome\n"
                        "NC_000005.10\tRefSeq\tregion\t1\t181538259\t.\t+\t.\tID=NC_000005.10:1..181538259;"
                        "chromosome=5;genome=chromosome\n"
                        "NW_000001.1\tRefSeq\tregion\t1\t900000\t.\t+\t.\tID=NW_000001.1:1..900000;"
                        "chromosome=5;genome=genomic;note=alt locus\n"
                        "NW_000001.1\tRefSeq\tmRNA\t5001\t9000\t.\t+\t.\tID=rna-X1;Parent=gene-ALT;gene=ALT\n")
    p = tmp_path / "GCF_000001405.40_GRCh38.p14_genomic.gff"
    p.write_text(ncbi)
    dropped: list = []
    _check(genes_from_transcripts(read_transcripts(p), w_prom=2000, chrom_sizes=SIZES, dropped=dropped))
    assert dict(dropped)["ALT"].startswith("only on non-primary contigs")


def test_accessions_without_region_lines_are_explained(tmp_path):
    p = tmp_path / "acc.gff3"
    p.write_text(_to_gff3(GTF, "refseq").replace("chr1\t", "NC_000001.11\t").replace("chr5\t", "NC_000005.10\t"))
    with pytest.raises(AnnotationError, match="no gene is left.*NC_000001.11.*region"):
        genes_from_transcripts(read_transcripts(p), w_prom=2000, chrom_sizes=SIZES)


def test_exon_lengths_come_from_the_same_single_pass_and_the_copy_kept(tmp_path, monkeypatch):
    """prepare_genes reads the file once; a gene's length is that of the copy whose TSS it keeps
    (refGene's alt-haplotype copies and chrY PAR copies are measured apart, never merged)."""
    import chromoformer.preprocess.annotation as ann
    from chromoformer.preprocess.genes import prepare_genes

    rows = [  # bin, name, chrom, strand, txStart, txEnd, cdsStart, cdsEnd, exonCount, starts, ends, score, name2
        (1, "NM_1", "chr6", "+", 300000, 310000, 300000, 310000, 2, "300000,309000,", "301000,310000,", 0, "HLA-A"),
        (1, "NM_2", "chr6_apd_hap1", "+", 5000, 15000, 5000, 15000, 1, "5000,", "15000,", 0, "HLA-A"),
        (1, "NM_3", "chrX", "+", 200000, 201000, 200000, 201000, 1, "200000,", "200500,", 0, "PARG"),
        (1, "NM_4", "chrY", "+", 200000, 203000, 200000, 203000, 1, "200000,", "203000,", 0, "PARG"),
        (1, "NR_5", "chr6", "+", 300500, 302000, 300500, 302000, 1, "300500,", "302000,", 0, "HLA-A"),  # non-coding
    ]
    p = tmp_path / "refGene.txt"
    p.write_text("".join("\t".join(map(str, (*r, "cmpl", "cmpl", "0,"))) + "\n" for r in rows))
    sizes = tmp_path / "sizes"
    sizes.write_text("".join(f"{c}\t1000000\n" for c in ("chr6", "chrX", "chrY")))
    read = []
    real = ann._lines

    def counted(path):
        for item in real(path):
            read.append(item[0])
            yield item

    monkeypatch.setattr(ann, "_lines", counted)
    g = prepare_genes(p, w_prom=2000, chrom_sizes=sizes).set_index("gene_id")
    assert len(read) <= len(rows) + 1  # one pass, plus the first line that tells the format
    # HLA-A on chr6: [300000, 302000) (NM_1's first exon joined by the NR_ exon, any biotype counts)
    # + [309000, 310000) = 3000; the hap copy's 10 kb is not added
    assert (g.chrom["HLA-A"], g.length["HLA-A"]) == ("chr6", 3000)
    assert (g.chrom["PARG"], g.length["PARG"]) == ("chrX", 500)  # the chrX copy kept, its own length


def test_gff3_exon_lengths_follow_the_transcripts_gene(tmp_path):
    """Ensembl-style GFF3: gene_id only on the gene line, exons Parent= their transcript."""
    from chromoformer.preprocess.annotation import read_annotation

    lines = ["##gff-version 3",
             "chr1\ts\tgene\t1001\t9000\t.\t+\t.\tID=gene:G1;gene_id=ENSG1;biotype=protein_coding",
             "chr1\ts\tmRNA\t1001\t9000\t.\t+\t.\tID=transcript:T1;Parent=gene:G1;biotype=protein_coding",
             "chr1\ts\texon\t1001\t1200\t.\t+\t.\tParent=transcript:T1",
             "chr1\ts\texon\t8001\t9000\t.\t+\t.\tParent=transcript:T1",
             "chr1\ts\ttranscript\t1001\t3000\t.\t+\t.\tID=transcript:T2;Parent=gene:G1;biotype=lncRNA",
             "chr1\ts\texon\t1101\t3000\t.\t+\t.\tParent=transcript:T2"]
    p = tmp_path / "a.gff3"
    p.write_text("\n".join(lines) + "\n")
    tx, lengths = read_annotation(p)
    assert set(tx.gene_id) == {"ENSG1"}
    assert lengths == {("ENSG1", "chr1"): 2000 + 1000}  # [1000, 3000) + [8000, 9000): the lncRNA's exon counts


def _saf(gtf: str = GTF, header: bool = True) -> str:
    """The GTF's exons as featureCounts SAF (GeneID Chr Start End Strand, 1-based like the GTF)."""
    rows = [r.split("\t") for r in gtf.splitlines() if "\texon\t" in r]
    body = "".join("\t".join((r[8].split('"')[1], r[0], r[3], r[4], r[6])) + "\n" for r in rows)
    return ("GeneID\tChr\tStart\tEnd\tStrand\n" if header else "") + body


@pytest.mark.parametrize(("header", "crlf"), [(True, False), (False, False), (True, True)])
def test_saf_gene_level_tss_and_lengths(tmp_path, caplog, header, crlf):
    """SAF has exons only: a gene's TSS is its 5'-most exon end (A: exon 1001-1200 -> 1000, not the
    GTF's longest-transcript 2000), lengths are exon unions; no biotypes, said in the log."""
    from chromoformer.preprocess.annotation import read_annotation

    p = tmp_path / "genes.saf"
    p.write_bytes(_saf(header=header).replace("\n", "\r\n" if crlf else "\n").encode())  # Windows line ends too
    assert sniff(p) == "saf"
    _check(_genes(p), {"A": ("chr1", 1000, "+", {1000}), "B": ("chr5", 129999, "-", {129999})})
    assert "no biotypes" in caplog.text and "SAF" in caplog.text
    # A: [1000,1200) [2000,2500) [4000,5000) [8000,9000) = 2700; B: [100000,110000) [129000,130000) = 11000
    assert read_annotation(p)[1] == {("A", "chr1"): 2700, ("B", "chr5"): 11000}


def test_saf_alt_par_and_multi_copy_genes(tmp_path):
    """Copies on alt contigs are set aside first, a chrX+chrY gene keeps chrX, and a multi-copy gene
    with exons on both strands of a chromosome (hg38 tRNA clusters) is dropped with its reason."""
    p = tmp_path / "a.saf"
    p.write_text("GeneID\tChr\tStart\tEnd\tStrand\n"
                 "HLA\tchr6\t300001\t301000\t+\nHLA\tchr6_apd_hap1\t5001\t6000\t+\n"
                 "ALT\tNT_167244.1\t1001\t2000\t-\n"
                 "PAR\tchrX\t200001\t200500\t-\nPAR\tchrY\t200001\t203000\t-\n"
                 "TRNA\tchr1\t500001\t500072\t-\nTRNA\tchr1\t700001\t700072\t+\n")
    dropped: list = []
    g = genes_from_transcripts(read_transcripts(p), w_prom=2000, chrom_sizes=SIZES,
                               dropped=dropped).set_index("gene_id")
    assert g.start.to_dict() == {"HLA": 300000, "PAR": 200499}
    assert g.chrom["PAR"] == "chrX"
    reasons = dict(dropped)
    assert set(reasons) == {"ALT", "TRNA"}
    assert reasons["ALT"].startswith("only on non-primary") and reasons["TRNA"] == "on both strands (chr1)"


@pytest.mark.parametrize(("text", "message"), [
    ("GeneID\tChr\tStart\tEnd\tStrand\nA\tchr1\t100\n", r"bad.saf:2: expected 5 tab-separated SAF columns"),
    ("GeneID\tChr\tStart\tEnd\tStrand\nA\tchr1\tx\t200\t+\n", r"bad.saf:2: start/end must be integers"),
    ("A\tchr1\t300\t200\t+\n", r"bad.saf:1: exon of A: start 300 > end 200"),
    ("A\tchr1\t100\t200\t+\nA\tchr1\t100\t200\t.\n", r"bad.saf:2: exon of A: strand"),
    ("GeneID\tChr\tStart\tEnd\tStrand\n", "no transcript features"),
])
def test_bad_saf_names_file_and_line(tmp_path, text, message):
    p = tmp_path / "bad.saf"
    p.write_text(text)
    with pytest.raises(AnnotationError, match=message):
        read_transcripts(p, None)


def test_gff3_children_of_genes_are_transcripts_whatever_their_type(tmp_path):
    """Ensembl/RefSeq GFF3 type non-coding transcripts lnc_RNA, ncRNA, snRNA, pseudogenic_transcript
    (under a 'pseudogene' or 'ncRNA_gene'); CDS/UTR children of a gene and miRNA children of a
    primary_transcript are not transcripts. --biotype any keeps them all, protein_coding the mRNA."""
    lines = ["##gff-version 3",
             "chr1\ts\tgene\t1001\t9000\t.\t+\t.\tID=gene:G1;biotype=protein_coding",
             "chr1\ts\tmRNA\t1001\t9000\t.\t+\t.\tID=transcript:T1;Parent=gene:G1;biotype=protein_coding",
             "chr1\ts\tncRNA_gene\t20001\t23000\t.\t-\t.\tID=gene:G2;biotype=lncRNA",
             "chr1\ts\tlnc_RNA\t20001\t23000\t.\t-\t.\tID=transcript:T2;Parent=gene:G2;biotype=lncRNA",
             "chr1\ts\tpseudogene\t30001\t31000\t.\t+\t.\tID=gene:G3;biotype=processed_pseudogene",
             "chr1\ts\tpseudogenic_transcript\t30101\t31000\t.\t+\t.\tID=transcript:T3;Parent=gene:G3;"
             "biotype=processed_pseudogene",
             "chr1\ts\tgene\t40001\t41000\t.\t+\t.\tID=gene-MIR1;gene_biotype=miRNA",
             "chr1\ts\tprimary_transcript\t40001\t41000\t.\t+\t.\tID=rna-MIR1;Parent=gene-MIR1",
             "chr1\ts\tmiRNA\t40501\t40522\t.\t+\t.\tID=rna-MIR1-5p;Parent=rna-MIR1",
             "chr1\ts\tfive_prime_UTR\t40001\t40100\t.\t+\t.\tParent=gene-MIR1"]
    p = tmp_path / "e.gff3"
    p.write_text("\n".join(lines) + "\n")
    tx = read_transcripts(p, None).set_index("transcript_id")
    assert tx.start.to_dict() == {"T1": 1000, "T2": 20000, "T3": 30100, "MIR1": 40000}
    assert tx.gene_id.to_dict() == {"T1": "G1", "T2": "G2", "T3": "G3", "MIR1": "MIR1"}
    assert read_transcripts(p).index.size == 1  # protein_coding: the mRNA only
    assert read_transcripts(p, "lncRNA").transcript_id.tolist() == ["T2"]
