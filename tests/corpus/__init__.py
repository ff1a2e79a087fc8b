"""The bad-input corpus, one module per input family (see tests/test_fault_corpus.py)."""
