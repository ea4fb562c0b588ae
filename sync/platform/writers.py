"""SQLite's writers in turn: first come, first served, across threads and processes.

SQLite lets one transaction write at a time. A writer that finds the write lock taken is
left to SQLite's busy handler, which sleeps between tries in steps that grow to 100 ms:
under load the lock goes to whichever writer happens to try just after it is let go,
most often one that has only just come, while one that came early sleeps through turn
after turn. With four tablets pushing at once to two server processes, a batch waited
2.4 s at p95 and 4.1 s at p99 for a median of under 0.5 s.

So the server's own writers queue for the lock instead. Within a process, threads take
turns in the order they asked (a condition variable). Between processes, the thread
whose turn it is waits on an advisory lock of the operating system (``flock``) on a file
beside the database (``<database>-writers``, always empty), which the kernel hands on the
moment it is let go, and lets go by itself if the process dies. Only then does the
transaction begin (``BEGIN IMMEDIATE``). The turn is given back when the connection
commits (once the commit is on disk), rolls back or closes (``QueuedConnection``: every
way SQLAlchemy and the pool end a transaction goes through one of the three). A writer
copies the log into the database file (SQLite's checkpoint) after its commit, once its
turn is given back, so that no writer waits for it; and, when the log has grown past
``LOG_LIMIT``, before giving it back, so that the next writer starts the log over.

How long writers wait for their turn and hold it, and how much of the holding is the
holder's own CPU, is told to ``on_turn`` (``api.metrics`` counts it for Prometheus): a
write turn held most of the time says that SQLite's one writer is what bounds pushes.

The queue only orders the waiting; SQLite's own lock still decides who writes. A writer
that does not queue — another program, the ``sqlite3`` shell — is waited for by the busy
timeout as before, and a turn not had within the connection's busy timeout is refused
as SQLite refuses a lock it waited for too long (``database is locked``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("fieldsync")

# The turn of a process whose writers could not open the lock file (see ``take``).
NO_FILE = -1

# The size SQLite's log is cut back to when it starts over (``journal_size_limit``), and
# past which a writer copies it into the database before giving its turn back.
LOG_LIMIT = 64 * 1024 * 1024


class TurnNotTaken(Exception):
    """No turn came within the patience given."""


@dataclass(frozen=True)
class Turn:
    """One writer's turn, once given back."""

    waited_s: float  # from asking for it to having it
    held_s: float  # from having it to giving it back (its commit on disk)
    # The holding thread's CPU while it held the turn (Python and SQLite's own work);
    # None when another thread gave it back (a connection closed by the pool).
    cpu_s: float | None


# Told of every turn given back; set once per process (``api.metrics``).
on_turn: Callable[[Turn], None] | None = None


class Turns:
    """The writers of one database file in this process, in the order they came."""

    def __init__(self, database: str) -> None:
        self.lock_path = database + "-writers"
        self.log_path = database + "-wal"
        self._changed = threading.Condition()
        self._taken = False
        self._waiting: deque[object] = deque()
        self._warned = False

    def take(self, patience_s: float) -> int:
        """Wait for this thread's turn, at most ``patience_s``; the descriptor of the
        lock file, held locked, to give back by ``give_back``."""
        deadline = time.monotonic() + patience_s
        me = object()
        with self._changed:
            self._waiting.append(me)
            try:
                came = self._changed.wait_for(
                    lambda: not self._taken and self._waiting[0] is me, timeout=patience_s
                )
            finally:
                self._waiting.remove(me)
            if not came:
                self._changed.notify_all()  # the next in line may have waited on us
                raise TurnNotTaken
            self._taken = True
        try:
            return _lock_file(self.lock_path, deadline - time.monotonic())
        except OSError as error:
            # Say a file another account made and this one cannot read: the processes
            # are left to SQLite's lock, which still decides, as before the queue.
            if not self._warned:
                self._warned = True
                log.warning(
                    "SQLite's writers of %s do not queue between processes: %s",
                    self.lock_path,
                    error,
                )
            return NO_FILE
        except BaseException:
            self._hand_on()
            raise

    def give_back(self, descriptor: int) -> None:
        if descriptor != NO_FILE:
            os.close(descriptor)  # lets go of the file's lock
        self._hand_on()

    def _hand_on(self) -> None:
        with self._changed:
            self._taken = False
            self._changed.notify_all()


