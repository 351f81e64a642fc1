"""``python -m gorch``: the ``gorch`` command."""

from gorch.cli import main

main()
