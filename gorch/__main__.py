"""``python -m gorch`` and the ``gorch`` console script: the ``gorch`` command.

The command needs the ``cli`` extra; without it, it says so and how to install it, rather than
end with an import's traceback.
"""

from __future__ import annotations

import sys

CLI_PACKAGES = frozenset({"click", "rich"})
"""What the ``cli`` extra installs."""


def main(argv: list[str] | None = None) -> None:
    """Run the ``gorch`` command (``argv``: its arguments; default: the process's)."""
    try:
        from gorch.cli import main as cli
    except ModuleNotFoundError as exc:
        package = (exc.name or "").partition(".")[0]
        if package not in CLI_PACKAGES:
            raise
        sys.exit(
            f"gorch: the command line needs the cli extra ({package} is not installed): "
            "pip install 'gorch[cli]'"
        )
    cli(argv)


if __name__ == "__main__":
    main()
