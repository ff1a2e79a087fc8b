"""Pure ``nn.Module``s: no I/O, no device placement, no seeding."""

from chromoformer.model.chromoformer import (
    ChromoformerBase,
    ChromoformerClassifier,
    ChromoformerRegressor,
    build_model,
    span_key_mask,
)

__all__ = [
    "ChromoformerBase",
    "ChromoformerClassifier",
    "ChromoformerRegressor",
    "build_model",
    "span_key_mask",
]