def _lock_file(path: str, patience_s: float) -> int:
    """``path`` opened and locked (``flock``), waiting for another process to let go of
    it at most ``patience_s``."""
    # Read only: an flock needs no more, so the file made by one account (an operator's
    # command) can be locked by another (the server's).
    descriptor = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return descriptor
    except BlockingIOError:
        pass
    except BaseException:
        os.close(descriptor)
        raise
    # A blocking flock has no time limit: a thread waits in it, and is left to close the
    # file once it gets the lock if that came too late.
    got = threading.Event()
    settled = threading.Lock()
    late = False

    def wait() -> None:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        with settled:
            if late:
                os.close(descriptor)
            else:
                got.set()

    threading.Thread(target=wait, name="fieldsync-sqlite-turn", daemon=True).start()
    if got.wait(max(patience_s, 0.0)):
        return descriptor
    with settled:
        if got.is_set():
            return descriptor
        late = True
    raise TurnNotTaken


_TURNS: dict[str, Turns] = {}
_TURNS_MADE = threading.Lock()


def turns_of(database: str) -> Turns:
    """The queue of writers of the database file ``database`` in this process (one for
    every engine on the same file)."""
    path = os.path.realpath(database)
    with _TURNS_MADE:
        turns = _TURNS.get(path)
        if turns is None:
            turns = _TURNS[path] = Turns(path)
        return turns


class QueuedConnection(sqlite3.Connection):
    """A connection to a database file whose writers queue (``take_turn`` before
    ``BEGIN IMMEDIATE``); its turn is given back as it commits, rolls back or closes."""

    turns: Turns | None = None
    _held: int | None = None
    # When the turn held was asked for and had, and the thread's CPU time then.
    _asked = _had = _cpu = 0.0
    _holder = 0

    def take_turn(self, patience_s: float) -> None:
        if self.turns is not None and self._held is None:
            self._asked = time.monotonic()
            self._held = self.turns.take(patience_s)
            self._had, self._cpu = time.monotonic(), time.thread_time()
            self._holder = threading.get_ident()

    def give_turn_back(self) -> None:
        held, self._held = self._held, None
        if held is None or self.turns is None:
            return
        same_thread = threading.get_ident() == self._holder
        # The CPU clock is read inside the wall clock's span, at either end.
        cpu_s = time.thread_time() - self._cpu if same_thread else None
        turn = Turn(
            waited_s=self._had - self._asked, held_s=time.monotonic() - self._had, cpu_s=cpu_s
        )
        self.turns.give_back(held)
        observer = on_turn
        if observer is not None:
            try:
                observer(turn)
            except Exception:  # a figure lost, never the commit it comes before
                log.exception("a write turn could not be counted")

    def commit(self) -> None:
        # Given back once the commit is on disk, so that the next writer's ``BEGIN
        # IMMEDIATE`` finds the lock free at once. Given back as the commit began, the
        # next writer waited for that commit in SQLite's busy handler, which sleeps in
        # steps (1, 2, 5, 10 ms…) and so woke up to a step late: its ``BEGIN
        # IMMEDIATE`` took 14.5 ms a push, for a commit of 4.6 ms at the median.
        wrote = self._held is not None
        copied = False
        try:
            super().commit()
            if wrote and self._log_too_long():
                # Copied while the turn is held, the log is whole in the database when
                # the next writer begins, and SQLite starts it over (cut back to
                # LOG_LIMIT): copied after, under writers one after the other, it never
                # was, and the log grew by every push (1.6 GB in 15 s of a test's load).
                self.checkpoint()
                copied = True
        finally:
            self.give_turn_back()
        if wrote and not copied:
            self.checkpoint()

    def _log_too_long(self) -> bool:
        try:
            return self.turns is not None and os.path.getsize(self.turns.log_path) > LOG_LIMIT
        except OSError:
            return False

    def checkpoint(self) -> None:
        """Copy the log into the database file, after the turn (or holding it, when the
        log is past ``LOG_LIMIT``: see ``commit``). SQLite's own checkpoint is off on
        queued connections (``wal_autocheckpoint=0``, set as they open): it runs inside
        the commit that fills the log past a thousand pages, and would hold that
        writer's turn 30 ms or so. This one is ``PASSIVE``: it waits for
        no reader or writer, and copies what no reader still needs, leaving the rest to
        the next; one that finds another connection's checkpoint running leaves the
        work to it."""
        try:
            self.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.warning("SQLite's log could not be copied into the database", exc_info=True)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_turn_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_turn_back()


def connect_args(database: str | None) -> dict[str, Any]:
    """What ``sqlite3.connect`` is given for the database ``database`` (a path; none, or
    ``:memory:``, for a database in memory, which no other process can write)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return {}
    return {"factory": QueuedConnection}
