"""``python -m aekit`` and the ``aekit`` command.

``aekit --version`` answers before the command-line module is imported, and Ctrl-C while
that module loads gives exit 130 and one line (torch itself loads inside ``cli.main``'s guard).
"""

from __future__ import annotations

import os
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
        return _interrupted()
    rc = cli_main(argv)
    return _interrupted() if rc == 130 else rc


def _interrupted() -> int:
    """Exit 130 now. An interrupt that landed inside a C extension's import can leave CPython believing a
    KeyboardInterrupt went unhandled, and it would then end the process by SIGINT (-2) at exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    sys.exit(main())
