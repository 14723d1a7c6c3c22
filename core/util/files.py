"""The file operations of a run folder: atomic replacement, appends, reads and stale temp files.

Every file of a run is opened here, and never through a symbolic link (``O_NOFOLLOW``) or as anything but a
regular file: a link planted in a run folder cannot make ResLab truncate, append to or read a file elsewhere
(``NotAFileError``). Replacement is atomic (temporary file in the same folder, fsync, rename), so a reader in
another process, or a kill -9 at any moment, never sees a torn file. All bytes go through ``write_all``.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK   # O_NONBLOCK: a FIFO planted there cannot block us
_KINDS = ((stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device"))


# What ResLab reads at most of a file (it writes far less): a bigger one is refused, never read whole.
MAX_JSON_BYTES = 1 << 20        # config.json, status.json, queue.json, scheduler.json, settings, a TOML config file
MAX_ROWS_BYTES = 128 << 20      # epochs.jsonl, steps.jsonl, events.log (a 1000-epoch run logging every step: ~50 MB)


def _umask() -> int:
    """The process's umask, read without changing it (Linux); else set and restored at once."""
    try:
        with open("/proc/self/status", "rb") as fh:
            return next(int(line.split()[1], 8) for line in fh if line.startswith(b"Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


# FILE_MODES: run files and folders take the user's umask like any file they make (0644/0755 by default), never a
# fixed 0600: a lab that shares one runs folder gives it its group (chgrp, chmod g+s) and works with umask 002; a
# user who wants runs private sets umask 077. A fixed 0640/0750 would hide runs from other users on machines where
# 0644 is the norm and still not let a group write; the umask is the one setting a user already has for this.


class NotAFileError(OSError):
    """A run file that is a symbolic link, a directory or anything else but a regular file."""


class FileTooLargeError(OSError):
    """A file bigger than ResLab ever writes there (``strerror`` says the limit)."""


def kind_of(mode: int) -> str:
    """'directory', 'symbolic link', ... for an lstat mode; 'file' for a regular file."""
    return next((name for test, name in _KINDS if test(mode)), "file")


def not_a_file(path: Path, kind: str) -> NotAFileError:
    why = "ResLab never follows links in a run folder" if kind == "symbolic link" else "ResLab cannot use it"
    return NotAFileError(errno.EINVAL, f"{Path(path).name} is a {kind}, not a file ({why}): remove it", str(path))


def open_regular(path: Path, flags: int, mode: int = 0o666) -> int:
    """os.open that refuses symbolic links and anything but a regular file (NotAFileError)."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            try:
                kind = kind_of(os.lstat(path).st_mode)
            except OSError:
                raise exc from None
            raise not_a_file(path, kind) from None
        raise
    mode_now = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode_now):
        os.close(fd)
        raise not_a_file(path, kind_of(mode_now))
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (os.write may write fewer). The one place bytes reach a run file."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_bytes(path: Path, limit: int = MAX_JSON_BYTES) -> bytes:
    """A regular file's bytes; FileNotFoundError when missing, NotAFileError for a link, directory, FIFO or device,
    FileTooLargeError when it holds more than ``limit`` bytes (never read: a 20 GB file must not fill the memory)."""
    fd = open_regular(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        too_big = os.fstat(fd).st_size > limit
        data = b"" if too_big else fh.read(limit + 1)      # + 1: a file that grew meanwhile is caught too
    if too_big or len(data) > limit:
        raise FileTooLargeError(errno.EFBIG, f"it is larger than {size_text(limit)}, more than ResLab writes there",
                                str(path))
    return data


def size_text(n: int) -> str:
    """1048576 -> '1 MB' (binary megabytes, as the limits are)."""
    return f"{n / (1 << 20):g} MB" if n >= 1 << 20 else f"{n / 1024:g} kB"


def append_bytes(path: Path, data: bytes) -> None:
    """Append to a regular file (created when missing), never through a link."""
    fd = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder + fsync + rename: readers never see a torn file, and a link
    in the file's place is replaced, never followed. On failure (a full disk) the old file stays as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())        # as any file the user makes (mkstemp's are 0600): see FILE_MODES
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def remove_stale_temp_files(folder: Path, names: tuple[str, ...]) -> list[str]:
    """Delete the temporary files that ``atomic_write_bytes`` left for ``names`` when its process was killed
    mid-write (``.checkpoint.pt.<random>.tmp``). Only for a folder whose writer lock is held: nobody else writes
    those files then. Returns the names removed."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if name.endswith(".tmp") and any(name.startswith(f".{n}.") for n in names):
            try:
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(name)
            except OSError:
                pass
    return removed


def jsonl_lines(data: bytes, name: str) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) of a .jsonl file's bytes. A torn last line (a crash mid-write) is skipped; a bad
    line before it, or bytes that are not UTF-8, raise ValueError naming the file and the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8 text (byte {exc.start})") from None
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append((i + 1, json.loads(line)))
        except (ValueError, RecursionError):   # RecursionError: absurdly nested brackets
            if i == len(lines) - 1 and not text.endswith("\n"):
                break
            raise ValueError(f"{name}: line {i + 1} is not valid JSON") from None
    return out


def mount_of(path: Path) -> str:
    """Where the disk holding ``path`` is mounted, with its device where known: '/dev/sda1 (mounted at /data)'."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        dev = os.stat(p).st_dev
        while p != p.parent and os.stat(p.parent).st_dev == dev:
            p = p.parent
    except OSError:
        return str(p)
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as fh:
            sources = {fields[1]: fields[0] for fields in (line.split() for line in fh) if len(fields) > 1}
    except OSError:
        sources = {}
    source = sources.get(str(p))
    return f"{source} (mounted at {p})" if source and source.startswith("/") else str(p)


def write_error(exc: OSError, where: Path, then: str = "try again") -> str:
    """Why a write in the folder ``where`` failed, said for a person, with what to do ``then``: a full disk, a
    read-only folder, a folder deleted meanwhile; else the error itself."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full: free space on {mount_of(where)} and {then}"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{where} is read-only ({exc.strerror}): make it writable and {then}"
    if exc.errno == errno.ENAMETOOLONG:
        return f"a path in {where} is too long for this system ({exc.strerror}): use a shorter folder or run name"
    if not Path(where).is_dir():
        return f"{where} was deleted while it was being written; nothing more was saved"
    return f"{type(exc).__name__}: {exc}"


def error_text(exc: BaseException, where: Path, then: str = "try again") -> str:
    """One line for a person: an OSError said as ``write_error`` says it (never '[Errno 30] ...'), else its text."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return write_error(exc, where, then=then)
    return str(exc)
