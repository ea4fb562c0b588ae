"""A poor link, for tests over real HTTP: a TCP relay on loopback that hands each
connection to the next of several servers in turn (as a load balancer would) and cuts
it after a budget of bytes from the client (as a 2G link drops). The client sees its
connection reset mid-request; the server sees a request cut short."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator
from types import TracebackType

PIECE = 16 * 1024


class FlakyLink:
    """Listens on ``port``; each connection goes to the next of ``upstreams`` (ports on
    127.0.0.1, which a test may change while it runs: a server restarted) and is cut
    once the client has sent ``drop_every`` bytes on it."""

    def __init__(self, upstreams: list[int], *, drop_every: int) -> None:
        self.upstreams = upstreams
        self.drop_every = drop_every
        self.connections = 0
        self.cuts = 0
        self._turn = itertools.count()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FlakyLink:
        self._accepting.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            port = self.upstreams[next(self._turn) % len(self.upstreams)]
            thread = threading.Thread(target=self._relay, args=(client, port), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _relay(self, client: socket.socket, port: int) -> None:
        with client, contextlib.suppress(OSError):
            try:
                server = socket.create_connection(("127.0.0.1", port), timeout=30)
            except OSError:
                return  # the server is down (restarting): the client sees a refused link
            with server:
                back = threading.Thread(target=_pump, args=(server, client), daemon=True)
                back.start()
                sent = 0
                for piece in _pieces(client):
                    room = self.drop_every - sent
                    server.sendall(piece[:room])
                    sent += min(len(piece), room)
                    if sent >= self.drop_every:
                        self.cuts += 1
                        break
                # Cut both ways at once, as a link that drops does.
                for end in (client, server):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)
                back.join(timeout=5)


def _pieces(source: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            piece = source.recv(PIECE)
        except OSError:
            return
        if not piece:
            return
        yield piece


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        for piece in _pieces(source):
            target.sendall(piece)
        target.shutdown(socket.SHUT_WR)
