"""The differential task as one wing: two cell types' genes -> their log2 fold change (DeepDiff's task).

:mod:`~chromoformer.diff.pairing` pairs two cells' metadata and signals by gene,
:mod:`~chromoformer.diff.simulation` simulates a pair of cell types with a noiseless oracle,
:mod:`~chromoformer.diff.fitting` trains a fold, :mod:`~chromoformer.diff.prediction` predicts and
:mod:`~chromoformer.diff.explanation` explains the predicted fold change by each cell's marks and pCREs.
The models themselves (``chromoformer-diff``, ``deepdiff``) live with the others in :mod:`chromoformer.model`.
"""
