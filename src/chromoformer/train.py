"""``python -m chromoformer.train``: the original's training command (also under ``torchrun``).

A shim over :mod:`chromoformer.cli.train`, kept so that the original's command lines work unchanged; the library
lives in :mod:`chromoformer.training`.
"""

from chromoformer.cli import check_working_directory

check_working_directory()  # before torch is imported: its oneMKL aborts in a deleted working directory

from chromoformer.cli.train import main  # noqa: E402

if __name__ == "__main__":
    main()
