"""SQLite's writers queue for the write lock, first come first served, across threads
and processes (``sync.platform.writers``); a turn not had within the busy timeout is
refused as SQLite refuses a lock, and a turn is given back however a transaction ends.

SQLite only: PostgreSQL has no single write lock to queue for."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sync.platform import writers
from sync.platform.database import WRITE, Busy, brief_write, create_db_engine, unavailable

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def database(tmp_path: Path) -> str:
    return str(tmp_path / "writers.sqlite")


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    made = create_db_engine(f"sqlite:///{database}", sqlite_busy_timeout_ms=5_000)
    yield made
    made.dispose()


def _writing(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{WRITE: True})


def _queued(database: str, count: int) -> None:
    """Wait until ``count`` threads of this process wait for their turn."""
    turns = writers.turns_of(database)
    for _ in range(500):
        if len(turns._waiting) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{count} writers never queued")


def test_writers_of_a_process_write_in_the_order_they_came(engine: Engine, database: str) -> None:
    order: list[int] = []

    def write(number: int) -> None:
        with _writing(engine) as connection, connection.begin():
            order.append(number)

    first = _writing(engine)
    first.begin()
    threads = []
    for number in range(6):
        thread = threading.Thread(target=write, args=(number,))
        thread.start()
        threads.append(thread)
        _queued(database, number + 1)
    first.commit()
    first.close()
    for thread in threads:
        thread.join(10)
    assert order == list(range(6))


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_a_turn_is_given_back_however_the_transaction_ends(engine: Engine, end: str) -> None:
    connection = _writing(engine)
    connection.begin()
    getattr(connection, end)()
    with brief_write(engine, patience_ms=0):  # no one holds a turn: taken at once
        pass
    connection.close()


def test_a_turn_is_given_back_once_its_commit_is_on_disk(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not as the commit begins: the next writer would wait for that commit in SQLite's
    busy handler, which wakes up late."""
    committed: list[bool] = []
    given_back = writers.Turns.give_back
    with _writing(engine) as connection:
        raw: Any = connection.connection.dbapi_connection

        def give_back(turns: writers.Turns, descriptor: int) -> None:
            committed.append(not raw.in_transaction)
            given_back(turns, descriptor)

        monkeypatch.setattr(writers.Turns, "give_back", give_back)
        with connection.begin():
            connection.exec_driver_sql("CREATE TABLE written (n INTEGER)")
    assert committed == [True]


