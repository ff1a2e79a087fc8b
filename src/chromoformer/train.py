"""``python -m chromoformer.train``: the original's training command (also under ``torchrun``).

A shim over :mod:`chromoformer.cli.train`, kept so that the original's command lines work unchanged; the library
lives in :mod:`chromoformer.training`.
"""

from chromoformer.cli.train import main

if __name__ == "__main__":
    main()
