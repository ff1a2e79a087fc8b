"""Gene annotations as users have them -> one transcript table.

Readers return ``gene_id, gene_name, transcript_id, chrom, start (0-based), end, strand``:

* GTF (GENCODE, Ensembl): ``transcript`` lines; a GTF with only ``gene`` and ``exon`` lines
  gets its transcripts from the exons (span of each ``transcript_id``), else from the genes;
* GFF3 (GENCODE, Ensembl, RefSeq): ``mRNA``/``transcript`` features and every other child of
  a gene (``lnc_RNA``, ``ncRNA``...), ``key=value`` attributes, gene ids from ``gene_id`` or
  the ``Parent`` gene's ``ID``;
* UCSC tables: refGene (16 columns, ``name2`` = gene), knownGene/genePred (no gene
  column: each transcript is its own gene, logged), BED12/BED6 (``name`` = gene);
* SAF, featureCounts' exon table (``GeneID Chr Start End Strand``, 1-based, e.g. Rsubread's
  in-built RefSeq annotations): no transcripts, so each gene's exons on a contig make one
  transcript spanning them (its 5'-most exon start is the TSS, logged);
* parquet/feather with the transcript columns above.

The format is told from the content, not the file name. gzip is read transparently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pandas as pd

from chromoformer.errors import AnnotationError
from chromoformer.files.checked import open_text, require_file

log = logging.getLogger(__name__)
COLUMNS = ["gene_id", "gene_name", "transcript_id", "chrom", "start", "end", "strand"]
TRANSCRIPT_TYPES = ("transcript", "mRNA")
GENE_TYPES = ("gene", "pseudogene")  # and any '*_gene' (Ensembl's ncRNA_gene)
_GTF_ATTR = re.compile(r'(\S+)\s+"([^"]*)"')
SAF_HEADER = ("geneid", "chr", "start", "end", "strand")


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        with open_text(path) as f:
            for n, line in enumerate(f, 1):
                if line.startswith("#") or not line.strip():
                    continue
                yield n, line.rstrip("\r\n").split("\t")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise AnnotationError(f"{path}: unreadable annotation ({' '.join(str(e).split()) or 'truncated'})") from None


def sniff(path: str | Path) -> str:
    """``gtf``, ``gff3``, ``refgene``, ``genepred``, ``bed``, ``saf``, ``parquet`` or ``feather``, from the content
    (the name decides only for content that fits no format, so that the reader can name the bad line)."""
    path = require_file(path, "annotation file", AnnotationError)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    if head == b"ARRO":
        return "feather"
    for _, p in _lines(path):
        if len(p) == 9 and p[3].isdigit() and p[4].isdigit():
            return "gtf" if _GTF_ATTR.search(p[8]) else "gff3"
        if len(p) >= 16 and p[0].isdigit() and p[3] in "+-" and p[4].isdigit():
            return "refgene"
        if len(p) >= 10 and p[2] in ("+", "-") and p[3].isdigit() and p[4].isdigit():
            return "genepred"
        if len(p) in (6, 12) and p[1].isdigit() and p[2].isdigit() and p[5] in ("+", "-", "."):
            return "bed"
        if len(p) >= 5 and ([c.lower() for c in p[:5]] == list(SAF_HEADER)
                            or (p[2].isdigit() and p[3].isdigit() and p[4] in ("+", "-"))):
            return "saf"
        break
    # content fits nothing (or the file is empty): a GTF/GFF name gets that reader, which names the bad line
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".gtf"):
        return "gtf"
    if name.endswith((".gff", ".gff3")):
        return "gff3"
    raise AnnotationError(f"{path}: not a recognised annotation (GTF, GFF3, UCSC refGene/knownGene, BED12, SAF, "
                          "parquet): the first data line fits none of them")


def _interval(path: Path, n: int, start: str, end: str, strand: str, who: str, one_based: bool) -> tuple[int, int]:
    try:
        s, e = int(start) - one_based, int(end)
    except ValueError:
        raise AnnotationError(f"{path}:{n}: start/end must be integers, got {start!r}, {end!r}") from None
    if s < 0 or e <= s:
        raise AnnotationError(f"{path}:{n}: {who}: start {start} > end {end} or start < {int(one_based)}")
    if strand not in ("+", "-"):
        raise AnnotationError(f"{path}:{n}: {who}: strand must be '+' or '-', got {strand!r}")
    return s, e


Exons = dict[tuple[str, str], list[tuple[int, int]]]  # (gene id, contig) -> its exons (start, end), 0-based


def _biotype(a: dict[str, str], gene: dict[str, str] | None = None) -> str | None:
    for k in ("transcript_type", "transcript_biotype", "biotype", "gene_type", "gene_biotype"):
        if a.get(k):
            return a[k]
    return _biotype(gene) if gene else None


def read_gtf(path: Path, biotype: str | None, exons_by_gene: Exons | None = None) -> pd.DataFrame:
    tx, exons, genes = [], {}, []
    for n, p in _lines(path):
        if len(p) < 9:
            raise AnnotationError(f"{path}:{n}: expected 9 tab-separated GTF columns, got {len(p)}")
        if p[2] not in ("transcript", "exon", "gene"):
            continue
        a = dict(_GTF_ATTR.findall(p[8]))
        gid = a.get("gene_id")
        if p[2] == "exon" and gid and exons_by_gene is not None:  # every exon of the gene counts, any biotype
            exons_by_gene.setdefault((gid, p[0]), []).append(_interval(path, n, p[3], p[4], p[6], f"exon of {gid}",
                                                                       True))
        if biotype and _biotype(a) != biotype:
            continue
        if not gid:
            raise AnnotationError(f"{path}:{n}: {p[2]} without gene_id")
        s, e = _interval(path, n, p[3], p[4], p[6], f"{p[2]} of {gid}", True)
        row = [gid, a.get("gene_name", gid), a.get("transcript_id", gid), p[0], s, e, p[6]]
        if p[2] == "transcript":
            tx.append(row)
        elif p[2] == "gene":
            genes.append(row)
        elif "transcript_id" in a:
            old = exons.get(a["transcript_id"])
            exons[a["transcript_id"]] = row if old is None else [*old[:4], min(old[4], s), max(old[5], e), old[6]]
    if tx:
        return pd.DataFrame(tx, columns=COLUMNS)
    if exons:
        log.warning("%s has no transcript lines: transcripts taken as the span of their exons (%d)", path, len(exons))
        return pd.DataFrame(list(exons.values()), columns=COLUMNS)
    if genes:
        log.warning("%s has no transcript lines (nor exons with transcript ids): each gene line taken as one "
                    "transcript (%d)", path,
                    len(genes))
        return pd.DataFrame(genes, columns=COLUMNS)
    return pd.DataFrame(columns=COLUMNS)


def _gff_attrs(s: str) -> dict[str, str]:
    out = {}
    for part in s.strip().strip(";").split(";"):
        k, sep, v = part.strip().partition("=")
        if sep:
            out[k] = unquote(v)
    return out


def _ncbi_chromosome(a: dict[str, str]) -> str | None:
    """NCBI RefSeq GFF3 'region' lines name their sequence: NC_000001.11 -> chr1, the mitochondrion -> chrM."""
    if a.get("genome") == "mitochondrion":
        return "chrM"
    if a.get("genome") == "chromosome" and a.get("chromosome"):
        return f"chr{a['chromosome']}"
    return None


def _is_part(feature_type: str) -> bool:
    """A part of a transcript (CDS, UTRs, codons, introns...), never a transcript itself."""
    t = feature_type.lower()
    return t in ("cds", "intron", "selenocysteine") or t.endswith(("utr", "codon", "_site", "_signal"))


def read_gff3(path: Path, biotype: str | None, exons_by_gene: Exons | None = None) -> pd.DataFrame:
    """GFF3 transcripts: ``mRNA``/``transcript`` features and any other feature whose Parent is a
    gene (``lnc_RNA``, ``ncRNA``, ``pseudogenic_transcript``...); gene ids from ``gene_id`` or the
    Parent gene's ``ID``, biotypes from the transcript or its gene."""
    genes: dict[str, dict[str, str]] = {}
    tx: list[tuple[int, list[str], dict[str, str]]] = []
    exon_lines: list[tuple[int, list[str], str]] = []  # (line, columns, Parent transcript)
    names: dict[str, str] = {}  # NCBI accession -> chrN, from 'region' lines
    for n, p in _lines(path):
        if len(p) < 9:
            raise AnnotationError(f"{path}:{n}: expected 9 tab-separated GFF3 columns, got {len(p)}")
        if p[2] == "region" and (chrom := _ncbi_chromosome(_gff_attrs(p[8]))):
            names[p[0]] = chrom
        elif p[2] in GENE_TYPES or p[2].endswith("_gene"):
            a = _gff_attrs(p[8])
            if "ID" in a:
                genes[a["ID"]] = a
        elif p[2] == "exon":
            if exons_by_gene is not None:
                exon_lines.append((n, p, _gff_attrs(p[8]).get("Parent", "").split(",")[0]))
        elif p[2] in TRANSCRIPT_TYPES or not _is_part(p[2]):
            tx.append((n, p, _gff_attrs(p[8])))
    # lnc_RNA, ncRNA, snRNA, pseudogenic_transcript, V_gene_segment...: transcripts as children of a gene
    tx = [t for t in tx if t[1][2] in TRANSCRIPT_TYPES or t[2].get("Parent", "").split(",")[0] in genes]
    rows, gene_of = [], {}  # gene_of: transcript ID -> gene id, for its exons
    for n, p, a in tx:
        parent = a.get("Parent", "").split(",")[0]
        g = genes.get(parent, {})
        gid = a.get("gene_id") or g.get("gene_id") or re.sub(r"^gene[:-]", "", parent)
        if "ID" in a:
            gene_of[a["ID"]] = gid
        if biotype and _biotype(a, g) != biotype and not (biotype == "protein_coding" and p[2] == "mRNA"
                                                          and _biotype(a, g) is None):
            continue
        if not gid:
            raise AnnotationError(f"{path}:{n}: {p[2]} without gene_id or Parent gene")
        s, e = _interval(path, n, p[3], p[4], p[6], f"transcript of {gid}", True)
        name = a.get("gene_name") or g.get("gene_name") or g.get("Name") or a.get("gene") or gid
        tid = a.get("transcript_id") or re.sub(r"^(transcript|rna)[:-]", "", a.get("ID", f"line{n}"))
        rows.append([gid, name, tid, names.get(p[0], p[0]), s, e, p[6]])
    for n, p, parent in exon_lines:  # every exon of a transcript counts towards its gene, any biotype
        if gene_of.get(parent):
            exons_by_gene.setdefault((gene_of[parent], names.get(p[0], p[0])), []).append(  # type: ignore[union-attr]
                _interval(path, n, p[3], p[4], p[6], f"exon of {gene_of[parent]}", True))
    if names:
        log.info("%s: %d NCBI sequence accessions named by their chromosome (e.g. %s -> %s); others (scaffolds, "
                 "alt loci) keep their accession", path, len(names), *next(iter(names.items())))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_ucsc(path: Path, kind: str, biotype: str | None, exons_by_gene: Exons | None = None) -> pd.DataFrame:
    """refGene (bin, name, chrom, strand, txStart, txEnd, ..., name2), genePred/knownGene (name, chrom,
    strand, txStart, txEnd, ...) or BED (chrom, start, end, name, score, strand, ...)."""
    cols = {"refgene": (1, 2, 3, 4, 5, 12), "genepred": (0, 1, 2, 3, 4, None), "bed": (3, 0, 5, 1, 2, 3)}[kind]
    exon_cols = {"refgene": (9, 10), "genepred": (8, 9)}.get(kind)  # exonStarts, exonEnds (0-based, comma lists)
    rows = []
    for n, p in _lines(path):
        name, chrom, strand, start, end, gene = (p[c] if c is not None and c < len(p) else None for c in cols)
        if exon_cols and exons_by_gene is not None:  # every transcript's exons count, NR_ ones too
            exons_by_gene.setdefault((gene or name, chrom), []).extend(_exon_columns(path, n, p, *exon_cols))
        if kind == "refgene" and biotype == "protein_coding" and not str(name).startswith("NM_"):
            continue  # NM_ = coding RefSeq transcripts; NR_ = non-coding
        s, e = _interval(path, n, start, end, strand, f"transcript {name}", False)
        rows.append([gene or name, gene or name, name, chrom, s, e, strand])
    if kind == "refgene" and biotype not in (None, "protein_coding"):
        raise AnnotationError(f"{path}: a refGene table has no biotypes; use --biotype protein_coding (NM_ "
                              f"transcripts) or any, not {biotype!r}")
    if kind == "refgene" and biotype is None:
        log.info("%s: --biotype any: coding (NM_) and non-coding (NR_) RefSeq transcripts kept", path)
    if kind != "refgene":
        log.warning("%s (%s) has no gene column%s: %s", path, kind, "" if kind == "bed" else " and no biotypes",
                    "its name column is taken as the gene" if kind == "bed" else "each transcript is its own gene")
    return pd.DataFrame(rows, columns=COLUMNS)