def test_a_writer_copies_the_log_into_the_database_file_after_its_turn(
    engine: Engine, database: str, tmp_path: Path
) -> None:
    """SQLite's own checkpoint, run inside a commit that fills the log, is off on the
    server's connections; each writer checkpoints once its turn is given back."""
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    with _writing(engine) as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE written (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO written VALUES (7)")

    # The database file alone, without its log, holds the write.
    alone = tmp_path / "alone.sqlite"
    shutil.copyfile(database, alone)
    copy = sqlite3.connect(alone)
    try:
        assert copy.execute("SELECT n FROM written").fetchall() == [(7,)]
    finally:
        copy.close()


def test_the_log_is_started_over_under_writers_one_after_another(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer copies the log after its turn, while the next writer has begun: were that
    all, the log would never be whole in the database as a writer begins, SQLite would
    never start it over, and it would grow by every write. Past ``LOG_LIMIT`` a writer
    copies it holding its turn, so the next starts it over, cut back to the limit."""
    monkeypatch.setattr(writers, "LOG_LIMIT", 256 * 1024)
    engine = create_db_engine(f"sqlite:///{database}", sqlite_busy_timeout_ms=5_000)
    with _writing(engine) as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE written (doc TEXT)")
    sizes: list[int] = []

    def write() -> None:
        for _ in range(40):
            with _writing(engine) as connection, connection.begin():
                connection.exec_driver_sql("INSERT INTO written VALUES (?)", ("x" * 100_000,))
            sizes.append(os.path.getsize(database + "-wal"))

    writing = [threading.Thread(target=write) for _ in range(2)]
    for thread in writing:
        thread.start()
    for thread in writing:
        thread.join(60)
    engine.dispose()

    assert len(sizes) == 80  # 8 MB written in all
    assert max(sizes) < 4 * 256 * 1024


def test_a_writer_that_gave_up_leaves_its_place_to_the_next(engine: Engine, database: str) -> None:
    holder = _writing(engine)
    holder.begin()
    refused: list[BaseException] = []
    came: list[str] = []

    def impatient() -> None:
        try:
            with brief_write(engine, patience_ms=100):
                came.append("impatient")
        except Busy as error:
            refused.append(error)

    def patient() -> None:
        with _writing(engine) as connection, connection.begin():
            came.append("patient")

    first = threading.Thread(target=impatient)
    first.start()
    _queued(database, 1)
    second = threading.Thread(target=patient)
    second.start()
    first.join(10)
    assert len(refused) == 1
    assert "database is locked" in str(refused[0])
    holder.commit()
    holder.close()
    second.join(10)
    assert came == ["patient"]


def test_each_turn_says_how_long_it_was_waited_for_and_held_and_the_holders_cpu(
    engine: Engine, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[writers.Turn] = []
    monkeypatch.setattr(writers, "on_turn", told.append)
    first = _writing(engine)
    first.begin()
    busy_until = time.thread_time() + 0.05
    while time.thread_time() < busy_until:  # CPU spent holding the turn
        pass

    def second() -> None:
        with _writing(engine) as connection, connection.begin():
            pass

    waiting = threading.Thread(target=second)
    waiting.start()
    _queued(database, 1)
    time.sleep(0.1)  # the second writer waits at least this long
    first.commit()
    waiting.join(10)
    first.close()

    assert len(told) == 2
    held, waited = told
    assert held.cpu_s is not None
    assert held.cpu_s >= 0.05
    assert held.held_s >= 0.1 + held.cpu_s - 0.01  # the busy loop, then the sleep
    assert waited.waited_s >= 0.1
    assert waited.cpu_s is not None
    # Two clocks, read a few nanoseconds apart, of a turn a tenth of a millisecond long.
    assert waited.cpu_s <= waited.held_s + 1e-5


def test_a_turn_that_cannot_be_counted_still_commits(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_turn: writers.Turn) -> None:
        raise OSError("the metrics folder is gone")

    monkeypatch.setattr(writers, "on_turn", broken)
    with _writing(engine) as connection, connection.begin():
        connection.exec_driver_sql("PRAGMA user_version = 9")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA user_version").scalar() == 9
    assert any("could not be counted" in r.getMessage() for r in caplog.records)


def test_a_turn_given_back_by_another_thread_has_no_cpu_figure(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[writers.Turn] = []
    monkeypatch.setattr(writers, "on_turn", told.append)
    connection = _writing(engine)
    connection.begin()
    closing = threading.Thread(target=connection.close)
    closing.start()
    closing.join(10)
    [turn] = told
    assert turn.cpu_s is None
    assert turn.held_s >= 0


def _hold_a_turn(database: str, holding: ProcessEvent, done: ProcessEvent) -> None:
    engine = create_db_engine(f"sqlite:///{database}")
    with _writing(engine) as connection, connection.begin():
        holding.set()
        done.wait(30)


@pytest.fixture
def other_process(database: str) -> Iterator[tuple[ProcessEvent, BaseProcess]]:
    """Another server process, holding a writer's turn until told ``done``."""
    holding, done = SPAWN.Event(), SPAWN.Event()
    process = SPAWN.Process(target=_hold_a_turn, args=(database, holding, done))
    process.start()
    try:
        assert holding.wait(30), "the other process never took its turn"
        yield done, process
    finally:
        # Not for a process killed waiting for it: the event would wait for its ack.
        if process.is_alive():
            done.set()
        process.join(30)
        if process.is_alive():
            process.kill()


def test_a_turn_another_process_holds_past_the_busy_timeout_is_refused_as_locked(
    database: str, other_process: tuple[ProcessEvent, BaseProcess]
) -> None:
    engine = create_db_engine(f"sqlite:///{database}", sqlite_busy_timeout_ms=200)
    try:
        started = time.monotonic()
        with (
            pytest.raises(sa.exc.OperationalError) as refused,
            _writing(engine) as connection,
            connection.begin(),
        ):
            pass
        assert unavailable(refused.value)  # answered 503, Retry-After
        assert time.monotonic() - started >= 0.2
        with pytest.raises(Busy), brief_write(engine, patience_ms=50):
            pass
    finally:
        engine.dispose()


def test_the_turn_passes_when_the_other_process_commits(
    engine: Engine, other_process: tuple[ProcessEvent, BaseProcess]
) -> None:
    done, _ = other_process
    came = threading.Event()

    def write() -> None:
        with _writing(engine) as connection, connection.begin():
            came.set()

    thread = threading.Thread(target=write)
    thread.start()
    assert not came.wait(0.3)  # waits while the other process writes
    done.set()
    assert came.wait(10)
    thread.join(10)


def test_the_turn_of_a_process_that_dies_passes_on(
    engine: Engine, other_process: tuple[ProcessEvent, BaseProcess]
) -> None:
    _, process = other_process
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    with brief_write(engine, patience_ms=5_000):
        pass


def test_a_turn_that_came_too_late_is_let_go(
    database: str, other_process: tuple[ProcessEvent, BaseProcess]
) -> None:
    """The lock another process let go of after this one stopped waiting is not kept by
    the thread that waited for it."""
    done, process = other_process
    turns = writers.turns_of(database)
    with pytest.raises(writers.TurnNotTaken):
        turns.take(0.1)
    done.set()
    process.join(30)
    descriptor = turns.take(5)
    turns.give_back(descriptor)


def test_a_lock_file_that_cannot_be_opened_leaves_the_writers_to_sqlite(
    engine: Engine, database: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Say a file made by another account: writes go on, in turn within the process,
    and the operators are told once."""

    def refused(path: str, patience_s: float) -> int:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(writers, "_lock_file", refused)
    monkeypatch.setattr(writers.turns_of(database), "_warned", False)
    for _ in range(3):
        with _writing(engine) as connection, connection.begin():
            connection.exec_driver_sql("PRAGMA user_version = 7")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA user_version").scalar() == 7
    warned = [r for r in caplog.records if "do not queue between processes" in r.getMessage()]
    assert len(warned) == 1


def test_a_database_in_memory_has_no_queue() -> None:
    engine = create_db_engine("sqlite://")
    try:
        with _writing(engine) as connection, connection.begin():
            raw = connection.connection.dbapi_connection
            assert not isinstance(raw, writers.QueuedConnection)
    finally:
        engine.dispose()
