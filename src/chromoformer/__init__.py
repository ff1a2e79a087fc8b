"""Chromoformer: gene expression from histone marks and 3D chromatin interactions.

Re-implementation of Lee, Yang & Kim, Nature Communications 13:6678 (2022), compatible
with the original checkpoints.
"""

__version__ = "2.0.0rc1"  # the one version: pyproject.toml reads it; CHANGELOG.md says what changed

# The library API (keyword arguments, typed errors, no argv): see README "Python API".
_LAZY = {"ChromoformerConfig": "chromoformer.config", "load_config": "chromoformer.config",
         "ChromoformerClassifier": "chromoformer.model", "ChromoformerRegressor": "chromoformer.model",
         "build_model": "chromoformer.model", "RunSpec": "chromoformer.spec", "Runtime": "chromoformer.engine.runtime",
         "fit_fold": "chromoformer.training.fit", "train_fold": "chromoformer.training.fit",
         "split_genes": "chromoformer.data.folds", "predict_genes": "chromoformer.inference.predict",
         "predict": "chromoformer.inference.predict", "load_model": "chromoformer.engine.loading",
         "read_checkpoint": "chromoformer.engine.checkpoint", "open_source": "chromoformer.data.sources",
         "read_metadata": "chromoformer.data.metadata", "select_marks": "chromoformer.data.marks",
         "run_workflow": "chromoformer.workflow", "compare": "chromoformer.training.compare",
         "compare_pairs": "chromoformer.diff.fitting", "train_pair_fold": "chromoformer.diff.fitting",
         "predict_pairs": "chromoformer.diff.prediction",
         "evaluate": "chromoformer.results.evaluate", "interpret": "chromoformer.results.interpretation",
         "verify": "chromoformer.inference.verify", "load_pretrained": "chromoformer.engine.pretrained"}


def __getattr__(name: str):
    """Import torch only when a model is asked for (``chromoformer --help`` stays fast)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chromoformer' has no attribute {name!r}")

__all__ = ["__version__", *_LAZY]