def read_saf(path: Path, biotype: str | None, exons_by_gene: Exons | None = None) -> pd.DataFrame:
    """featureCounts' SAF (GeneID, Chr, Start, End, Strand; 1-based closed; header optional): one
    transcript per gene, contig and strand, spanning its exons there, so the TSS is the gene's 5'
    end (a multi-copy gene with exons on both strands gets two, and is dropped later as such)."""
    spans: dict[tuple[str, str, str], list[int]] = {}  # (gene, contig, strand) -> [start, end]
    first = True
    for n, p in _lines(path):
        if len(p) < 5:
            raise AnnotationError(f"{path}:{n}: expected 5 tab-separated SAF columns (GeneID Chr Start End Strand), "
                                  f"got {len(p)}")
        if first and [c.lower() for c in p[:5]] == list(SAF_HEADER):
            first = False
            continue
        first = False
        gid, chrom = p[0], p[1]
        if not gid or not chrom:
            raise AnnotationError(f"{path}:{n}: empty GeneID or Chr")
        s, e = _interval(path, n, p[2], p[3], p[4], f"exon of {gid}", True)
        if exons_by_gene is not None:
            exons_by_gene.setdefault((gid, chrom), []).append((s, e))
        old = spans.setdefault((gid, chrom, p[4]), [s, e])
        old[0], old[1] = min(old[0], s), max(old[1], e)
    if spans:
        log.warning("%s (SAF) has exons but no transcripts%s: each gene's exons on a contig are taken as one "
                    "transcript, its TSS the 5' end of the first exon (%d genes)", path,
                    f" and no biotypes (--biotype {biotype} not applied)" if biotype else "",
                    len({g for g, _, _ in spans}))
    rows = [[g, g, g, c, s, e, strand] for (g, c, strand), (s, e) in spans.items()]
    return pd.DataFrame(rows, columns=COLUMNS)


