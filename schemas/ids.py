"""Random ids drawn without a system call each.

``uuid.uuid4()`` reads 16 bytes from the kernel (``os.urandom``), and CPython lets go of
the GIL around that read. Winning it back beside a computing thread of the same process
takes up to the interpreter's switch interval (5 ms): a server's push measured 2.3 ms a
call, made under its locks (the audit chain's transaction id, each conflict's id), and
the event loop makes one for every request it logs. So the bytes are read from the
kernel 4 kB at a time, for each thread apart, and handed out from there: the same
randomness, one read for 256 ids.

A child process forked after a read must not hand out its parent's bytes again: its
pool is emptied as it starts (``os.register_at_fork``).
"""

import os
import threading
import uuid

POOL_BYTES = 4096


class _Pool(threading.local):
    """A thread's random bytes read ahead, and how many of them were handed out."""

    def __init__(self) -> None:
        self.data = b""
        self.used = 0


_pool = _Pool()


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the operating system's random source, as ``os.urandom``."""
    pool = _pool
    start = pool.used
    if start + count > len(pool.data):
        pool.data, start = os.urandom(max(POOL_BYTES, count)), 0
    pool.used = start + count
    return pool.data[start : start + count]


def new_id() -> uuid.UUID:
    """A random (version 4) UUID, as ``uuid.uuid4()`` makes one."""
    return uuid.UUID(bytes=random_bytes(16), version=4)


def _forget_the_pool() -> None:
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_the_pool)
