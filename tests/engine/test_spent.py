"""``Spent``: a push's CPU as laps of its thread's clock, each phase its own stretch."""

import time

from sync.engine.spent import PHASES, Spent


def _work(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_laps_count_each_stretch_once_and_nothing_else() -> None:
    spent = Spent()
    _work(0.01)  # before the start: not counted
    first = time.thread_time()
    spent.start()
    _work(0.01)
    spent.lap("reads")
    _work(0.02)
    spent.lap("decisions")
    spent.lap("writes")  # nothing done since the last lap
    last = time.thread_time()

    assert spent.seconds["reads"] >= 0.01
    assert spent.seconds["decisions"] >= 0.02
    assert spent.seconds["writes"] < 0.005
    assert sum(spent.seconds.values()) <= last - first
    assert set(spent.seconds) == set(PHASES)


def test_a_phase_met_twice_adds_up() -> None:
    spent = Spent()
    _work(0.01)
    spent.lap("reads")
    _work(0.01)
    spent.lap("reads")
    assert spent.seconds["reads"] >= 0.02