def read_frame(path: Path, kind: str) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path) if kind == "parquet" else pd.read_feather(path)
    except ImportError:
        raise AnnotationError(f"{path}: reading {kind} needs pyarrow (pip install pyarrow)") from None
    except Exception as e:  # pyarrow's own error types
        raise AnnotationError(f"{path}: unreadable {kind} file ({' '.join(str(e).split())[:200]})") from None
    missing = [c for c in ("gene_id", "chrom", "start", "end", "strand") if c not in df.columns]
    if missing:
        raise AnnotationError(f"{path}: a {kind} annotation needs columns gene_id, chrom, start (0-based), end, "
                              f"strand [, gene_name, transcript_id]; missing {', '.join(missing)}")
    df = df.assign(gene_name=df.get("gene_name", df.gene_id), transcript_id=df.get("transcript_id", df.gene_id))
    bad = ~df.strand.isin(["+", "-"]) | (df.start < 0) | (df.end <= df.start)
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise AnnotationError(f"{path}: row {i}: gene {df.gene_id.iloc[i]}: start > end, negative, or bad strand")
    return df[COLUMNS].astype({"start": int, "end": int})


def read_transcripts(path: str | Path, biotype: str | None = "protein_coding") -> pd.DataFrame:
    """Any supported annotation -> transcript table (see module docstring); ``biotype=None`` keeps all."""
    return read_annotation(path, biotype)[0]


