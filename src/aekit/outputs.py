"""A command's output folder for the length of a run: created, locked, checked, written as one unit.

``output_folder`` is what every command that writes files goes through:

- the folder (and its missing parents) is created, and removed again if the run fails or writes nothing;
- an exclusive ``flock`` on the folder itself is held for the whole run, so a second run on the same
  folder refuses at once, naming the first (the kernel drops the lock of a process that died, so a
  killed run never blocks the next one);
- none of the files the command writes may exist unless ``overwrite``, checked when the run starts
  and again when its files are put in place (a no-replace rename: whoever made the file);
- the run's files are written into a hidden staging folder inside it (``.aekit-*.tmp``) and renamed
  in together by ``commit``, after every write has succeeded; a failed write (full disk, I/O error)
  leaves the folder as it was before the run and says so in one line; SIGINT and SIGTERM wait
  until the files are in place.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aekit._utils import AekitError, InputError, atomic_path, deferred_signals, new_folders, place, remove_empty

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: errors of the disk rather than of the input: a run that meets one says the folder is as it was
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG}


class FolderInUseError(AekitError, OSError):
    """Another process is writing into the same output folder."""


class SaveError(AekitError, OSError):
    """A run's files could not be written; the output folder was left as it was."""


def _holder(folder: Path) -> str:
    """Who holds the flock on ``folder``: ``pid 1234: python -m aekit train ...`` (Linux), else a vague phrase."""
    try:
        st = folder.stat()
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return "another process"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2163285 0 EOF"; waiters have "->"
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            same = (int(major, 16), int(minor, 16), int(inode)) == (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        except ValueError:
            continue
        if same:
            pid = fields[4]
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
            except OSError:
                return f"pid {pid}"
            if argv:
                argv[0] = os.path.basename(argv[0])
            # another user's process: its arguments shown as text, no terminal control characters (ANSI escapes)
            return f"pid {pid}: " + "".join(c if c.isprintable() else "?" for c in " ".join(argv))
    return "another process"


class OutputFolder:
    """The output folder of one run; made by ``output_folder``, which opens and closes it."""

    def __init__(self, path: Path, files: Sequence[str], overwrite: bool, flag: str) -> None:
        self.path, self.files, self.overwrite, self.flag = path, tuple(files), overwrite, flag
        self.committed = False
        self._created: list[Path] = []  # folders this run made
        self._in_place: list[Path] = []  # files this run writes directly (a checkpoint), removed if it fails
        self._stage: Path | None = None
        self._staged: list[str] = []
        self._fd: int | None = None

    def _open(self, lock: bool) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise InputError(
                f"{self.flag} {p} is a file; expected a folder (existing or new), choose another {self.flag}"
            )
        missing = new_folders(p)
        above = (missing[0] if missing else p).parent
        if missing and not above.is_dir():
            raise InputError(f"{self.flag} {p}: {above} is a file, not a folder; choose another {self.flag}")
        for folder in missing:
            try:
                folder.mkdir()
            except FileExistsError:  # made by someone else meanwhile: not ours to remove
                continue
            self._created.append(folder)
        if lock and fcntl is not None:
            self._lock()
        clash = [f for f in self.files if (p / f).exists() or (p / f).is_symlink()]  # a dangling link is there too
        folders = [f for f in clash if (p / f).is_dir() and not (p / f).is_symlink()]
        if folders:  # --overwrite replaces files, never a folder (the user's, maybe full): say so before the run
            raise FileExistsError(
                f"{p / folders[0]} is a folder where this run writes a file; move it away or choose another {self.flag}"
            )
        if clash and not self.overwrite:
            raise FileExistsError(
                f"{p / clash[0]} exists; pass --overwrite to replace it, or choose another {self.flag}"
            )

    def _lock(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._created = []  # it is the other run's folder now
            raise FolderInUseError(
                f"{self.flag} {self.path} is in use by another aekit run ({_holder(self.path)}); "
                f"wait for it to end or choose another {self.flag}"
            ) from None
        except OSError:  # a file system without flock (some network mounts): the run goes on unlocked
            os.close(fd)
            return
        self._fd = fd

    def staged(self, name: str) -> Path:
        """Where to write the file ``name`` of this run; ``commit`` puts it in place."""
        if self._stage is None:
            self._stage = Path(tempfile.mkdtemp(prefix=".aekit-", suffix=".tmp", dir=self.path))
        if name not in self._staged:
            self._staged.append(name)
        return self._stage / name

    def staging(self, names: Iterable[str]) -> Path:
        """The staging folder, for a writer that fills a folder with the files ``names``."""
        for name in names:
            self.staged(name)
        assert self._stage is not None
        return self._stage

    def in_place(self, name: str) -> Path:
        """The final path of ``name``, written directly during the run (a checkpoint that a killed run
        can resume from); removed if the run fails, unless it existed before."""
        p = self.path / name
        if not p.exists():
            self._in_place.append(p)
        return p

    def commit(self, remove: Iterable[str] = ()) -> None:
        """Rename the staged files in, then remove the files named in ``remove`` (a previous run's that this
        run did not write); signals wait. Without ``overwrite`` no existing file is replaced (and the ones
        already placed are taken back)."""
        with deferred_signals():
            placed: list[Path] = []
            # staged and written (a writer given the staging folder may leave a file out: a sprite without images)
            stage = self._stage
            made = [name for name in self._staged if stage is not None and (stage / name).exists()]
            try:
                for name in made:
                    assert stage is not None  # (made is empty without one)
                    place(stage / name, self.path / name, overwrite=self.overwrite)
                    placed.append(self.path / name)
            except BaseException:
                if not self.overwrite:
                    for p in placed:
                        p.unlink(missing_ok=True)
                raise
            for name in remove:
                if name not in made:
                    (self.path / name).unlink(missing_ok=True)
            self.committed = True

    def _close(self, failed: bool) -> None:
        with deferred_signals():
            if self._stage is not None:
                shutil.rmtree(self._stage, ignore_errors=True)
            if failed and not self.committed:
                for p in self._in_place:
                    p.unlink(missing_ok=True)
            remove_empty(self._created)
            if self._fd is not None:
                os.close(self._fd)  # releases the lock
                self._fd = None

    def disk_error(self, exc: OSError) -> SaveError:
        """``exc`` (a full disk, an I/O error) as one line saying what became of the folder."""
        reason = exc.strerror or str(exc)
        state = "nothing was written" if self._created else f"{self.path} is as it was before this run"
        return SaveError(
            f"could not write into {self.path}: {reason}; {state} (no file replaced); "
            "free some space (or fix the disk) and run again, or choose another " + self.flag
        )


@contextlib.contextmanager
def output_folder(
    path: str | os.PathLike[str], files: Sequence[str], *, overwrite: bool, lock: bool = True, flag: str = "--out"
) -> Iterator[OutputFolder]:
    """Create (if needed), lock and check the output folder ``path`` for the block; see the module's docstring.

    Parameters
    ----------
    path : path
        The folder.
    files : sequence of str
        The names of every file the command may write there; without ``overwrite`` none may exist.
    overwrite : bool
        Whether the run may replace files in the folder.
    lock : bool
        Hold an exclusive lock on the folder (False for a single file's parent folder, shared with others).
    flag : str
        How errors name the folder (the CLI's ``--out``).
    """
    out = OutputFolder(Path(path), files, overwrite, flag)
    try:
        out._open(lock)
        yield out
    except OSError as exc:
        out._close(failed=True)
        if exc.errno in _DISK_ERRNOS and not isinstance(exc, AekitError):
            raise out.disk_error(exc) from exc
        raise
    except BaseException:
        out._close(failed=True)
        raise
    else:
        out._close(failed=False)


@contextlib.contextmanager
def output_file(
    path: str | os.PathLike[str], overwrite: bool, flag: str = "--out"
) -> Iterator[tuple[OutputFolder, str]]:
    """A single output file: its folder (not locked: other commands may write beside it) and its name."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} {p} is a folder; expected a file name in it, or choose another {flag}")
    with output_folder(p.parent, [p.name], overwrite=overwrite, lock=False, flag=flag) as out:
        yield out, p.name


def save_training(out: OutputFolder, est: Any) -> bool:
    """A trained estimator's model, history and training curve, written beside each other, then put in
    place together (with a checkpoint staged over a previous run's); signals wait until they are.

    Returns False when the curve could not be drawn: a plot never costs the model.
    """
    with deferred_signals():  # Ctrl-C or SIGTERM now: the files are saved first, then the signal acts
        from aekit import plots  # matplotlib loads slowly: a signal then would cost the model

        # the checkpoint's final name, not the staged one; the command's display (a bar, a line per epoch) is not
        # the model's: a loaded model fits quietly, as a new one does
        est.set_params(checkpoint_path=str(out.path / "checkpoint.safetensors"), verbose=0)
        est.save(out.staged("model.safetensors"))
        with atomic_path(out.staged("history.json")) as tmp:
            tmp.write_text(json.dumps(est.history_, indent=1))
        try:
            with plots.offscreen():  # files only: no display, the user's backend untouched
                plots.save(plots.training_curves(est.history_), out.staged("training_curve.png"))
            curve = True
        except Exception as exc:
            log.warning("could not draw the training curve: %s", exc)
            curve = False
        out.commit(remove=() if curve else ["training_curve.png"])  # no curve of a previous run beside this model
    return curve
