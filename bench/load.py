"""The load process: the fleet's tablets pushing and pulling over loopback, timed.

It runs apart from the server *and* from the process that watches the server's
memory and seeds the database, as real tablets are apart from the service: the
benchmark starts it (``multiprocessing``, spawn) and sends it one command at a time
over a pipe (``LoadProcess.call``). It keeps the tablets' state between commands, so
a later batch can update what an earlier one made.

Batches are made, serialised and gzipped *before* the clock starts; the timed part
is the HTTP exchange alone, K devices at once, one thread and one connection each.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import multiprocessing
import statistics
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import httpx

from bench.fleet import DeviceAccess, Fleet
from bench.generator import Record
from bench.workload import RANGER, Batch, Office, Tablet

if TYPE_CHECKING:
    from bench.uploads import Photo

HTTP_TIMEOUT = 900.0  # a slow server answers late; the benchmark reports it, never gives up
PROGRESS_EVERY = 10.0
RESULT_STATUSES = ("applied", "merged", "conflict", "deferred", "rejected")


class LoadFailed(RuntimeError):
    """The load process failed; the message holds its traceback."""


class LoadProcess:
    """The parent's handle on the load process."""

    def __init__(self, fleet: Fleet, *, seed: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, fleet, seed), name="fieldsync-bench-load", daemon=True
        )
        self._process.start()
        child.close()

    def call(self, command: str, **arguments: Any) -> dict[str, Any]:
        self._pipe.send((command, arguments))
        ok, answer = self._pipe.recv()
        if not ok:
            raise LoadFailed(answer)
        result: dict[str, Any] = answer
        return result

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._pipe.send(("stop", {}))
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()


def serve(pipe: Connection, fleet: Fleet, seed: str) -> None:
    """The load process's loop: one command, one answer, until ``stop``."""
    load = Load(fleet, seed)
    while True:
        command, arguments = pipe.recv()
        if command == "stop":
            return
        try:
            pipe.send((True, getattr(load, command)(**arguments)))
        except Exception:  # everything goes back to the parent, which reports it
            pipe.send((False, traceback.format_exc()))


def say(message: str) -> None:
    sys.stdout.write(f"{message}\n")
    sys.stdout.flush()


@dataclass
class Sent:
    """One batch sent: how long the answer took, and what it said."""

    seconds: float
    status_code: int
    statuses: Counter[str] = field(default_factory=Counter)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


