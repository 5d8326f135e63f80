"""``python -m aekit`` and the ``aekit`` command.

``aekit --version`` answers before the command-line module is imported. Ctrl-C or SIGTERM while
numpy and torch load is held until they have loaded, then gives exit 130 and one line: an
interrupt raised inside a C extension's import can abort the process (pybind11 ends it by
``std::terminate`` when a Python callback of torch's raises).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence


def main(argv: Sequence[str] | None = None) -> int:
    try:
        with _signals_held():
            args = sys.argv[1:] if argv is None else list(argv)
            if args == ["--version"]:
                from aekit import __version__

                print(f"aekit {__version__}")
                return 0
            from aekit import _utils  # noqa: F401 - numpy and torch load here, inside the hold
            from aekit.cli import main as cli_main
    except KeyboardInterrupt:
        print("aekit: interrupted", file=sys.stderr)
        return _interrupted()
    rc = cli_main(argv)
    return _interrupted() if rc == 130 else rc


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Record SIGINT and SIGTERM during the block; at its end, one ``KeyboardInterrupt`` if either came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt


_SIGNALS = (signal.SIGINT, signal.SIGTERM) if hasattr(signal, "SIGTERM") else (signal.SIGINT,)


def _interrupted() -> int:
    """Exit 130 now. An interrupt that landed inside a C extension's import can leave CPython believing a
    KeyboardInterrupt went unhandled, and it would then end the process by SIGINT (-2) at exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    sys.exit(main())
