"""``python -m workflows.cli``: the same as the ``ctcd`` console script."""

from workflows.cli.app import main

main()