class Load:
    """The tablets of a fleet, and what they do on command."""

    def __init__(self, fleet: Fleet, seed: str) -> None:
        self.fleet = fleet
        self.tablets = [
            Tablet(
                seed=f"{seed}:tablet:{index}",
                role=access.device.role,
                user_id=access.device.user_id,
                sectors=[fleet.sectors[i] for i in access.sector_indexes],
                communities=[fleet.communities[i] for i in access.community_indexes],
                categories=fleet.categories if access.device.role == RANGER else None,
            )
            for index, access in enumerate(fleet.tablets)
        ]
        self.devices = [access.device for access in fleet.tablets]
        self.office = Office(f"{seed}:office")
        self.kept: dict[str, list[list[list[Record]]]] = {}
        # What the peer is sent (bench.peer): every batch before the timed push, in
        # order, and the timed push's batches (kept with ``keep``).
        self.before_kept: list[list[Batch]] = []
        self.pushed: dict[str, list[list[Batch]]] = {}
        self.peer_bodies: list[list[tuple[bytes, int]]] = []
        self.ready: list[Batch] = []
        self.album: list[list[Photo]] = []  # each tablet's photos (bench.uploads)

    # ------------------------------------------------------------ commands

    def warm_up(self, size: int) -> dict[str, Any]:
        """Each tablet's first batch, at once; their records get edited later."""
        batches = [[tablet.warm_up(size)] for tablet in self.tablets]
        self.before_kept += batches
        report = self._push(self.devices, batches, label="warm-up")
        report["targets"] = sum(len(tablet.targets) for tablet in self.tablets)
        return report

    def office_edits(self, size: int) -> dict[str, Any]:
        """The office edits every tablet's warm-up records (applied, one after another)."""
        targets = [target for tablet in self.tablets for target in tablet.targets]
        batches = self.office.edits(targets, size)
        self.before_kept.append(batches)
        return self._push([self.fleet.office], [batches], label="office edits")

    def push(
        self, *, batches: int, size: int, label: str, keep: bool = False, budget: float = 0
    ) -> dict[str, Any]:
        """``batches`` batches of ``size`` from every tablet at once; with ``keep``, the
        records they make are kept for the floor. A ``budget`` in seconds stops a
        slow run early (the batches not sent are reported)."""
        made = [[tablet.batch(size) for _ in range(batches)] for tablet in self.tablets]
        if keep:
            self.kept[label] = [[batch.created for batch in device] for device in made]
            self.pushed[label] = made
        return self._push(self.devices, made, label=label, budget=budget)

    def prepare_batch(self, size: int) -> dict[str, Any]:
        """One batch of ``size`` from the first tablet, made now and sent by ``send_batch``
        (so that the server's memory is watched around the request alone)."""
        self.ready = [self.tablets[0].batch(size)]
        return {"changes": size}

    def send_batch(self) -> dict[str, Any]:
        return self._push(self.devices[:1], [self.ready], label="one batch")

    def pull(
        self,
        *,
        device: DeviceAccess,
        limit: int,
        most: int | None = None,
        cursor: str | None = None,
        label: str = "pull",
    ) -> dict[str, Any]:
        """Pages of ``limit`` from ``cursor`` (none: from the start) until caught up or
        ``most`` records are in; gzip on, as tablets ask."""
        entities: Counter[str] = Counter()
        pages = wire = 0
        latencies = []
        with httpx.Client(
            base_url=self.fleet.api,
            timeout=HTTP_TIMEOUT,
            headers={**device.headers, "Accept-Encoding": "gzip"},
        ) as client:
            started = time.perf_counter()
            while True:
                room = limit if most is None else min(limit, most - sum(entities.values()))
                params: dict[str, Any] = {"limit": room}
                if cursor is not None:
                    params["cursor"] = cursor
                sent = time.perf_counter()
                answer = client.get("/sync/pull", params=params)
                latencies.append(time.perf_counter() - sent)
                if answer.status_code != 200:
                    raise RuntimeError(f"{label}: {answer.status_code} {answer.text[:500]}")
                wire += answer.num_bytes_downloaded
                page = answer.json()
                pages += 1
                entities.update(change["entity"] for change in page["changes"])
                cursor = page["cursor"]
                total = sum(entities.values())
                if not page["has_more"] or (most is not None and total >= most):
                    break
            seconds = time.perf_counter() - started
        records = sum(entities.values())
        return {
            "records": records,
            "pages": pages,
            "limit": limit,
            "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds, 1) if seconds else None,
            "page_latency_ms": percentiles(latencies),
            "bytes_on_wire": wire,
            "entities": dict(sorted(entities.items())),
            "cursor": cursor,
        }

    def floor(
        self, *, database_url: str, label: str, user_id: str, device_id: str
    ) -> dict[str, Any]:
        """The plain-insert floor of the records kept from push ``label``."""
        from bench.floor import measure  # only this command needs the drivers' side

        return measure(database_url, self.kept[label], user_id=user_id, device_id=device_id)

    def peer_prepare(self, *, url: str, database: str, label: str) -> dict[str, Any]:
        """The peer (``bench.peer``) gets, untimed, the documents of every batch sent
        before push ``label`` (the warm-up, the office's edits), one client after the
        other; then that push's batches are made into its bodies, for ``peer_push``."""
        from bench.peer import Documents, body, push, stored

        documents = Documents()
        untimed = 0
        for mine in self.before_kept:
            shaped = [documents.of(batch.changes) for batch in mine]
            report = push(url, [[(body(docs), len(docs)) for docs in shaped]], database=database)
            if report["failed_batches"]:
                raise RuntimeError(f"the peer refused the warm-up: {report['failures'][:2]}")
            untimed += report["records"]
        self.peer_bodies = [
            [(body(docs), len(docs)) for docs in (documents.of(b.changes) for b in mine)]
            for mine in self.pushed[label]
        ]
        return {
            "untimed_documents": untimed,
            "records_held": stored(url, database),
            "records_expected_after": len(documents.versions),
        }

    def peer_push(self, *, url: str, database: str, label: str) -> dict[str, Any]:
        """The bodies ``peer_prepare`` made, every client at once, timed."""
        from bench.peer import push

        return push(url, self.peer_bodies, database=database, label=label)

    # ------------------------------------------------------------ photos

    def photos(self, *, size: int, count: int, seed: str) -> dict[str, Any]:
        """``count`` distinct photos of ``size`` bytes for each tablet, made and hashed
        now, for ``upload`` and ``held``."""
        from bench.uploads import album

        self.album = album(len(self.devices), size=size, count=count, seed=seed)
        return {"photos": len(self.devices) * count, "bytes": len(self.devices) * count * size}

    def upload(self, *, chunk: int, label: str, sink: str | None = None) -> dict[str, Any]:
        """Every tablet sends its photos at once, in chunks: over tus, or to ``sink``."""
        from bench.uploads import upload

        return upload(
            self.album, self.devices, api=self.fleet.api, chunk=chunk, label=label, sink=sink
        )

    def held(self) -> dict[str, Any]:
        """Whether the server holds every photo, asked by the tablet that sent it."""
        from bench.uploads import held

        return held(self.album, self.devices, api=self.fleet.api)

    # ------------------------------------------------------------ pushing

    def _push(
        self,
        devices: list[DeviceAccess],
        batches: list[list[Batch]],
        *,
        label: str,
        budget: float = 0,
    ) -> dict[str, Any]:
        bodies = [
            [gzip.compress(json.dumps(_body(device, batch)).encode(), 6) for batch in per_device]
            for device, per_device in zip(devices, batches, strict=True)
        ]
        sent: list[list[Sent]] = [[] for _ in devices]
        total = sum(len(per_device) for per_device in batches)
        clock: dict[str, float] = {}
        barrier = threading.Barrier(
            len(devices), action=lambda: clock.update(start=time.perf_counter())
        )
        stopped = threading.Event()

        def tablet(index: int) -> None:
            with httpx.Client(
                base_url=self.fleet.api,
                timeout=HTTP_TIMEOUT,
                headers={
                    **devices[index].headers,
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                    "Accept-Encoding": "gzip",
                },
            ) as client:
                barrier.wait()
                for body in bodies[index]:
                    if budget and time.perf_counter() - clock["start"] > budget:
                        stopped.set()
                        return
                    sent[index].append(_send(client, body))

        threads = [
            threading.Thread(target=tablet, args=(index,), name=f"tablet-{index}")
            for index in range(len(devices))
        ]
        cpu = time.process_time()  # this process's, all threads: is the client the limit?
        for thread in threads:
            thread.start()
        _watch(threads, lambda: _progress(label, sent, total, clock))
        seconds = time.perf_counter() - clock["start"]
        report = _report(label, batches, sent, seconds, stopped.is_set())
        client_cpu = time.process_time() - cpu
        report["client_cpu_s"] = round(client_cpu, 3)
        report["client_cpu_us_per_record"] = (
            round(client_cpu * 1e6 / report["changes"], 1) if report["changes"] else None
        )
        return report


