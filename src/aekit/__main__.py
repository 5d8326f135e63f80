"""``python -m aekit``: the ``aekit`` command."""

import sys

try:
    from aekit.cli import main  # light: torch loads inside main's guard against Ctrl-C
except KeyboardInterrupt:
    print("aekit: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
