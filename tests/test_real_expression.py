"""Real files shipped by rnanorm: GTEx lung read counts (30 samples x 818 chr21 genes, a samples x genes
csv.gz) and the GENCODE v26 chr21 GTF (gene and exon lines only, no biotypes). Counts -> RPKM -> labels,
checked against rnanorm's FPKM, an independent implementation of the same exon-union normalisation.
Skipped when rnanorm is absent."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

rnanorm = pytest.importorskip("rnanorm")
from chromoformer.errors import AnnotationError, ExpressionError  # noqa: E402
from chromoformer.preprocess.annotation import read_annotation, read_transcripts  # noqa: E402
from chromoformer.preprocess.expression import add_labels  # noqa: E402
from chromoformer.preprocess.genes import genes_from_transcripts  # noqa: E402

FILES = resources.files("rnanorm") / "files"
GTF, COUNTS = FILES / "gencode.v26.annotation.chr21.gtf.gz", FILES / "gtex_lung.first30.chr21.csv.gz"


def _unversioned(s: pd.Index) -> pd.Index:
    return s.str.replace(r"\.\d+$", "", regex=True)


@pytest.fixture(scope="module")
def data():
    tab = pd.read_csv(COUNTS, index_col=0)  # samples x genes
    tx, lengths = read_annotation(GTF, None)  # the one pass prepare_genes makes: transcripts and exon lengths
    genes = genes_from_transcripts(tx, w_prom=40000, chrom_sizes={"chr21": 48_129_895})
    genes = genes.assign(length=[lengths.get(k) for k in zip(genes.gene_id, genes.chrom, strict=True)])
    fpkm = rnanorm.FPKM(gtf=str(GTF)).set_output(transform="pandas").fit_transform(tab)
    fpkm.columns = _unversioned(fpkm.columns)
    return tab, genes, fpkm


def test_gtf_without_biotypes_says_so():
    with pytest.raises(AnnotationError, match="none of its 837 transcripts/genes has biotype 'protein_coding'"):
        read_transcripts(GTF)


def test_all_genes_median_zero_is_a_loud_error(data):
    """Most chr21 genes have no reads in lung: the median is 0 and '>= median' would call every gene expressed."""
    tab, genes, _ = data
    with pytest.raises(ExpressionError, match="median expression of the .* genes is 0"):
        add_labels(genes, COUNTS, tab.index[0], unit="counts")


@pytest.mark.parametrize("i", [0, 7, 29])
def test_counts_to_rpkm_and_labels_agree_with_rnanorm(data, i):
    tab, genes, fpkm = data
    sample = tab.index[i]
    detected = _unversioned(tab.columns[(tab > 0).mean() >= 0.5])  # genes with reads in most lung samples
    ours = add_labels(genes[_unversioned(pd.Index(genes.gene_id)).isin(detected)], COUNTS, sample, unit="counts")
    ours.index = _unversioned(pd.Index(ours.gene_id))
    theirs = fpkm.loc[sample, ours.index]
    np.testing.assert_allclose(ours.expression, theirs, rtol=1e-9)
    want = (theirs >= theirs.median()).astype(int)
    assert (ours.label == want).all()
    assert len(ours) > 300 and 0.45 <= ours.label.mean() <= 0.55
