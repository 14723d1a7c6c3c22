"""Advisory file locks (flock) that one process holds while it owns something: a run (its writer) or a runs folder
(its scheduler). The kernel drops the lock when the holder dies, however it dies, so a held lock means "alive".

A lock can be handed to a child process without a moment where nobody holds it: the parent passes the locked
descriptor (``subprocess.Popen(pass_fds=...)``) and names it in ``$RESLAB_LOCK_FD``; the child adopts it
(:meth:`FileLock.adopt_inherited`) and the parent closes its copy. flock belongs to the open file description,
which both copies share, so the lock stays held throughout and ends with the child.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

from core.util.files import open_regular, read_bytes

LOCK_FD_ENV = "RESLAB_LOCK_FD"


class LockHeldError(OSError):
    """Another process holds the lock."""


class FileLock:
    """An exclusive, non-blocking flock on ``path`` (created when missing; holds "pid host" for people to read)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this process holds it."""
        return self.fd is not None

    def acquire(self) -> None:
        """Take the lock or raise LockHeldError at once. Taking a lock this object already holds does nothing."""
        if self.fd is not None:
            return
        fd = open_regular(self.path, os.O_RDWR | os.O_CREAT)   # never through a link (NotAFileError)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeldError(exc.errno, f"{self.path} is locked by another process") from None
            raise
        self.fd = fd
        self.note_holder()

    def note_holder(self, pid: int | None = None) -> None:
        """Who holds it, for people to read; not needed for the lock itself (nor possible on a full disk)."""
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{pid or os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass

    def still_ours(self) -> bool:
        """True while this process holds the lock and its file is still the one at ``path``. False once that file
        was deleted or replaced (`rm runs/*/lock` after a crash): the flock then guards a file nobody else opens,
        and another process may hold a lock on the new file at the path. False when not held."""
        if self.fd is None:
            return False
        try:
            return os.path.samestat(os.fstat(self.fd), os.stat(self.path))
        except OSError:
            return False

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def hand_over(self) -> None:
        """Forget this process's copy without unlocking: a child that inherited the descriptor holds the lock now."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def adopt_inherited(self) -> bool:
        """Take over a locked descriptor of this very file that a parent passed in $RESLAB_LOCK_FD.

        Returns False (and adopts nothing) when none was passed or it is not a lock on ``self.path``."""
        text = os.environ.get(LOCK_FD_ENV, "")
        if self.fd is not None or not text.isdigit():
            return self.fd is not None
        fd = int(text)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            if same:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # already ours: succeeds at once, proves it
        except OSError:
            return False
        if not same:
            return False
        os.environ.pop(LOCK_FD_ENV, None)  # our own children must not try to adopt it again
        self.fd = fd
        self.note_holder()
        return True

    def is_locked(self) -> bool:
        """True when some process (this one included) holds the lock."""
        if self.fd is not None:
            return True
        try:
            fd = open_regular(self.path, os.O_RDONLY)
        except OSError:   # missing, or a link or a folder that nobody can hold (the run is listed damaged)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def holder(self) -> str:
        """What the holder wrote ("pid host"), or "" when unreadable."""
        try:
            return read_bytes(self.path, 4096).decode(errors="replace").strip()
        except OSError:
            return ""