def read_annotation(path: str | Path, biotype: str | None = "protein_coding",
                    ) -> tuple[pd.DataFrame, dict[tuple[str, str], int]]:
    """The transcript table (as :func:`read_transcripts`) and, from the same single pass over the
    file, the exon-union length of each gene on each contig it lies on (as :func:`exon_union_lengths`)."""
    path = Path(path)
    kind = sniff(path)
    exons: Exons = {}
    if kind in ("parquet", "feather"):
        tx = read_frame(path, kind)
    elif kind == "gtf":
        tx = read_gtf(path, biotype, exons)
    elif kind == "gff3":
        tx = read_gff3(path, biotype, exons)
    elif kind == "saf":
        tx = read_saf(path, biotype, exons)
    else:
        tx = read_ucsc(path, kind, biotype, exons)
    if tx.empty and biotype and kind in ("gtf", "gff3"):
        n = len(read_gtf(path, None) if kind == "gtf" else read_gff3(path, None))
        if n:
            raise AnnotationError(f"{path}: none of its {n} transcripts/genes has biotype {biotype!r} (does it carry "
                                  "gene_type/transcript_type attributes?); --biotype any keeps them all")
    if tx.empty:
        raise AnnotationError(f"{path}: no transcript features{f' of biotype {biotype}' if biotype else ''} "
                              f"(read as {kind})")
    log.info("%s: %d transcripts of %d genes (read as %s)", path, len(tx), tx.gene_id.nunique(), kind)
    return tx, {g: _union_length(iv) for g, iv in exons.items()}


