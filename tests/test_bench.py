"""The benchmark: a smoke run of all of it on each backend, and a seeder whose records
sync exactly like pushed ones.

The figures themselves are never asserted (a benchmark is not a timed test); what is
checked is that every phase ran, answered 200 and gave the results the generator
expected, with no change rejected.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import bench.attachments
import bench.clock
import bench.connections
import bench.console
import bench.peer
import bench.seed
from bench import generator
from bench import spent as bench_spent
from bench.generator import CommunityPlace, Record, Track
from bench.memory import MemorySampler, cpu_used, serves
from bench.peer import Documents, PeerUnavailable, install
from bench.report import table, write_json
from bench.review import ENDPOINTS, Expected, detail_check, page_check
from bench.rows import spot_check, stored_state, table_of
from bench.run import ONE_WRITER, PHASES, QUICK, Config, config_from, run
from bench.seed import (
    ENTRY_TABLE,
    VERSION_TABLE,
    History,
    Patrols,
    Plan,
    SeededPatrol,
    insert,
    prepare,
)
from bench.sink import start_sink
from bench.uploads import album
from bench.workload import EXTENSION_WORKER, RANGER, Office, SectorPlace, Tablet, stories
from schemas.records import TrackSegmentFields
from sync.catalog import CATALOG
from sync.engine.spent import PHASES as CPU_PHASES
from tests.conftest import Caller, World
from tests.databases import backends, fresh_database, postgres_server_url
from tests.sync_support import Tablet as Pusher
from tests.sync_support import change, pull_all, push

STATUSES = ("applied", "merged", "conflict", "deferred", "rejected")


@pytest.mark.slow
def test_a_quick_bench_runs_every_phase_and_every_change_gets_its_expected_result(
    backend: str, tmp_path: Path
) -> None:
    config = Config(
        **{**QUICK, "scales": [300], "batches": 2, "devices": 2, "scaling_workers": [1]},
        # The uploads and the console's pages are the same code whatever the database
        # (tus and HTTP): run on SQLite only, PostgreSQL's run is half a minute shorter.
        # The workers run is PostgreSQL's alone (SQLite says why it has none).
        phases=list(PHASES) if backend == "sqlite" else ["sync", "workers", "scale", "review"],
        # The peer needs node and an npm install (.bench-peer/, absent from a clean
        # clone): `make bench` runs it; its parts are tested below, one by one.
        peer=False,
        backends=[backend],
        postgres_url=postgres_server_url().render_as_string(hide_password=False),
        postgres_database=f"fieldsync_bench_test_{uuid.uuid4().hex[:8]}",
        out=tmp_path / "bench.json",
        server_env={"FIELDSYNC_ARGON2_MEMORY_KIB": "64", "FIELDSYNC_ARGON2_TIME_COST": "1"},
    )
    results = run(config)
    write_json(results, config.out)
    figures = results["backends"][backend]

    assert figures["warnings"] == []
    assert {"cores", "python", "git_revision"} <= results["machine"].keys()
    for phase in ("warm_up", "office_edits", "push", "one_batch"):
        report = figures[phase]
        assert report["failed_batches"] == 0, report["failures"]
        assert report["statuses"]["rejected"] == 0, report["rejected_examples"]
        assert report["as_expected"], (report["statuses"], report["expected"])
    push_report = figures["push"]
    assert push_report["changes"] == 2 * 2 * QUICK["batch"]
    assert push_report["records_per_s"] > 0
    assert set(push_report["latency_ms"]) >= {"p50", "p95", "p99"}
    assert figures["office_edits"]["changes"] == figures["warm_up"]["targets"] > 0
    assert push_report["statuses"]["merged"] + push_report["statuses"]["conflict"] > 0
    assert figures["floor"]["rows"] > 0
    assert push_report["floor_share"] > 0
    cpu = push_report["cpu"]
    assert cpu["server_s"] > 0
    assert cpu["server_us_per_change"] > 0
    assert cpu["server_processes"] >= 1
    assert cpu["client_us_per_change"] > 0
    # The server's CPU by phase, counted by the server itself: each phase that always
    # works took some, and together they are part of what /proc says the server took.
    by_phase = push_report["cpu_by_phase"]
    assert all(by_phase[phase] > 0 for phase in ("parse", "reads", "decisions", "publish"))
    assert by_phase["rest"] > 0
    assert sum(by_phase[phase] for phase in CPU_PHASES) < cpu["server_us_per_change"]
    # The tablets' connections seen on the server's processes, one count a process. A
    # quick push (a tenth of a second) can be over for one tablet, or both, between
    # two samples: tests/test_server.py checks a real spread, and the reader is tested
    # below.
    spread = push_report["connections_by_process"]
    if spread:
        assert 1 <= sum(spread) <= 2
        assert len(spread) == max(results["config"]["workers"], 1)
    if backend == "sqlite":
        assert cpu["postgres_s"] is cpu["postgres_us_per_change"] is None
        # Every push took a turn at SQLite's write lock, counted by the server itself.
        turns = push_report["write_turns"]
        assert turns["turns"] >= turns["pushes"] == push_report["batches"]
        assert 0 < turns["cpu_ms_per_push"] <= turns["held_ms_per_push"]
        assert 0 < turns["held_share_of_push"] <= 1
    else:  # None where PostgreSQL's processes are not on this machine (a container)
        assert (cpu["postgres_s"] is None) == (cpu["postgres_processes"] == 0)
        assert "write_turns" not in push_report
    assert "peer" not in figures
    assert "vs_peer" not in push_report
    if backend == "sqlite":  # one writer: no run of several server processes
        assert figures["workers"] == {"skipped": ONE_WRITER}
    else:
        check_workers(figures["workers"], table(results))
    # The fresh coordinator pulls every record pushed, and the reference data.
    pushed = sum(figures[p]["statuses"]["applied"] for p in ("warm_up", "push"))
    assert figures["pull"]["records"] >= pushed
    assert figures["memory"]["peak_tree_mb"] > 0
    assert len(figures["memory"]["peak_by_process"]) >= 1
    assert "largest_process_growth_mb" in figures["one_batch"]["memory"]
    [scale] = figures["scales"]
    assert scale["records_held"] >= 300
    assert scale["push"]["as_expected"]
    assert scale["first_pull"]["records"] == QUICK["scale_pull"]
    assert scale["full_pull"]["records"] >= scale["records_held"]
    assert scale["incremental_pull"]["records"] >= 0
    assert scale["fleet_health"]["devices"] >= 2
    assert scale["fleet_health"]["latency_ms"]["p50"] > 0
    assert scale["health_vs_first"] == 1
    review = figures["review"]
    assert review["patrols"] == QUICK["review_patrols"]
    assert review["track_points"] == QUICK["review_points"]
    assert review["statuses"]["submitted"] > 0
    assert review["reviews"] == review["statuses"]["approved"] + review["statuses"]["returned"] > 0
    assert list(review["endpoints"]) == list(ENDPOINTS)
    for name, report in review["endpoints"].items():
        wanted = QUICK["review_details" if name == "detail" else "review_requests"]
        assert report["count"] == wanted, (name, report["failures"])
        assert report["mismatches"] == 0, (name, report["mismatch_examples"])
        assert report["latency_ms"]["p95"] > 0
    # Every list answered with patrols in it; the queue's last page is a later one.
    assert all(review["endpoints"][name]["total"][1] > 0 for name in ENDPOINTS if name != "detail")
    assert "offset=0" not in review["endpoints"]["queue_all_last"]["example"]
    assert backend in table(results)
    assert "queue, coordinator, last page" in table(results)
    if "attachments" in config.phases:
        check_attachments(figures, table(results))
    if "console" in config.phases:
        check_console(figures, table(results))
    assert config.out.read_text().startswith("{")


def check_workers(workers: dict[str, Any], printed: str) -> None:
    [single] = workers["runs"]
    assert (single["workers"], single["vs_first"]) == (1, 1)
    push_report = single["push"]
    assert push_report["as_expected"], (push_report["statuses"], push_report["expected"])
    assert push_report["changes"] == 2 * workers["batches_per_device"] * QUICK["batch"]
    assert push_report["cpu"]["server_us_per_change"] > 0
    held = push_report["clock"]
    assert held["problem"] is None
    assert held["samples"] >= 2
    assert held["pushes"] == push_report["batches"]
    assert held["held_ms_per_push"] >= 0
    assert "fieldsync serve --workers N" in printed


def check_attachments(figures: dict[str, Any], printed: str) -> None:
    photos = figures["attachments"]
    assert photos["tablets"] == 2
    assert photos["chunk_bytes"] == QUICK["attachment_chunk"]
    assert [size["photo_bytes"] for size in photos["runs"]] == QUICK["attachment_sizes"]
    for size, count in zip(photos["runs"], QUICK["attachment_photos"], strict=True):
        sent = 2 * count * size["photo_bytes"]
        for way in ("fieldsync", "floor"):
            report = size[way]
            assert report["failed"] == 0, report["failures"]
            assert (report["photos_sent"], report["bytes"]) == (2 * count, sent)
            assert report["mb_per_s"] > 0
            assert len(report["per_tablet_mb_per_s"]) == 2
            assert report["chunk_ms"]["p95"] >= report["chunk_ms"]["p50"] > 0
        assert size["fieldsync"]["last_chunk_ms"]["p50"] > 0
        assert size["fieldsync"]["server_cpu_s"] > 0
        assert size["floor"]["cpu_ms_per_mib"] >= 0
        assert size["floor_share"] > 0
        assert size["held"] == {"held": 2 * count, "missing": 0, "examples": []}
        assert size["memory"]["largest_process_peak_mb"] > 0
        assert size["memory"]["exact"]
        assert "largest_process_growth_mb" in size["memory"]["sampled"]
    assert photos["memory_ratio"]["largest_process_peak_mb"] > 0
    assert photos["memory_grows_with_file_size"] is False
    assert figures["attachments_memory"]["peak_tree_mb"] > 0
    assert "fieldsync / floor" in printed


def check_console(figures: dict[str, Any], printed: str) -> None:
    shown = figures["console"]
    assert (shown["scale"], shown["requests"]) == (QUICK["console_scale"], 3)
    assert any("households" in line for line in shown["demo"]), shown["demo"]
    assert list(shown["pages"]) == list(bench.console.PAGES)
    assert shown["patrols_asked"] >= 2  # a patrol's page is timed of several patrols
    for name, report in shown["pages"].items():
        assert report["failed"] == 0, (name, report["failures"])
        assert report["asked"] == 1 + bench.console.WARM + 3
        assert report["count"] == 3
        latency = report["latency_ms"]
        assert latency["max"] >= latency["p95"] >= latency["p50"] > 0
        assert report["first_ms"] > 0
        assert report["mean_bytes"] > 1000
        assert report["target_ms"] == 300
        assert report["p95_within_target"] == (latency["p95"] <= 300)
    assert [n for n, page in shown["pages"].items() if page["caches"]] == ["threats", "programme"]
    assert set(shown["misses"]) <= set(shown["pages"])
    assert set(shown["first_reads_over_target"]) <= set(shown["pages"])
    assert len(shown["load_average"]["start"]) == len(shown["load_average"]["end"]) == 3
    assert figures["console_memory"]["peak_tree_mb"] > 0
    assert "people, likely duplicates" in printed


# ---------------------------------------------------------------- the seeder


def story(world: World, rng: random.Random) -> tuple[Caller, Caller, list[Record]]:
    """Two patrols (one walked as tablets walk, one keeping to a trail as seeded
    patrols do), a family and a training, with the devices that may push them."""
    box = generator.sector_boxes(1)[0]
    sector = world.sector(boundary=generator.boundary(box))
    community = world.community(sector["id"])
    categories = generator.observation_categories()[:3]
    for category in categories:
        assert world.admin.post("/observation-categories", json=category).status_code == 201
    ranger = world.user(RANGER, sector_ids=[sector["id"]])
    worker = world.user("extension_worker", community_ids=[community["id"]])
    place = CommunityPlace(uuid.UUID(community["id"]), box)
    patrols: list[Record] = []
    for walker in (generator.Walker, generator.TrailWalker):
        patrol, _ = generator.patrol_story(
            rng,
            uuid.UUID(sector["id"]),
            box,
            generator.EPOCH,
            ranger.user_id,
            categories,
            segments=(2, 2),
            walker=walker,
        )
        patrols += patrol
    people: list[Record] = []
    while len(place.people) < 4:
        people += generator.household_story(rng, place, generator.EPOCH)
    training = generator.training_story(rng, place, generator.EPOCH, worker.user_id, 3)
    return world.device(ranger), world.device(worker), patrols + people + training


def cloned(made: list[Record], rng: random.Random) -> tuple[list[Record], dict[str, str]]:
    """The same records under new ids, their references to one another following."""
    ids = {str(record.id): str(generator.new_id(rng)) for record in made}
    pattern = re.compile("|".join(re.escape(old) for old in ids))

    def renamed(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: ids[m.group(0)], value)
        if isinstance(value, list):
            return [renamed(item) for item in value]
        if isinstance(value, dict):
            return {key: renamed(item) for key, item in value.items()}
        return value  # a Track names no record

    copies = [
        Record(r.entity, uuid.UUID(ids[str(r.id)]), renamed(r.fields), r.scope, r.recorded_at)
        for r in made
    ]
    return copies, {new: old for old, new in ids.items()}


def as_change(record: Record, seq: int) -> dict[str, Any]:
    fields = {k: v.points() if isinstance(v, Track) else v for k, v in record.fields.items()}
    made = change(record.entity, str(record.id), "create", seq, fields)
    made["recorded_at"] = generator.moment(record.recorded_at)
    return made


SERVER_SET = {"id", "record_id", "created_at", "updated_at", "change_id", "change_seq"}
# The seeder leaves its history out of the audit chain (docs/audit.md).
UNCHAINED = {"chain_tx", "chain_hash"}


def rows_of(engine: Engine, record: Record) -> dict[str, dict[str, Any]]:
    """The record's row, its first version and its pull entry, without what differs
    between two records (ids, times, change numbers)."""
    found = {}
    with engine.connect() as connection:
        for table, key in _tables(record):
            row = (
                connection.execute(sa.select(table).where(table.c[key] == record.id))
                .mappings()
                .one()
            )
            found[table.name] = {
                k: v for k, v in row.items() if k not in SERVER_SET and k not in UNCHAINED
            }
    found["sync_entry"]["fields"] = {
        k: v for k, v in found["sync_entry"]["fields"].items() if k != "created_at"
    }
    return found


def stored_of(engine: Engine, record: Record) -> dict[str, dict[str, Any]]:
    """The same rows as the database holds them, each value as text (SQLite's own
    values; PostgreSQL's ``::text``): JSON documents as written, byte for byte, NULL
    apart from JSON null. What differs between two records is kept as its form
    alone (every hex digit a 0), and the snapshot's time as a placeholder."""
    postgresql = engine.dialect.name == "postgresql"
    found = {}
    with engine.connect() as connection:
        for table, key in _tables(record):
            names = [c.name for c in table.columns if c.name not in UNCHAINED]
            if postgresql:
                columns = ", ".join(f'"{name}"::text AS "{name}"' for name in names)
                where, value = f'"{key}" = CAST(:id AS uuid)', str(record.id)
            else:
                columns = ", ".join(f'"{name}"' for name in names)
                where, value = f'"{key}" = :id', record.id.hex
            query = f'SELECT {columns} FROM "{table.name}" WHERE {where}'  # noqa: S608
            row = connection.execute(sa.text(query), {"id": value}).mappings().one()
            found[table.name] = {name: _form(name, row[name], postgresql) for name in names}
    entry = found["sync_entry"]
    entry["fields"] = re.sub('"created_at": ?"[^"]*"', '"created_at":"…"', entry["fields"])
    return found


def _form(name: str, value: Any, postgresql: bool) -> Any:
    if name == "change_seq":
        return str(value).isdigit()
    if name not in SERVER_SET:
        return value
    # PostgreSQL writes its typed values itself (a time's fraction as long as it needs).
    return re.sub("[0-9a-f]+" if postgresql else "[0-9a-f]", "0", str(value))


def _tables(record: Record) -> list[tuple[sa.Table, str]]:
    return [
        (table_of(record.entity), "id"),
        (VERSION_TABLE, "record_id"),
        (ENTRY_TABLE, "record_id"),
    ]


def test_a_seeded_record_is_stored_pulled_and_updated_exactly_like_a_pushed_one(
    world: World, engine: Engine
) -> None:
    rng = random.Random(7)
    ranger, worker, made = story(world, rng)
    by_domain = {
        r.entity: (ranger if r.entity in ("patrol", "track_segment", "observation") else worker)
        for r in made
    }
    for device in (ranger, worker):
        mine = [r for r in made if by_domain[r.entity] is device]
        answer = push(device, *(as_change(r, seq) for seq, r in enumerate(mine, start=1)))
        assert [r["status"] for r in answer["results"]] == ["applied"] * len(mine), answer
    copies, back = cloned(made, rng)
    for device in (ranger, worker):
        mine = [c for c, r in zip(copies, made, strict=True) if by_domain[r.entity] is device]
        insert(
            engine, mine, user_id=device.user_id, device_id=uuid.UUID(device.tokens["device_id"])
        )
    # Ids as a driver writes them: hyphenated, or as hex (SQLite's UUID columns).
    renames = [(new, old) for new, old in back.items()]
    renames += [(new.replace("-", ""), old.replace("-", "")) for new, old in back.items()]

    def original(value: Any) -> Any:
        for new, old in renames:
            value = value.replace(new, old) if isinstance(value, str) else value
        return value

    assert {r.entity for r in made} == set(CATALOG)
    assert any(isinstance(r.fields.get("points"), Track) for r in copies)
    for record, copy in zip(made, copies, strict=True):
        # Ids of the copy's own story read as the original's, so all else must be equal.
        pushed, seeded = rows_of(engine, record), _deep(rows_of(engine, copy), original)
        assert seeded == pushed, record.entity
        pushed, seeded = stored_of(engine, record), _deep(stored_of(engine, copy), original)
        assert seeded == pushed, record.entity

    coordinator = world.device(world.user("coordinator"))
    pulled, _ = pull_all(coordinator)
    by_id = {change_["id"]: change_ for change_ in pulled}
    for record, copy in zip(made, copies, strict=True):
        first, second = by_id[str(record.id)], by_id[str(copy.id)]
        assert (second["entity"], second["version"], second["op"]) == (record.entity, 1, "upsert")
        strip = {"created_at"}
        assert _deep({k: v for k, v in second["fields"].items() if k not in strip}, original) == {
            k: v for k, v in first["fields"].items() if k not in strip
        }

    # Updates meet seeded records as they meet pushed ones: applied on version 1.
    seeded_patrol = next(c for c in copies if c.entity == "patrol")
    seeded_person = next(c for c in copies if c.entity == "person")
    for device, record, fields in (
        (ranger, seeded_patrol, {"status": "submitted", "rest_minutes": 45}),
        (worker, seeded_person, {"phone": "912345678"}),
    ):
        tablet = Pusher(device)
        tablet.seq = 100
        result = tablet.send(record.entity, str(record.id), "update", fields, base_version=1)
        assert (result["status"], result["version"]) == ("applied", 2), result
    after, _ = pull_all(coordinator, _)
    updated = {change_["id"]: change_ for change_ in after}
    assert updated[str(seeded_patrol.id)]["version"] == 2
    assert updated[str(seeded_patrol.id)]["fields"]["rest_minutes"] == 45
    assert updated[str(seeded_person.id)]["fields"]["phone"] == "912345678"


def _deep(value: Any, rename: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep(item, rename) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep(item, rename) for item in value]
    if isinstance(value, uuid.UUID):
        return uuid.UUID(rename(str(value)))
    return rename(value)


def _history() -> History:
    boxes = generator.sector_boxes(4)
    return History(
        sectors=[SectorPlace(uuid.UUID(int=i + 1), box) for i, box in enumerate(boxes)],
        communities=[CommunityPlace(uuid.UUID(int=100 + i), boxes[i % 4]) for i in range(8)],
        categories=generator.observation_categories(),
        user_id=uuid.UUID(int=7),
        device_id=uuid.UUID(int=8),
    )


def test_the_seeders_states_are_what_the_fields_models_make_of_the_same_fields() -> None:
    """The seeder normalises without pydantic; on a sample of every kind of record, from
    tablets' walks and from trails, it must come to what the fields models make."""
    history = _history()
    seen: set[str] = set()
    for walker in (generator.Walker, generator.TrailWalker):
        source = stories(
            random.Random(f"sample:{walker.__name__}"),
            sectors=history.sectors,
            communities=[CommunityPlace(c.id, c.box) for c in history.communities],
            categories=history.categories,
            user_id=history.user_id,
            walker=walker,
        )
        for record in itertools.islice(source, 1500):
            spot_check(record, stored_state(record))  # raises where they differ
            seen.add(record.entity)
    assert seen == set(CATALOG)


@pytest.mark.parametrize("hour", [6, 23])  # at 23:00 the walk goes past midnight (UTC)
def test_a_trail_walk_is_a_walk_a_minute_a_point_inside_its_sector(hour: int) -> None:
    box = generator.sector_boxes(6)[2]
    walker = generator.TrailWalker(box, 0.0, 0.0, datetime(2026, 3, 2, hour, tzinfo=UTC))
    rng = random.Random(3)
    tracks = [walker.track(rng, 100) for _ in range(3)]
    points = [point for track in tracks for point in track.points()]
    assert [len(track) for track in tracks] == [100, 100, 100]
    stored = TrackSegmentFields.model_validate({"patrol_id": uuid.uuid4(), "points": points})
    assert stored.model_dump(mode="json")["points"] == points  # as the server keeps them
    for track in tracks:  # and written as the server writes them, keys in sorted order
        read = TrackSegmentFields.model_validate(
            {"patrol_id": uuid.uuid4(), "points": track.points()}
        )
        assert orjson.dumps(read.model_dump(mode="json")["points"]).decode() == track.json
    for point in points:
        assert box.contains(point["lat"], point["lon"])
    times = [datetime.fromisoformat(point["t"]) for point in points]
    assert all(57 <= (b - a).total_seconds() <= 63 for a, b in itertools.pairwise(times))
    steps = [
        math.hypot(b["lat"] - a["lat"], b["lon"] - a["lon"]) * 111_320
        for a, b in itertools.pairwise(points)
    ]
    assert all(step < 80 for step in steps)  # metres a minute: on foot, segments joined
    assert walker.clock == times[-1]
    assert (walker.lat, walker.lon) == (points[-1]["lat"], points[-1]["lon"])


def test_seeding_makes_the_same_chunk_from_the_same_seed() -> None:
    history = _history()
    for dialect in ("sqlite", "postgresql"):
        plan = Plan(history, "same", dialect, datetime(2026, 11, 23, tzinfo=UTC))
        first, second = prepare(plan, 3, 200), prepare(plan, 3, 200)
        assert first == second
        assert first.count == 200
        assert prepare(plan, 4, 200) != first


def test_seeding_processes_write_every_chunk_and_number_them_in_order(
    world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench.seed, "CHUNK", 40)  # the sizes are handed to the processes
    boxes = generator.sector_boxes(2)
    sectors = [world.sector(boundary=generator.boundary(box)) for box in boxes]
    communities = [world.community(sector["id"]) for sector in sectors]
    history = History(
        sectors=[
            SectorPlace(uuid.UUID(s["id"]), box) for s, box in zip(sectors, boxes, strict=True)
        ],
        communities=[
            CommunityPlace(uuid.UUID(c["id"]), box)
            for c, box in zip(communities, boxes, strict=True)
        ],
        categories=generator.observation_categories(),
        user_id=uuid.UUID(int=7),
        device_id=uuid.UUID(int=8),
    )
    seen: list[int] = []
    bench.seed.seed(engine, history, 200, seed="order", processes=2, progress=seen.append)

    assert seen == [40, 80, 120, 160, 200]
    assert bench.seed.records_held(engine) == 200
    # Chunk after chunk, as the chunks are made: the same numbering run to run.
    plan = Plan(history, "order", engine.dialect.name, datetime.now(UTC))
    made = [record_id for index in range(5) for record_id in _ids(prepare(plan, index, 40))]
    with engine.connect() as connection:
        numbered = connection.execute(
            sa.select(ENTRY_TABLE.c.record_id, ENTRY_TABLE.c.change_seq)
            .where(ENTRY_TABLE.c.entity.in_(list(CATALOG)))
            .order_by(ENTRY_TABLE.c.change_seq)
        ).all()
    assert [row.record_id for row in numbered] == made
    numbers = [row.change_seq for row in numbered]
    assert numbers == list(range(numbers[0], numbers[0] + 200))


def _ids(prepared: bench.seed.Prepared) -> list[uuid.UUID]:
    """The records of a chunk, in order, from its pull entries."""
    columns = prepared.entries.columns
    if prepared.postgresql:  # lines of COPY text, without change_seq (the first column)
        at = columns.index("record_id") - 1
        return [uuid.UUID(line.split(b"\t")[at].decode()) for line in prepared.entries.rows]
    at = columns.index("record_id")
    return [uuid.UUID(row[at]) for row in prepared.entries.rows]


def test_a_tablet_makes_the_same_batches_from_the_same_seed() -> None:
    sectors = [
        SectorPlace(uuid.UUID(int=i + 1), box) for i, box in enumerate(generator.sector_boxes(3))
    ]

    def batches() -> list[list[dict[str, Any]]]:
        tablet = Tablet(
            seed="same",
            role=RANGER,
            user_id=uuid.UUID(int=9),
            sectors=sectors,
            categories=generator.observation_categories(),
        )
        return [tablet.warm_up(50).changes, tablet.batch(50).changes]

    first = batches()
    assert first == batches()
    points = [p for c in first[0] if c["entity"] == "track_segment" for p in c["fields"]["points"]]
    assert len(points) >= 100
    assert all(generator.SOUTH <= p["lat"] <= generator.NORTH for p in points)
    assert all(generator.WEST <= p["lon"] <= generator.EAST for p in points)


# ---------------------------------------------------------------- the review run


def test_a_patrol_history_holds_its_patrols_and_every_point_walked_by_their_crews() -> None:
    history = _history()
    crews = tuple(tuple(uuid.UUID(int=1000 * (s + 1) + r) for r in range(6)) for s in range(4))
    patrols = Patrols(250, 25_013, crews, days=60, chunk=100)
    plan = Plan(history, "review", "sqlite", datetime(2026, 11, 24, tzinfo=UTC), patrols)
    chunks = [prepare(plan, index, size) for index, size in enumerate((100, 100, 50))]
    seeded = [patrol for chunk in chunks for patrol in chunk.patrols]

    assert len({patrol.id for patrol in seeded}) == 250
    assert sum(patrol.points for patrol in seeded) == 25_013
    assert all(30 <= patrol.points <= 200 for patrol in seeded)  # 100 each, ± 60 %
    statuses = {patrol.status for patrol in seeded}
    assert {"submitted", "approved", "returned"} <= statuses
    sectors = [sector.id for sector in history.sectors]
    for patrol in seeded:
        crew = crews[sectors.index(patrol.sector_id)]
        assert patrol.leader_id == patrol.member_ids[0]
        assert set(patrol.member_ids) <= set(crew)
        assert len(patrol.member_ids) == 2
    # What the chunks hold is what the manifest says, record by record.
    made = [
        record
        for index, size in enumerate((100, 100, 50))
        for record in bench.seed.patrol_chunk(history, patrols, "review", index, size)[0]
    ]
    points: dict[str, int] = {}
    for record in made:
        if record.entity == "track_segment":
            patrol_id = record.fields["patrol_id"]
            points[patrol_id] = points.get(patrol_id, 0) + len(record.fields["points"])
    assert all(points.get(str(p.id), 0) == p.points for p in seeded)
    assert sum(chunk.count for chunk in chunks) == len(made)
    heads = {record.id: record for record in made if record.entity == "patrol"}
    for patrol in seeded:
        fields = heads[patrol.id].fields
        assert fields["status"] == (
            "submitted" if patrol.status in ("approved", "returned") else patrol.status
        )
        assert ("ended_at" in fields) == (patrol.status != "draft")


def test_the_review_checks_catch_an_answer_that_differs_from_the_seeded_patrol() -> None:
    ranger, other = uuid.UUID(int=1), uuid.UUID(int=2)
    made = SeededPatrol(
        id=uuid.UUID(int=10),
        sector_id=uuid.UUID(int=20),
        status="submitted",
        leader_id=ranger,
        member_ids=(ranger, other),
        started_at=datetime(2026, 3, 3, 11, 0, tzinfo=UTC),
        points=120,
        segments=2,
        observations=1,
        categories=("threat.fire",),
    )
    summary = {
        "id": str(made.id),
        "status": "submitted",
        "sector_id": str(made.sector_id),
        "leader_id": str(ranger),
        "members": [{"user_id": str(ranger)}, {"user_id": str(other)}, {"name": "Adán Mego"}],
        "point_count": 120,
        "observation_count": 1,
        "started_at": "2026-03-03T11:00:00Z",
        "updated_at": "2026-11-24T00:00:00Z",
    }
    detail = {
        "patrol": summary,
        "effort": {"point_count": 120},
        "track": {"features": [{"properties": {"point_count": 120}}]},
        "observations": [{"category_key": "threat.fire"}],
        "reviews": [],
    }
    check = detail_check(made)
    assert check(detail) == []
    short = {**detail, "effort": {"point_count": 100}}
    assert check(short) == [f"{made.id}: effort points 100, seeded 120"]

    expected = Expected([made], generator.PERU)
    queue = page_check(expected, 1, 0, sector=made.sector_id, queue=True)
    assert queue({"total": 1, "limit": 50, "items": [summary]}) == []
    assert queue({"total": 2, "limit": 50, "items": [summary, summary]}) == [
        "total 2, seeded 1",
        "2 items at offset 0 of 1",
    ]
    returned = {**summary, "status": "returned"}
    assert queue({"total": 1, "limit": 50, "items": [returned]}) == [
        f"{made.id}: returned in the queue"
    ]


def test_only_runs_the_phases_asked_for() -> None:
    config = config_from(["--only", "review", "--review-patrols", "500", "--quick"])
    assert config.phases == ["review"]
    assert (config.review_patrols, config.review_points) == (500, QUICK["review_points"])
    assert config_from([]).phases == [
        "sync",
        "workers",
        "scale",
        "review",
        "attachments",
        "console",
    ]
    with pytest.raises(SystemExit):
        config_from(["--only", "push"])


def test_the_console_run_is_the_full_demo_unless_quick_and_reads_the_demos_passwords() -> None:
    config = config_from(["--only", "console"])
    assert (config.phases, config.console_scale, config.console_requests) == (["console"], 1, 30)
    quick = config_from(["--only", "console", "--quick", "--console-requests", "5"])
    assert (quick.console_scale, quick.console_requests) == (0.02, 5)
    for wrong in (["--console-scale", "5"], ["--console-requests", "0"]):
        with pytest.raises(SystemExit):
            config_from(wrong)
    printed = [
        "Built in 11 s: 668 changes pushed by 219 syncs of 11 tablets, 1,050 pulled. "
        "In the database, counted by SQL:",
        "  families    32 households, 148 people (2 registered twice, on two tablets)",
        "",
        "Sign in (development data; these passwords are new each run):",
        "  coordinator  demo-coordinadora  s3cr-t_1",
        "  ranger lead  demo-jefe  s3cr-t_1",
        "  admin        bench-admin  (yours)",
    ]
    said = bench.console.passwords("\n".join(printed), ("bench-admin", "admin's"))
    assert said == {
        "admin": ("bench-admin", "admin's"),
        "coordinator": ("demo-coordinadora", "s3cr-t_1"),
        "ranger lead": ("demo-jefe", "s3cr-t_1"),
    }
    assert bench.console.made(printed) == [
        "Built in 11 s: 668 changes pushed by 219 syncs of 11 tablets, 1,050 pulled. "
        "In the database, counted by SQL:",
        "families 32 households, 148 people (2 registered twice, on two tablets)",
    ]
    with pytest.raises(bench.console.ConsoleFailed):
        bench.console.passwords("\n".join(printed[:4]), ("bench-admin", "admin's"))


def test_the_attachments_run_takes_sizes_in_kib_and_mib_and_a_count_for_each() -> None:
    config = config_from(["--only", "attachments"])
    assert config.phases == ["attachments"]
    assert config.attachment_sizes == [2 * 1024 * 1024, 20 * 1024 * 1024]
    assert (config.attachment_photos, config.attachment_chunk) == ([10, 1], 256 * 1024)
    config = config_from(
        [
            *("--attachment-sizes", "512K,1.5M,40M"),
            *("--attachment-photos", "4,2,1"),
            *("--attachment-chunk", "1M"),
        ]
    )
    assert config.attachment_sizes == [512 * 1024, 1536 * 1024, 40 * 1024 * 1024]
    assert config.attachment_chunk == 1024 * 1024
    # The server is told to take the largest photo.
    assert bench.attachments.server_env(config) == {
        "FIELDSYNC_MAX_ATTACHMENT_BYTES": str(40 * 1024 * 1024)
    }
    for wrong in (
        ["--attachment-photos", "3"],
        ["--attachment-sizes", "2M,many"],
        ["--attachment-chunk", "64K,1M"],
        ["--attachment-sizes", "2M,4"],
    ):
        with pytest.raises(SystemExit):
            config_from(wrong)


def test_photos_are_jpegs_and_all_distinct_and_the_same_from_the_same_seed() -> None:
    made = album(3, size=5000, count=4, seed="same")
    photos = [photo for mine in made for photo in mine]
    assert len(made) == 3
    assert all(len(mine) == 4 for mine in made)
    assert all(photo.data.startswith(b"\xff\xd8\xff") for photo in photos)
    assert all(len(photo.data) == 5000 for photo in photos)
    assert all(hashlib.sha256(photo.data).hexdigest() == photo.sha256 for photo in photos)
    assert len({photo.sha256 for photo in photos}) == 12
    assert album(3, size=5000, count=4, seed="same") == made
    metadata = dict(pair.split(" ") for pair in photos[0].metadata.split(","))
    assert base64.b64decode(metadata["sha256"]).decode() == photos[0].sha256
    assert base64.b64decode(metadata["content_type"]) == b"image/jpeg"


def test_a_high_water_mark_catches_memory_held_too_briefly_for_the_sampler(
    tmp_path: Path,
) -> None:
    """A process that holds 64 MiB for a few milliseconds, between two samples: the
    kernel's high-water mark sees it."""
    script = (
        "import sys, time\n"
        "sys.stdin.readline()\n"
        "held = b'x' * (64 << 20)\n"
        "del held\n"
        "print('done', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        memory = MemorySampler(process.pid)
        with memory.high_water() as mark:
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.stdout.readline() == "done\n"
        report = mark.report()
        assert report["exact"]
        assert report["largest_process_growth_mb"] >= 60
        assert report["largest_process_peak_mb"] >= report["largest_process_growth_mb"]
        with memory.high_water() as mark:  # reset: the next block starts from now
            pass
        assert mark.report()["largest_process_growth_mb"] < 60
    finally:
        process.kill()
        process.wait()


def test_the_sink_keeps_each_body_whole_and_says_how_much(tmp_path: Path) -> None:
    sink = start_sink(tmp_path, workers=1)
    try:
        body = b"\xff\xd8\xff" + bytes(range(256)) * 1000
        answer = httpx.put(f"{sink.base_url}/0-0/0", content=body)
        assert answer.status_code == 204
        assert answer.headers["Sink-Written"] == str(len(body))
    finally:
        sink.stop()
    [kept] = (tmp_path / "bodies").iterdir()
    assert kept.read_bytes() == body


# ---------------------------------------------------------------- the peer


def _tablet(role: str) -> Tablet:
    if role == RANGER:
        sectors = [
            SectorPlace(uuid.UUID(int=i + 1), b) for i, b in enumerate(generator.sector_boxes(2))
        ]
        return Tablet(
            seed="peer",
            role=RANGER,
            user_id=uuid.UUID(int=9),
            sectors=sectors,
            categories=generator.observation_categories(),
        )
    box = generator.sector_boxes(1)[0]
    place = CommunityPlace(uuid.UUID(int=77), box)
    return Tablet(seed="peer", role=role, user_id=uuid.UUID(int=8), communities=[place])


@pytest.mark.parametrize("role", [RANGER, EXTENSION_WORKER])
def test_each_change_becomes_the_document_a_pouchdb_tablet_would_replicate(role: str) -> None:
    tablet = _tablet(role)
    warm = tablet.warm_up(80)
    office = Office("peer").edits(tablet.targets, 500)
    timed = [tablet.batch(150) for _ in range(4)]
    documents = Documents()
    before = [documents.of(warm.changes), *(documents.of(batch.changes) for batch in office)]
    after = [documents.of(batch.changes) for batch in timed]
    changes = [c for batch in (warm, *office, *timed) for c in batch.changes]
    shaped = [doc for docs in (*before, *after) for doc in docs]
    assert len(shaped) == len(changes)

    created: dict[str, dict[str, Any]] = {}
    office_docs = {doc["_id"]: doc for docs in before[1:] for doc in docs}
    office_fields = {c["id"]: c["fields"] for batch in office for c in batch.changes}
    timed_ids = {c["change_id"] for batch in timed for c in batch.changes}
    branches = 0
    for wire, doc in zip(changes, shaped, strict=True):
        # The record's id; a revision named after the change, with the history the
        # tablet knows; the record's type; the record's whole state.
        assert doc["_id"] == wire["id"]
        number, rev = doc["_rev"].split("-")
        assert rev == uuid.UUID(wire["change_id"]).hex
        assert doc["_revisions"]["start"] == int(number) == len(doc["_revisions"]["ids"])
        assert doc["_revisions"]["ids"][0] == rev
        assert doc["entity"] == wire["entity"]
        if wire["op"] == "create":
            assert number == "1"
            created[wire["id"]] = {"entity": wire["entity"], **wire["fields"]}
            assert doc.keys() - {"_id", "_rev", "_revisions"} == created[wire["id"]].keys()
            continue
        assert int(number) == wire["base_version"] + 1
        assert wire["fields"].items() <= doc.items()
        assert created[wire["id"]].keys() <= doc.keys()
        office_doc = office_docs.get(wire["id"])
        if office_doc is not None and wire["change_id"] in timed_ids:
            # The tablet's edit of a record the office edited since: a branch beside
            # the office's revision, from the same parent, without the office's edit.
            assert number == office_doc["_rev"].split("-")[0]
            assert doc["_revisions"]["ids"][1:] == office_doc["_revisions"]["ids"][1:]
            for name, value in office_fields[wire["id"]].items():
                assert name in wire["fields"] or doc.get(name) != value
            branches += 1
    assert branches > 0  # the timed batches hold merged and conflicting edits
    assert len(documents.versions) == sum(c["op"] == "create" for c in changes)

    sent = json.loads(gzip.decompress(bench.peer.body(after[0])))
    assert sent == {"docs": after[0], "new_edits": False}
    with pytest.raises(ValueError, match="no version"):
        Documents().document({**timed[0].changes[0], "op": "update", "base_version": 1})
    with pytest.raises(ValueError, match="created twice"):
        documents.document(warm.changes[0])


def test_the_peer_client_posts_every_batch_at_once_and_counts_the_documents_refused() -> None:
    seen: list[tuple[str, str, int, bool]] = []

    def peer(request: httpx.Request) -> httpx.Response:
        sent = json.loads(gzip.decompress(request.content))
        seen.append(
            (
                request.url.path,
                request.headers["Content-Encoding"],
                len(sent["docs"]),
                sent["new_edits"],
            )
        )
        if sent["docs"][0]["_id"] == "refused":
            return httpx.Response(201, json=[{"id": "refused", "error": "forbidden"}])
        return httpx.Response(201, json=[])

    def batch(first: str, size: int) -> tuple[bytes, int]:
        docs = [{"_id": first if i == 0 else f"{first}-{i}", "_rev": "1-a"} for i in range(size)]
        return bench.peer.body(docs), size

    clients = [[batch(f"c{c}b{b}", 5) for b in range(3)] for c in range(3)]
    report = bench.peer.push("http://peer.test", clients, transport=httpx.MockTransport(peer))
    assert len(seen) == 9
    assert {(path, encoding, flag) for path, encoding, _, flag in seen} == {
        ("/fieldsync/_bulk_docs", "gzip", False)
    }
    assert (report["devices"], report["batches"], report["batch_size"]) == (3, 9, 5)
    assert report["records"] == 45
    assert report["failed_batches"] == 0
    assert report["records_per_s"] > 0
    assert report["latency_ms"]["max"] >= report["latency_ms"]["p50"] > 0
    assert report["client_cpu_s"] >= 0

    clients[1][2] = batch("refused", 5)
    report = bench.peer.push("http://peer.test", clients, transport=httpx.MockTransport(peer))
    assert (report["records"], report["failed_batches"]) == (40, 1)
    assert "forbidden" in report["failures"][0]


def test_the_peer_is_installed_by_npm_only_when_missing_or_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, folder = tmp_path / "peer", tmp_path / ".bench-peer"
    source.mkdir()
    (source / "package.json").write_text('{"dependencies": {"express-pouchdb": "4.2.0"}}')
    (source / "package-lock.json").write_text('{"lockfileVersion": 3}')
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    ran: list[str] = []
    node: dict[str, Any] = {"version": "v20.20.2", "npm": 0}

    def run(command: list[str], *, cwd: Path | None, **_: Any) -> subprocess.CompletedProcess[str]:
        if command[1] == "--version":
            return subprocess.CompletedProcess(command, 0, node["version"] + "\n", "")
        ran.append(" ".join(command[1:]))
        assert cwd == folder
        assert (cwd / "package.json").read_bytes() == (source / "package.json").read_bytes()
        (cwd / "node_modules" / "express-pouchdb").mkdir(parents=True, exist_ok=True)
        if command[1] == "install":
            (cwd / "package-lock.json").write_text('{"made": "by npm"}')
        return subprocess.CompletedProcess(command, node["npm"], "", "npm ERR! offline")

    def installs() -> list[str]:
        ran.clear()
        assert install(source, folder, run=run, say=lambda _: None) == folder
        return list(ran)

    assert installs() == ["ci --no-audit --no-fund"]
    assert installs() == []  # installed already
    (source / "package.json").write_text('{"dependencies": {"express-pouchdb": "4.2.1"}}')
    assert installs() == ["ci --no-audit --no-fund"]
    (source / "package-lock.json").unlink()  # no lock: npm makes one, to commit
    assert installs() == ["install --no-audit --no-fund"]
    assert (source / "package-lock.json").read_text() == '{"made": "by npm"}'
    assert installs() == []

    node["version"] = "v16.20.0"
    with pytest.raises(PeerUnavailable, match="node 18 or later"):
        installs()
    node["version"], node["npm"] = "v20.20.2", 1
    (source / "package.json").write_text("{}")
    with pytest.raises(PeerUnavailable, match="offline"):
        installs()
    with pytest.raises(PeerUnavailable, match="offline"):
        installs()  # a failed install is never taken for a done one
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(PeerUnavailable, match="node and npm"):
        installs()


def test_the_peer_is_asked_for_unless_no_peer() -> None:
    assert config_from([]).peer
    assert config_from(["--quick"]).peer
    assert not config_from(["--no-peer"]).peer


def test_the_phases_line_says_when_the_server_s_cpu_was_not_read() -> None:
    summary = bench_spent.summary(
        dict.fromkeys(CPU_PHASES, 1.0), dict.fromkeys(CPU_PHASES, 1.5), changes=500, server_us=None
    )
    assert summary["decisions"] == 1000.0
    assert bench_spent.line(summary).endswith("commit 1000, rest -")


def test_the_table_puts_the_peer_beside_our_push_as_a_ratio() -> None:
    figures = {
        "push": {
            "records_per_s": 2000.0,
            "vs_peer": 0.126,
            "write_turns": {
                "held_ms_per_push": 158.3,
                "cpu_ms_per_push": 131.2,
                "held_share_of_push": 0.97,
            },
            "cpu": {
                "server_us_per_change": 290.4,
                "postgres_us_per_change": 135.0,
                "client_us_per_change": 12.0,
            },
            "cpu_by_phase": {
                "parse": 90.0,
                "reads": 20.0,
                "decisions": 80.0,
                "writes": 30.0,
                "publish": 40.0,
                "commit": 0.5,
                "rest": 29.9,
            },
        },
        "peer": {
            "records_per_s": 16000.0,
            "latency_ms": {"p50": 80.0, "p95": 120.5},
            "cpu": {"server_us_per_record": 55.2, "client_us_per_record": 6.1},
        },
    }
    results = {
        "config": {"workers": 2, "devices": 4, "batch": 500, "scale_pull": 1},
        "machine": {"git_revision": "abc", "cores": 2, "python": "3.11"},
        "backends": {"postgresql": figures, "sqlite": {"push": {"records_per_s": 1.0}}},
    }
    # a row: its label in 34 columns, then a cell a backend, then the target
    rows = {line[:34].strip(): line[34:].split() for line in table(results).splitlines()}
    assert rows["push / peer"] == ["0.13", "-", "≥", "1.0"]
    assert rows["peer (express-pouchdb), records/s"] == ["16,000", "-"]
    assert rows["peer batch p95, ms"] == ["120", "-"]
    assert rows["peer CPU a record, µs"] == ["55", "-"]
    assert rows["server CPU a pushed change, µs"] == ["290", "-", "≤", "60"]
    assert rows["PostgreSQL's CPU a change, µs"] == ["135", "-"]
    assert rows["decisions, µs"] == ["80", "-"]
    assert rows["rest, µs"] == ["30", "-"]
    assert rows["SQLite's lock held a push, ms"] == ["158", "-"]
    assert rows["the holder's CPU in it, ms"] == ["131", "-"]
    assert rows["share of the push's time"] == ["97%", "-"]
    assert rows["load process CPU a record, µs"] == [
        "12",
        "/",
        "6",
        "-",
        "/",
        "-",
        "push",
        "/",
        "peer",
    ]


def test_cpu_is_read_from_proc_and_postgresql_backends_by_their_database() -> None:
    title = "postgres: 15/main: postgres fieldsync_bench 127.0.0.1(53130) idle in transaction"
    assert serves(title, "fieldsync_bench")
    assert serves("postgres: 15/main: autovacuum worker fieldsync_bench", "fieldsync_bench")
    assert not serves("postgres: 15/main: postgres test 127.0.0.1(53130) idle", "fieldsync_bench")
    assert not serves("postgres: 15/main: walwriter", "fieldsync_bench")
    assert not serves("/usr/lib/postgresql/15/bin/postgres -D fieldsync_bench", "fieldsync_bench")
    with cpu_used(lambda: [os.getpid()]) as used:
        started = time.process_time()
        while time.process_time() - started < 0.05:
            pass
    assert used.processes == 1
    assert 0.03 <= used.seconds < 5
    assert used.per(1000) == round(used.seconds * 1000, 1)
    with cpu_used(lambda: [2**22 + 1]) as gone:  # no such process
        pass
    assert (gone.seconds, gone.processes, gone.per(10)) == (0, 0, None)


def test_the_workers_runs_are_one_two_and_four_processes_unless_told() -> None:
    config = config_from([])
    assert (config.scaling_workers, config.scaling_seconds) == ([1, 2, 4], 20)
    assert config_from(["--only", "workers"]).phases == ["workers"]
    told = config_from(["--scaling-workers", "1, 3", "--scaling-seconds", "5"])
    assert (told.scaling_workers, told.scaling_seconds) == ([1, 3], 5)
    assert config_from(["--scaling-workers", ""]).scaling_workers == []
    assert config_from(["--quick"]).scaling_workers == [1, 2]
    for wrong in ("0,2", "two", "1,-4"):
        with pytest.raises(SystemExit):
            config_from(["--scaling-workers", wrong])


def _session(pid: int, xid: str | None, state: str, wait: str | None = None) -> tuple[Any, ...]:
    kind, event = wait.split("/") if wait else (None, None)
    return (pid, xid, state, kind, event)


def test_the_clocks_holder_is_the_session_not_waiting_and_its_holds_are_timed() -> None:
    holder = _session(7, "901", "idle in transaction", "Client/ClientRead")
    waiter = _session(8, "902", "active", "Lock/transactionid")
    committing = _session(7, "901", "active", "IO/WALSync")
    first = bench.clock.sample_of(0.0, [holder, waiter])
    assert [h.pid for h in first.holders] == [7]
    assert first.waiting == 1
    samples = [
        first,
        bench.clock.sample_of(0.01, [committing, waiter]),
        bench.clock.sample_of(0.02, [_session(8, "902", "active")]),  # the next one's turn
        bench.clock.sample_of(0.03, []),
        bench.clock.sample_of(0.04, []),
    ]
    watched = bench.clock.ClockWatch(samples=samples, sampler_cpu_s=0.01)
    summary = bench.clock.summary(watched, pushes=2, push_seconds=0.05)
    assert summary["interval_ms"] == 10
    assert summary["busy_s"] == 0.03  # three samples of five held, 10 ms each
    assert summary["held_ms_per_push"] == 15
    assert summary["held_share_of_push"] == 0.6
    assert summary["holds_seen"] == 2
    # 7 held from the first sample to the second: a span of 10 ms, 20 ms with the step.
    assert summary["hold_ms"]["max"] == 20
    assert summary["holder_doing"] == {
        "idle in transaction": 0.333,
        "active, waiting IO/WALSync": 0.333,
        "active": 0.333,
    }
    assert summary["waiting_max"] == 1
    assert summary["waiting_while_held_mean"] == 0.67
    empty = bench.clock.summary(bench.clock.ClockWatch(), pushes=2, push_seconds=1)
    assert empty == {"samples": 0, "problem": "too few samples"}


@pytest.mark.skipif("postgresql" not in backends(), reason="PostgreSQL left out")
def test_the_clock_watch_sees_a_transaction_hold_the_clock_row_and_another_wait(
    tmp_path: Path,
) -> None:
    server = postgres_server_url().render_as_string(hide_password=False)
    with fresh_database("postgresql", tmp_path) as url:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql("CREATE TABLE sync_clock (id int PRIMARY KEY, seq bigint)")
            connection.exec_driver_sql("INSERT INTO sync_clock VALUES (1, 0)")
        bump = sa.text("UPDATE sync_clock SET seq = seq + 1 WHERE id = 1")
        with (
            bench.clock.watch(server_url=server, database_url=url, interval=0.002) as watched,
            engine.connect() as holding,
        ):
            holding.exec_driver_sql("BEGIN")
            holding.execute(bump)
            time.sleep(0.1)

            def wait_for_the_clock() -> None:
                with engine.connect() as other:
                    other.execute(bump)

            waiting = threading.Thread(target=wait_for_the_clock)
            waiting.start()
            time.sleep(0.2)
            holding.exec_driver_sql("COMMIT")
            waiting.join(timeout=10)
            time.sleep(0.05)
        engine.dispose()
    summary = bench.clock.summary(watched, pushes=2, push_seconds=0.35)
    assert summary["problem"] is None
    assert summary["samples"] > 20
    assert summary["waiting_max"] == 1
    assert summary["holds_seen"] >= 1
    assert 250 <= summary["hold_ms"]["max"] < 2000
    assert summary["holder_doing"]["idle in transaction"] > 0.5
    assert summary["sampler_cpu_s"] is not None


def test_the_table_has_a_row_for_each_worker_count_and_says_why_sqlite_has_none() -> None:
    def row(workers: int, rate: float, vs_first: float, spread: list[int]) -> dict[str, Any]:
        return {
            "workers": workers,
            "vs_first": vs_first,
            "push": {
                "records_per_s": rate,
                "latency_ms": {"p50": 900.0, "p95": 1300.0},
                "cpu": {"server_us_per_change": 420.0, "postgres_us_per_change": 140.0},
                "clock": {
                    "held_ms_per_push": 61.25,
                    "held_share_of_push": 0.25,
                    "waiting_while_held_mean": 1.5,
                },
                "connections_by_process": spread,
            },
        }

    workers = {
        "devices": 4,
        "batch": 500,
        "batches_per_device": 8,
        "runs": [row(1, 1500.0, 1.0, [4]), row(2, 2100.0, 1.4, [2, 2])],
    }
    results = {
        "config": {"workers": 2, "devices": 4, "batch": 500, "scale_pull": 1},
        "machine": {"git_revision": "abc", "cores": 2, "python": "3.11"},
        "backends": {
            "sqlite": {"workers": {"skipped": ONE_WRITER}},
            "postgresql": {"workers": workers},
        },
    }
    printed = table(results).splitlines()
    assert f"sqlite: no workers run: {ONE_WRITER}" in printed
    heading = next(line for line in printed if line.startswith("postgresql: fieldsync serve"))
    assert "4 devices x 8 batches of 500" in heading
    at = printed.index(heading)
    assert printed[at + 1].split() == [
        *("workers", "records/s", "vs", "first", "p50", "ms", "p95", "ms"),
        *("server", "µs", "PG", "µs", "clock", "ms", "held", "waiting", "connections"),
    ]
    assert printed[at + 2].split() == [
        *("1", "1,500", "x1.00", "900", "1,300", "420", "140", "61.2", "25%", "1.5", "4"),
    ]
    assert printed[at + 3].split()[:3] == ["2", "2,100", "x1.40"]
    assert printed[at + 3].split()[-1] == "2+2"


def test_the_connections_accepted_on_a_port_are_counted_by_the_process_holding_them() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [listening.accept()[0] for _ in clients]
        try:
            everyone = bench.connections.open_connections(port)
            mine = bench.connections.open_connections(port, remote_port=clients[0].getsockname()[1])
            here = [os.getpid()]
            assert bench.connections.held_by(here, everyone) == {os.getpid(): 3}
            assert bench.connections.held_by(here, mine) == {os.getpid(): 1}
            assert bench.connections.held_by([1], everyone) == {}
        finally:
            for end in (*clients, *accepted):
                end.close()
    assert bench.connections.open_connections(port) == set()
