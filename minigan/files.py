"""Writing files so that a crash never leaves a half-written one behind, and never onto
anything but a regular file.

``atomic_write(path)`` writes ``path`` through a temporary file beside it, named
``.NAME.minigan-PID-XXXXXXXX.tmp`` (``TEMPORARY``): a fixed mark, the writing process's
id and 8 random characters. A process killed mid-write (SIGKILL, a power cut) leaves that
file behind; ``stale_temporaries`` finds those whose process is gone, and only those: a
person's own ``.history.jsonl.backup.tmp`` can never match, and a file another process
is writing right now is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

TEMPORARY = re.compile(r"\.(?P<name>.+)\.minigan-(?P<pid>[0-9]+)-[a-z0-9_]{8}\.tmp")
# What atomic_write named its temporary files before (tempfile.mkstemp's ".NAME.XXXXXXXX.tmp",
# 8 characters of a-z, 0-9 and _): no mark and no process id, so a person's file can have
# such a name too; they are never deleted, only named (runs.old_temporary_files).
OLD_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
# Errors of the disk, raised by the writes of atomic_write's caller: said with the file's name.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)


class NotARegularFileError(OSError):
    """The path holds something other than a regular file: it is never written."""


class WriteError(OSError):
    """Writing a file failed (a full disk, a read-only one): the message names the file."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def describe(path: str | os.PathLike) -> str | None:
    """What ``path`` holds when it is not a regular file ("a symbolic link to X", "a
    FIFO (named pipe)", ...); None for a regular file or nothing at all."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (yet)
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"a symbolic link to {os.readlink(path)}"
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket")]  # fmt: skip
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def check_regular(path: str | os.PathLike, flag: str = "") -> None:
    """Refuse to write ``path`` when it holds anything but a regular file: a link would be
    replaced (or, by another writer, followed), a FIFO or a device replaced by a file.
    ``flag``: the option that named it, for the message ("--output")."""
    what = describe(path)
    if what is not None:
        raise NotARegularFileError(
            f"{flag + ' ' if flag else ''}{path} is {what}, not a regular file: minigan "
            f"writes only onto regular files (or new paths); choose another path"
        )


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success, rename it onto ``path``.

    A rename within one folder is atomic: readers see the old file or the new one,
    never a mix, and an exception (or a kill) mid-write leaves the old file intact.
    ``path`` must be new or a regular file (``NotARegularFileError``); a failed write
    (a full disk) raises ``WriteError``, which names ``path``.

        with atomic_write("run/checkpoint.npz") as f:
            numpy.savez(f, ...)
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    check_regular(path)
    prefix = f".{path.name}.minigan-{os.getpid()}-"
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    except OSError as error:
        raise WriteError(error.errno, error.strerror or str(error), str(path)) from error
    try:
        with os.fdopen(fd, mode) as f:
            try:
                yield f
            except OSError as error:  # the caller's writes: name the file if the disk failed
                if error.errno in DISK_ERRORS:
                    raise WriteError(error.errno, error.strerror, str(path)) from error
                raise
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as error:
                raise WriteError(error.errno, error.strerror, str(path)) from error
        os.chmod(tmp, 0o644)  # mkstemp creates files readable by their owner only
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    try:  # Linux: a killed process not yet reaped by its parent is a zombie, and gone
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def stale_temporaries(
    folder: str | os.PathLike, old_style_for: Callable[[str], bool] | None = None
) -> list[Path]:
    """atomic_write's temporary files in ``folder`` whose writing process is gone: left by
    a process that was killed mid-write. ``old_style_for(name)``: also the temporaries of
    an older minigan (``OLD_TEMPORARY``, which carry no process id) for the file ``name``
    where it returns True. Regular files only; nothing else ever matches."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        if not entry.is_file(follow_symlinks=False):
            continue
        new = TEMPORARY.fullmatch(entry.name)
        if new is not None:
            if not process_alive(int(new["pid"])):
                found.append(Path(entry.path))
            continue
        old = OLD_TEMPORARY.fullmatch(entry.name)
        if old is not None and old_style_for is not None and old_style_for(old["name"]):
            found.append(Path(entry.path))
    return sorted(found)
