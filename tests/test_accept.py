"""``api.accept.FairAcceptLoop`` in one process: it accepts one connection at a time
and waits before the next while it holds some, and loses none by waiting. How it
spreads connections over several processes is checked through a real ``fieldsync serve``
in ``tests/test_server.py``."""

from __future__ import annotations

import asyncio
import time

from api import accept
from api.accept import FairAcceptLoop

CONNECTIONS = 6


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    await reader.read()  # held open until the client closes
    writer.close()


async def _connections_opened_at_once() -> tuple[list[bytes], float]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.perf_counter()
    opened = await asyncio.gather(
        *(asyncio.open_connection("127.0.0.1", port) for _ in range(CONNECTIONS))
    )
    echoed = []
    for number, (reader, writer) in enumerate(opened):
        writer.write(b"%d\n" % number)
        # A connection never accepted would never answer.
        echoed.append(await asyncio.wait_for(reader.readline(), timeout=10))
    seconds = time.perf_counter() - started
    for _, writer in opened:
        writer.close()
    server.close()
    await server.wait_closed()
    return echoed, seconds


def test_connections_arriving_together_are_all_accepted_the_later_ones_after_a_wait() -> None:
    with asyncio.Runner(loop_factory=FairAcceptLoop) as runner:
        echoed, seconds = runner.run(_connections_opened_at_once())
    assert echoed == [b"%d\n" % number for number in range(CONNECTIONS)]
    # The k-th connection waited k steps while the process held the k before it.
    waited = sum(range(CONNECTIONS)) * accept.ACCEPT_STEP_SECONDS
    assert seconds >= waited


class _Counted(asyncio.Protocol):
    accepted = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _Counted.accepted += 1


async def _closed_while_waiting() -> int:
    _Counted.accepted = 0
    server = await asyncio.get_running_loop().create_server(_Counted, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    held = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.05)  # accepted: the next connection waits a step
    waiting = await asyncio.open_connection("127.0.0.1", port)  # in the kernel's queue
    server.close()  # before the step is over
    await asyncio.sleep(2 * accept.ACCEPT_STEP_SECONDS)
    for _, writer in (held, waiting):
        writer.close()
    await server.wait_closed()
    return _Counted.accepted


def test_a_server_closed_during_a_wait_accepts_nothing_more_and_raises_nothing() -> None:
    errors: list[dict[str, object]] = []
    with asyncio.Runner(loop_factory=FairAcceptLoop) as runner:
        runner.get_loop().set_exception_handler(lambda _loop, context: errors.append(context))
        accepted = runner.run(_closed_while_waiting())
    assert accepted == 1
    assert errors == []
