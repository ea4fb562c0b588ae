"""How several server processes share the connections that arrive.

``fieldsync serve --workers N`` starts N processes that accept from one listening
socket. uvicorn's event loops take every connection waiting when the socket wakes
them (uvloop drains the queue, asyncio's loop takes up to its backlog, 2048), and a
tablet keeps its connection for all its requests. Four tablets connecting within a
millisecond or two, as a programme's do when the office's network comes back, all
landed in one process: with the benchmark's four tablets and two processes, all four
in one process, or three and one, in every run looked at. The other process idled
while the first's one interpreter did all the work.

``FairAcceptLoop``, the event loop of every process when there are several, accepts
one connection at a time, and a process already holding some lets the others go
first: it waits ``ACCEPT_STEP_SECONDS`` for each connection it holds (at most
``MAX_WAIT_STEPS`` of them) before it takes the next, and takes it then only if no
other process has. The process with the fewest connections answers first, so the
tablets spread evenly, with no state shared between the processes. A wait is 10 to
50 ms, against the hundreds a connection takes to open over 2G; past five connections
the processes wait alike and the first to wake takes the next, as without this loop.
It costs a new connection those 50 ms only when every process holds five or more.

One process serves alone on uvicorn's default loop (uvloop): it has no one to wait
for.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

ACCEPT_STEP_SECONDS = 0.01
MAX_WAIT_STEPS = 5


class FairAcceptLoop(asyncio.SelectorEventLoop):
    """asyncio's event loop, accepting as described above.

    It overrides how asyncio's loop accepts (``_accept_connection``, the reader it
    registers on a listening socket: the same in Python 3.11 to 3.13); what it does
    with an accepted connection is asyncio's own. ``tests/test_accept.py`` checks it
    in one process, ``tests/test_server.py`` the spread through a real
    ``fieldsync serve``. uvicorn takes it by name as a loop factory (0.36 and later)."""

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *timeouts: Any,
    ) -> None:
        held = min(_connections(server), MAX_WAIT_STEPS)
        if not held:
            self._take_one(protocol_factory, sock, sslcontext, server, *timeouts)
            return
        # Stop listening for the wait, or the readable socket would wake the loop at
        # once again; then take one connection if one is still waiting, and listen again.
        self.remove_reader(sock.fileno())
        self.call_later(
            held * ACCEPT_STEP_SECONDS,
            self._accept_after_waiting,
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            *timeouts,
        )

    def _accept_after_waiting(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any,
        server: Any,
        backlog: int,
        *timeouts: Any,
    ) -> None:
        if sock.fileno() == -1 or (server is not None and not server.is_serving()):
            return  # the server closed meanwhile
        # Listening again first: should the accept find the process out of descriptors,
        # asyncio stops listening and starts again a while later, as it would otherwise.
        self.add_reader(
            sock.fileno(),
            self._accept_connection,
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            *timeouts,
        )
        self._take_one(protocol_factory, sock, sslcontext, server, *timeouts)

    def _take_one(
        self,
        protocol_factory: Any,
        sock: socket.socket,
        sslcontext: Any,
        server: Any,
        *timeouts: Any,
    ) -> None:
        """asyncio's own accepting, of one connection (its ``backlog``: at most that many)."""
        accept = super()._accept_connection  # type: ignore[misc]  # not in typeshed
        accept(protocol_factory, sock, sslcontext, server, 1, *timeouts)


def _connections(server: Any) -> int:
    """The connections open on ``server`` (an ``asyncio.Server``), as it counts them to
    know when it may close."""
    count = getattr(server, "_active_count", 0)
    return count if isinstance(count, int) else 0