def _body(device: DeviceAccess, batch: Batch) -> dict[str, Any]:
    return {
        "protocol": 1,
        "device_id": str(device.device_id),
        "batch_id": str(uuid.uuid4()),
        "changes": batch.changes,
    }


def _send(client: httpx.Client, body: bytes) -> Sent:
    started = time.perf_counter()
    try:
        answer = client.post("/sync/push", content=body)
    except httpx.HTTPError as error:
        return Sent(time.perf_counter() - started, 0, problem=repr(error))
    seconds = time.perf_counter() - started
    if answer.status_code != 200:
        return Sent(seconds, answer.status_code, problem=answer.text[:500])
    result = Sent(seconds, 200)
    for item in answer.json()["results"]:
        result.statuses[item["status"]] += 1
        if item["status"] == "rejected" and len(result.rejected) < 5:
            result.rejected.append(item)
    return result


def _watch(threads: list[threading.Thread], progress: Callable[[], None]) -> None:
    """Join ``threads``, printing progress every ``PROGRESS_EVERY`` seconds."""
    last = time.monotonic()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=1.0)
            if time.monotonic() - last >= PROGRESS_EVERY:
                progress()
                last = time.monotonic()


def _progress(label: str, sent: list[list[Sent]], total: int, clock: dict[str, float]) -> None:
    done = [item for per_device in sent for item in per_device]
    changes = sum(sum(item.statuses.values()) for item in done)
    elapsed = time.perf_counter() - clock.get("start", time.perf_counter())
    rate = changes / elapsed if elapsed else 0
    say(f"    {label}: {len(done)}/{total} batches, {changes:,} changes, {rate:,.0f} records/s")


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def rank(share: float) -> float:
        # nearest rank: the smallest value with at least ``share`` of them at or below it
        position = max(0, min(len(ordered) - 1, int(-(-share * len(ordered) // 1)) - 1))
        return round(ordered[position] * 1000, 1)

    return {
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1] * 1000, 1),
        "mean": round(statistics.fmean(ordered) * 1000, 1),
    }


def _report(
    label: str,
    batches: list[list[Batch]],
    sent: list[list[Sent]],
    seconds: float,
    stopped: bool,
) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    failures: list[str] = []
    rejected: list[dict[str, Any]] = []
    latencies = []
    for per_device, answers in zip(batches, sent, strict=True):
        for batch, answer in zip(per_device, answers, strict=False):
            expected.update(batch.expected)
            statuses.update(answer.statuses)
            latencies.append(answer.seconds)
            rejected.extend(answer.rejected)
            if answer.problem is not None:
                failures.append(f"{answer.status_code}: {answer.problem}")
    changes = sum(statuses.values())
    return {
        "label": label,
        "devices": len(batches),
        "batches": len(latencies),
        "batches_planned": sum(len(per_device) for per_device in batches),
        "batch_size": len(batches[0][0].changes) if batches and batches[0] else 0,
        "changes": changes,
        "seconds": round(seconds, 3),
        "records_per_s": round(changes / seconds, 1) if seconds else None,
        "latency_ms": percentiles(latencies),
        "statuses": {name: statuses.get(name, 0) for name in RESULT_STATUSES},
        "expected": {name: expected.get(name, 0) for name in RESULT_STATUSES},
        "as_expected": statuses == expected and not failures,
        "failed_batches": len(failures),
        "failures": failures[:5],
        "rejected_examples": rejected[:5],
        "stopped_by_budget": stopped,
    }
