"""The ``ctcd`` command line: one module per command group, wired together in :mod:`workflows.cli.app`."""
