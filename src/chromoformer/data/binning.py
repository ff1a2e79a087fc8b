"""Vectorised binning of per-base signal, identical to the original (docs/original.md §3.3).

A region of length L is summarised once as *base sums*: the per-mark sum of depth
over consecutive ``base``-bp chunks, shape (ceil(L / base), F). Any bin size that is
a multiple of ``base`` is derived from those sums exactly: bin means are
``sum / n_bases`` (the last bin averaged over the bases it really has), then
``ln(mean + 1)`` in float32 with ``torch.log``: bit-identical to the original's per-bin
``torch.mean`` and ``torch.log`` for integer depths.
"""

from __future__ import annotations

import math

import numpy as np
import torch

F32_MAX = float(np.finfo(np.float32).max)  # stores and models hold float32 sums

def base_sums(x: np.ndarray, base: int) -> np.ndarray:
    """Per-base signal (F, L) -> base-bin sums (ceil(L / base), F), float64."""
    f, length = x.shape
    n = math.ceil(length / base)
    padded = np.zeros((f, n * base), dtype=np.float64)
    padded[:, :length] = x
    return padded.reshape(f, n, base).sum(axis=2).T


def bin_means(sums: np.ndarray, length: int, base: int, bin_size: int) -> np.ndarray:
    """Base sums (n_base, F) of a region of ``length`` bp -> mean depth per bin, (n, F) float32.

    ``n = ceil(length / bin_size)``; ``bin_size`` must be a multiple of ``base``. The last
    bin is averaged over the bases it really has.
    """
    if bin_size % base:
        raise ValueError(f"bin size {bin_size} is not a multiple of the stored base resolution {base}")
    k = bin_size // base
    n = math.ceil(length / bin_size)
    n_base, f = sums.shape
    if k == 1 and n == n_base:
        totals = sums  # a sum over one base bin is that bin (the same bits as the reduction below)
    else:
        if n * k != n_base:
            grown = np.zeros((n * k, f), dtype=np.float64)
            grown[:n_base] = sums
            sums = grown
        totals = sums.reshape(n, k, f).sum(axis=1)
    means = totals / float(bin_size)
    means[-1] = totals[-1] / float(length - (n - 1) * bin_size)  # the same float64 divisions, bin by bin
    return means.astype(np.float32)


def log1p_f32(means: np.ndarray) -> np.ndarray:
    """ln(mean + 1) of float32 means, elementwise with torch's float32 ``log`` (bit-identical to the original,
    and the same bits whether the values come one region at a time or all of an item's at once)."""
    return torch.log(torch.from_numpy(means) + 1).numpy()


def bin_log_means(sums: np.ndarray, length: int, base: int, bin_size: int) -> np.ndarray:
    """Base sums (n_base, F) of a region of ``length`` bp -> ln(mean + 1) per bin, (n, F) float32.

    ``n = ceil(length / bin_size)``; ``bin_size`` must be a multiple of ``base``.
    """
    return log1p_f32(bin_means(sums, length, base, bin_size))


def centered_start(n: int, n_bins: int, flip: bool = False) -> int:
    """Index of the first valid bin when ``n`` bins are centred in a frame of ``n_bins`` (see :func:`pad_centered`)."""
    if n > n_bins:
        raise ValueError(f"{n} bins do not fit in a frame of {n_bins}")
    left = math.ceil((n_bins - n) / 2)
    return n_bins - left - n if flip else left


def pad_centered(feats: np.ndarray, n_bins: int, flip: bool = False) -> tuple[np.ndarray, int]:
    """Zero-pad (n, F) bins to (n_bins, F), centred (left = ceil, right = floor).

    With ``flip`` (minus-strand promoters) the padded frame is reversed along bins, so
    the left pad becomes floor. Returns the frame and the index of its first valid bin.
    """
    n, f = feats.shape
    start = centered_start(n, n_bins, flip)
    out = np.zeros((n_bins, f), dtype=np.float32)
    out[start : start + n] = feats[::-1] if flip else feats
    return out, start
