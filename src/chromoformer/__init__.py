"""Chromoformer: gene expression from histone marks and 3D chromatin interactions.

Re-implementation of Lee, Yang & Kim, Nature Communications 13:6678 (2022), compatible
with the original checkpoints.
"""

from chromoformer.config import ChromoformerConfig, load_config
from chromoformer.model import ChromoformerClassifier, ChromoformerRegressor, build_model

__version__ = "2.0.0.dev0"

__all__ = [
    "ChromoformerClassifier",
    "ChromoformerConfig",
    "ChromoformerRegressor",
    "__version__",
    "build_model",
    "load_config",
]