def _union_length(intervals: list[tuple[int, int]]) -> int:
    total, end = 0, -1
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def _exon_columns(path: Path, n: int, p: list[str], starts_col: int, ends_col: int) -> list[tuple[int, int]]:
    """A UCSC row's exons as (start, end) pairs, 0-based half-open."""
    try:
        starts, ends = p[starts_col].strip(",").split(","), p[ends_col].strip(",").split(",")
        pairs = list(zip(map(int, starts), map(int, ends), strict=True))
    except (IndexError, ValueError):
        raise AnnotationError(f"{path}:{n}: unreadable exonStarts/exonEnds columns") from None
    if any(s < 0 or e <= s for s, e in pairs):
        raise AnnotationError(f"{path}:{n}: an exon ends before it starts or starts below 0")
    return pairs


def exon_union_lengths(path: str | Path) -> dict[tuple[str, str], int]:
    """Per (gene id, contig), the length (bp) of the union of the gene's exons there: the length
    RPKM/TPM divide counts by.

    Every exon of the gene counts, whatever its transcript's biotype. Copies of a gene on other
    contigs (alt haplotypes, chrX/chrY for pseudoautosomal genes) have coordinates of their own
    and are measured apart: the caller takes the copy whose TSS it keeps. Read from GTF/GFF3
    ``exon`` lines, SAF rows or refGene/genePred exon columns; empty for formats without exons (the
    caller then needs lengths from elsewhere). :func:`read_annotation` gives these together
    with the transcripts in one pass.
    """
    return read_annotation(path, None)[1]
