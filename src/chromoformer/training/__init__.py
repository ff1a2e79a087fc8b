"""Training: one cross-validation fold (``fit``), the epoch loop with its crash-consistent commit (``trainer``),
and Chromoformer against its ablations and baselines on the same folds (``compare``)."""
