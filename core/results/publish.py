"""A report folder appears whole or not at all: it is written into a hidden folder beside it and moved into place.

``staged(out_dir)`` gives the hidden folder (``.NAME.partial-PID-XXXXXX`` in the same parent, so the move is a rename
on one disk); when the block ends without an error every file is flushed to the disk and the folder is renamed to
``out_dir`` (one atomic step), or, when ``out_dir`` exists already (``--out`` given twice), each file is renamed into
it (each file atomically: a reader sees the old or the new file, never a torn one). On an error (a full disk) the
hidden folder is removed and ``out_dir`` is as it was: nothing was written. A kill -9 leaves only the hidden folder,
which the next report into the same parent removes once its process is gone.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

PARTIAL = re.compile(r"\.(?P<name>.+)\.partial-(?P<pid>\d+)-[0-9a-f]+")
STALE_S = 24 * 3600.0          # a leftover this old goes even where its pid is in use (by another process now)


@contextlib.contextmanager
def staged(out_dir: Path) -> Iterator[Path]:
    """The hidden folder to write ``out_dir``'s files into; published when the block succeeds (see the module)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir.parent)
    staging = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{secrets.token_hex(3)}"
    staging.mkdir()
    try:
        yield staging
        publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, out_dir: Path) -> None:
    """Flush every file of ``staging`` to the disk, then rename the folder (or, into an existing ``out_dir``, each
    file) into place."""
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    if not out_dir.exists():
        try:
            os.rename(staging, out_dir)
            return
        except OSError:
            if not out_dir.exists():
                raise
    for path in files:                      # into an existing folder: file by file, each atomically
        target = out_dir / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def remove_leftovers(parent: Path) -> None:
    """Remove hidden report folders that a killed report left in ``parent`` (their process is gone)."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        match = PARTIAL.fullmatch(entry.name)
        if not match or not entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            old = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_S
            if old or not _alive(int(match["pid"])):
                shutil.rmtree(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True            # another user's process
    return True
