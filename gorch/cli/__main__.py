"""``python -m gorch.cli``: the ``gorch`` command (as ``python -m gorch`` is)."""

from gorch.cli import main

main()
