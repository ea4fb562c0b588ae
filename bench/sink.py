"""The attachments' floor: a server that does nothing with a body but keep it.

Each ``PUT`` (or ``POST``, ``PATCH``) body is streamed, as it arrives, into a new
temporary file of ``BENCH_SINK_FOLDER``, which is then fsynced; the answer is ``204``
with ``Sink-Written``, the bytes kept. No database, no authentication, no parsing: what
moving the same bytes over HTTP onto the disk costs, on the same uvicorn (httptools,
uvloop where installed) and with as many worker processes as ``fieldsync serve``.

A bare ASGI app: the benchmark talks to servers and imports no HTTP framework
(``tests/test_layering.py``). ``python -m bench.sink --port P --workers W`` serves it;
``start_sink`` starts that as its own process, ready (``GET /readyz``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench.server import Server, clean_environment, free_port, wait_until_ready

FOLDER_VARIABLE = "BENCH_SINK_FOLDER"
ROOT = Path(__file__).resolve().parent.parent

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def app(scope: Message, receive: Receive, send: Send) -> None:
    """Keep every body on disk, fsynced; ``/readyz`` answers 200."""
    if scope["type"] != "http":  # lifespan is off
        return
    if scope["method"] in ("PUT", "POST", "PATCH"):
        written = await keep(receive)
        await answer(send, 204, [(b"sink-written", str(written).encode())])
    elif scope["method"] == "GET" and scope["path"] == "/readyz":
        await answer(send, 200, [(b"content-length", b"2")], b"ok")
    else:
        await answer(send, 404, [(b"content-length", b"0")])


async def keep(receive: Receive) -> int:
    """The body, written piece by piece as it arrives, then fsynced off the event loop
    (as ``fieldsync serve`` spools a chunk, then writes it in its thread pool)."""
    descriptor, _ = tempfile.mkstemp(dir=os.environ[FOLDER_VARIABLE], prefix="body-")
    with os.fdopen(descriptor, "wb") as file:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            file.write(message.get("body", b""))
            if not message.get("more_body"):
                break
        file.flush()
        await asyncio.get_running_loop().run_in_executor(None, os.fsync, file.fileno())
        return file.tell()


async def answer(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def start_sink(folder: Path, *, workers: int) -> Server:
    """The sink on a free port of 127.0.0.1, its own process group, ready; it keeps its
    bodies in ``folder/bodies`` and logs to ``folder/sink.log``."""
    bodies = folder / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "sink.log"
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 (this Python, our own module, no shell)
            [
                sys.executable,
                "-m",
                "bench.sink",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=folder,
            env={**clean_environment(), FOLDER_VARIABLE: str(bodies), "PYTHONPATH": python_path},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sink = Server(process, port, log)
    try:
        wait_until_ready(sink)
    except Exception:
        sink.stop()
        raise
    return sink


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # only the sink's own process serves

    args = argparse.ArgumentParser(prog="python -m bench.sink")
    args.add_argument("--port", type=int, required=True)
    args.add_argument("--workers", type=int, default=1)
    options = args.parse_args(argv)
    uvicorn.run(
        "bench.sink:app",
        host="127.0.0.1",
        port=options.port,
        workers=options.workers,
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
