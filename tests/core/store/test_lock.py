"""core/store/lock.py: one holder at a time, and the hand-over of a held lock to a child process with no moment where
nobody holds it (what the scheduler does for each trainer it starts)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.store.lock import LOCK_FD_ENV, FileLock, LockHeldError
from tests.conftest import ROOT

CHILD = """
import sys, time
from core.store.lock import FileLock
lock = FileLock(sys.argv[1])
print(lock.adopt_inherited(), lock.adopt_inherited(), flush=True)
sys.stdin.readline()          # hold it until the test says so
"""


def test_one_holder_at_a_time(tmp_path):
    a, b = FileLock(tmp_path / "lock"), FileLock(tmp_path / "lock")
    a.acquire()
    with pytest.raises(LockHeldError):
        b.acquire()
    assert b.is_locked() and not b.held and a.holder().split()[0] == str(os.getpid())
    assert not b.adopt_inherited()       # nothing was handed to this process
    a.release()
    b.acquire()
    assert b.held and a.is_locked()
    b.release()
    assert not a.is_locked()


def test_hand_over_to_a_child_keeps_the_lock_held_until_the_child_ends(tmp_path):
    path = tmp_path / "lock"
    parent = FileLock(path)
    parent.acquire()
    env = {**os.environ, LOCK_FD_ENV: str(parent.fd), "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], env=env, pass_fds=(parent.fd,),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout.readline().split() == ["True", "True"]   # adopted, and still its own on asking again
        parent.hand_over()
        assert not parent.held and FileLock(path).is_locked()
        with pytest.raises(LockHeldError):
            FileLock(path).acquire()
        assert parent.holder().split()[0] == str(child.pid)
    finally:
        child.communicate("\n", timeout=30)
    assert not FileLock(path).is_locked()        # gone with the child, however it ends


def test_a_lock_knows_when_its_file_was_deleted_or_replaced(tmp_path):
    """`rm runs/*/lock` after a crash: the holder's flock is on a file no longer at the path, so a second process
    can lock the new file there; the holder must be able to tell (issue 20)."""
    path = tmp_path / "lock"
    lock = FileLock(path)
    assert not lock.still_ours()          # not held
    lock.acquire()
    assert lock.still_ours()
    path.unlink()
    assert not lock.still_ours()          # deleted
    other = FileLock(path)
    other.acquire()                       # a second holder on the new file
    assert not lock.still_ours() and other.still_ours()
    lock.release()
    other.release()
