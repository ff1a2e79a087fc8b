"""Data formats, binning and the dataset."""

from chromoformer.data.dataset import ChromoformerDataset
from chromoformer.data.metadata import Gene, MetadataError, Region, read_metadata
from chromoformer.data.sources import DataError, NpyDirSource, build_store_from_npy
from chromoformer.data.store import BinnedStore

__all__ = [
    "BinnedStore",
    "ChromoformerDataset",
    "DataError",
    "Gene",
    "MetadataError",
    "NpyDirSource",
    "Region",
    "build_store_from_npy",
    "read_metadata",
]
