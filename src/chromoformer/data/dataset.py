"""PyTorch dataset producing compact Chromoformer items (docs/original.md §3.3-3.4).

An item holds, per bin size ``b`` (``nb = w_max // b``):

* ``promoter_feats[b]`` (nb, F) float32 and ``promoter_bins[b]`` (2,) = (first valid bin, n);
* ``pcre_feats[b]`` (i_max, nb, F) float32 and ``pcre_bins[b]`` (i_max, 2);

and ``n_pcres`` (), ``interaction_freq`` (i_max,), ``label`` and ``gene_id``. Each
region is read once per item; all bin sizes derive from its base sums. No masks are
shipped: the model builds them from the spans.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from chromoformer.config import DEFAULT_BINSIZES, ChromoformerConfig
from chromoformer.data.binning import bin_means, centered_start, log1p_f32
from chromoformer.data.metadata import Gene
from chromoformer.data.sources import RegionSource, promoter_region
from chromoformer.errors import DataError, UsageError
from chromoformer.progress import tqdm


class ChromoformerDataset(Dataset):
    """Items for a list of genes from a region source (npy directory or binned store).

    Parameters
    ----------
    genes : validated metadata rows
    source : :class:`~chromoformer.data.sources.NpyDirSource` or
        :class:`~chromoformer.data.store.BinnedStore`
    config : supplies i_max, w_prom, w_max and n_feats
    binsizes : resolutions, each a multiple of ``source.base``
    task : ``"clf"`` (label = 0/1 long) or ``"reg"`` (label = log2(expression + 1) float)
    """

    def __init__(
        self,
        genes: Sequence[Gene],
        source: RegionSource,
        config: ChromoformerConfig,
        binsizes: Sequence[int] = DEFAULT_BINSIZES,
        task: str = "clf",
    ) -> None:
        self.genes, self.source, self.task = list(genes), source, task
        self.binsizes = tuple(int(b) for b in binsizes)
        self.i_max, self.w_prom, self.w_max = config.i_max, config.w_prom, config.w_max
        self.n_feats = config.n_feats
        if source.n_feats != self.n_feats:
            raise DataError(f"the signal source has {source.n_feats} marks but the model expects {self.n_feats}")
        for b in self.binsizes:
            if self.w_max % b or b % source.base:
                raise UsageError(
                    f"bin size {b} must divide w_max={self.w_max} and be a multiple of the "
                    f"source's base resolution {source.base}"
                )
        if task not in ("clf", "reg"):
            raise UsageError(f"unknown task {task!r}")
        # (N, n_feats) bool, set by the trainer each epoch under mark dropout; combined with a source's
        # own absent marks (a MarkView): items then carry ``present`` (n_feats,)
        self.presence: torch.Tensor | None = None
        absent = getattr(source, "present", None)
        self.source_present = None if absent is None else torch.tensor(absent, dtype=torch.bool)

    def validate(self) -> None:
        """Check up front that every gene's promoter and pCRE regions exist with the right shape.

        Raises :class:`~chromoformer.data.sources.DataError` naming the file and gene, so that
        a bad input fails with one clear line rather than inside a DataLoader worker.
        """
        for g in tqdm(self.genes, desc="check inputs", unit="gene", leave=False):
            region, _ = promoter_region(self.source, g, self.w_prom)
            for r in (region, *g.pcres):
                self.source.check(r, g.gene_id)

    def __len__(self) -> int:
        return len(self.genes)

    def _frames(self, regions: list[tuple[np.ndarray, int, bool]]) -> dict[int, tuple[np.ndarray, ...]]:
        """Regions' base sums, lengths and flips (the promoter first, then the pCREs) -> per bin size ``b``:
        the promoter frame (nb, F) float32 and span (2,), the pCRE frames (i_max, nb, F) and spans (i_max, 2),
        each region centred (:func:`centered_start`).

        Every region's bin means at every bin size are logged in one call (:func:`log1p_f32` is elementwise,
        so the bits are those of one call per region and bin size).
        """
        base, nbs = self.source.base, len(self.binsizes)
        means = [bin_means(sums, length, base, b) for sums, length, _ in regions for b in self.binsizes]
        logs = log1p_f32(np.concatenate(means))
        out = {b: (np.zeros((self.w_max // b, self.n_feats), dtype=np.float32), np.zeros(2, dtype=np.int64),
                   np.zeros((self.i_max, self.w_max // b, self.n_feats), dtype=np.float32),
                   np.zeros((self.i_max, 2), dtype=np.int64)) for b in self.binsizes}
        row = 0
        for j, (_, _, flip) in enumerate(regions):
            for b, m in zip(self.binsizes, means[j * nbs : (j + 1) * nbs], strict=True):
                n = len(m)
                prom, prom_span, pcres, pcre_spans = out[b]
                frame, span = (prom, prom_span) if j == 0 else (pcres[j - 1], pcre_spans[j - 1])
                start = centered_start(n, len(frame), flip)
                piece = logs[row : row + n]
                frame[start : start + n] = piece[::-1] if flip else piece
                span[:] = start, n
                row += n
        return out

    def __getitem__(self, i: int) -> dict:
        g = self.genes[i]
        src = self.source
        region, crop = promoter_region(src, g, self.w_prom)
        length = len(region) if crop is None else crop[1] - crop[0]
        regions = [(src.region_sums(region, crop, g.gene_id), length, g.strand == "-")]
        regions += [(src.region_sums(r, None, g.gene_id), len(r), False) for r in g.pcres]
        frames = self._frames(regions)

        item: dict = {"promoter_feats": {}, "promoter_bins": {}, "pcre_feats": {}, "pcre_bins": {}}
        for b in self.binsizes:
            prom, prom_span, pcres, pcre_spans = (torch.from_numpy(a) for a in frames[b])
            item["promoter_feats"][b], item["promoter_bins"][b] = prom, prom_span
            item["pcre_feats"][b], item["pcre_bins"][b] = pcres, pcre_spans
        freq = np.zeros(self.i_max, dtype=np.float32)
        freq[: len(g.scores)] = g.scores
        item["n_pcres"] = torch.tensor(len(g.pcres))
        item["interaction_freq"] = torch.from_numpy(freq)
        item["gene_id"] = g.gene_id
        if self.presence is not None or self.source_present is not None:
            p = self.presence[i] if self.presence is not None else torch.ones(self.n_feats, dtype=torch.bool)
            item["present"] = p & self.source_present if self.source_present is not None else p
        if self.task == "clf":
            item["label"] = torch.tensor(-1 if g.label is None else g.label)
        else:
            y = np.nan if g.expression is None else np.log2(g.expression + 1)
            item["label"] = torch.tensor(y, dtype=torch.float32)
        return item
