"""``python -m aekit`` and the ``aekit`` command.

``aekit --version`` answers before the command-line module is imported: that module
imports torch (seconds), and the version needs none of it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        from aekit import __version__

        print(f"aekit {__version__}")
        return 0
    from aekit.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
