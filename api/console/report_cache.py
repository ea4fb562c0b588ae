"""The programme's reports, kept in this process while what they count is unchanged.

A report reads every attendance of its period, and the programme's page asks for the
totals and for each year. What a report counts changes only by a change devices pull
(a push, a merge, a resolution, an admin's edit of a community), and every such change
moves the sync clock (``sync.engine.changelog``). So a report is kept under the clock
it was read at, with who asked (their role and scope), what they asked and the extra
facts it depends on (today, for agreements), and is read again as soon as the clock
moves. The clock is read before the report: a change committed in between can only
file a newer report under an older clock, never an older report under a newer one.
Each server process keeps its own few reports.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlmodel import Session

from sync.accounts.principal import Principal
from sync.engine import changelog

Report = TypeVar("Report")

SIZE = 128
"""Reports kept at most; the least recently read goes first."""

_kept: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


def kept(
    session: Session,
    principal: Principal,
    name: str,
    asked: BaseModel,
    make: Callable[[], Report],
    *depends_on: Hashable,
) -> Report:
    """The report ``name`` for ``asked``: kept, or ``make()``'s, kept from now on."""
    seq, epoch = changelog.clock(session)
    key = (name, principal, repr(asked), seq, epoch, *depends_on)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            found: Report = _kept[key]
            return found
    report = make()
    with _lock:
        _kept[key] = report
        while len(_kept) > SIZE:
            _kept.popitem(last=False)
    return report
