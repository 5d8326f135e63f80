"""``python -m aekit`` and the ``aekit`` command.

``aekit --version`` answers before the command-line module is imported, and Ctrl-C while
that module loads gives exit 130 and one line (torch itself loads inside ``cli.main``'s guard).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        if args == ["--version"]:
            from aekit import __version__

            print(f"aekit {__version__}")
            return 0
        from aekit.cli import main as cli_main
    except KeyboardInterrupt:
        print("aekit: interrupted", file=sys.stderr)
        return 130
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
