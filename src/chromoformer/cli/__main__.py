"""``python -m chromoformer.cli``: the ``chromoformer`` command."""

from chromoformer.cli import main

main()
