"""``GET /metrics``: closed without a token, refused without the right one, and read by
prometheus_client's own parser: requests by route template with their latencies, upload
bytes, the fleet's backlog counted in the database (both backends), push and pull
counts; and one figure for a whole ``fieldsync serve --workers 2``.

The metrics live as long as the test process and are shared by every app it builds,
so a test compares figures before and after what it does; the backlog is read from
the test's own emptied database, so it is compared whole.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from api import metrics
from api.app import create_app, warm_up
from bench.memory import tree
from schemas.sync import ChangeResult, PushResponse, Status
from sync.engine.spent import PHASES, Spent
from sync.platform.database import create_db_engine
from sync.platform.settings import Settings
from tests.api.test_record_attachments import photo, ref, upload
from tests.asgi import TestClient
from tests.conftest import World, assert_problem, make_settings
from tests.servers import Deployment, Server, deployment_fixture
from tests.sync_support import Tablet

deployment = deployment_fixture
TOKEN = "scrape-7Qm2xV9pLr4Kd8Wn3Zt6Hb1Yc5Js0Fg"
ROOT = "http://testserver"
# Samples by name, then by their labels (sorted pairs).
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """This module's apps (``client``, ``world``) have a metrics token."""
    return make_settings(database_url, metrics_token=TOKEN)


def scrape(client: TestClient) -> Samples:
    answer = client.get(f"{ROOT}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == CONTENT_TYPE_LATEST
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_metrics_are_not_found_when_no_token_is_set(engine: Engine, database_url: str) -> None:
    app = create_app(make_settings(database_url), engine)
    with TestClient(app, base_url=ROOT) as client:
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        nowhere = client.get("/no-such-address")

    problem = assert_problem(answer, 404, "not_found")
    assert problem["detail"] == nowhere.json()["detail"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "not_authenticated"),
        (f"Basic {TOKEN}", "not_authenticated"),
        ("Bearer ", "not_authenticated"),
        (f"Bearer {TOKEN[:-1]}", "invalid_token"),
        (f"Bearer {TOKEN}x", "invalid_token"),
    ],
)
def test_metrics_refuse_a_missing_or_wrong_token(
    client: TestClient, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    answer = client.get(f"{ROOT}/metrics", headers=headers)

    assert_problem(answer, 401, code)
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert "fieldsync_" not in answer.text


def test_requests_are_counted_by_route_template_status_and_duration(world: World) -> None:
    admin = world.admin
    patrols = [str(uuid.uuid4()) for _ in range(3)]
    before = scrape(world.client)

    for patrol_id in patrols:
        assert admin.get(f"/patrols/{patrol_id}").status_code == 404
    assert world.client.get(f"{ROOT}/healthz").status_code == 200
    assert world.client.get(f"{ROOT}/no/such/{patrols[0]}").status_code == 404
    after = scrape(world.client)

    def more(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    template = "/api/v1/patrols/{patrol_id}"
    requests = "fieldsync_http_requests_total"
    assert more(requests, method="GET", route=template, status="404") == 3
    assert more(requests, method="GET", route="/healthz", status="200") == 1
    assert more(requests, method="GET", route="unmatched", status="404") == 1
    routes = {dict(labels)["route"] for labels in after[requests]}
    assert not any(patrol_id in route for route in routes for patrol_id in patrols), routes
    seconds = "fieldsync_http_request_duration_seconds"
    assert more(f"{seconds}_count", method="GET", route=template) == 3
    assert more(f"{seconds}_bucket", method="GET", route=template, le="+Inf") == 3
    assert more(f"{seconds}_sum", method="GET", route=template) > 0


def test_the_console_and_static_files_are_counted_by_their_templates(client: TestClient) -> None:
    before = scrape(client)

    assert client.get(f"{ROOT}/console/static/console.css").status_code == 200
    assert client.get(f"{ROOT}/console/no/such/page").status_code == 404
    after = scrape(client)

    requests = "fieldsync_http_requests_total"
    for route, status in [("/console/static/{path}", "200"), ("/console/{path}", "404")]:
        labels = {"method": "GET", "route": route, "status": status}
        assert value(after, requests, **labels) - value(before, requests, **labels) == 1


def test_upload_bytes_and_files_owed_are_counted(world: World) -> None:
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    held, owed = photo(), photo()
    named = tablet.send(
        "patrol",
        str(uuid.uuid4()),
        "create",
        {"sector_id": sector["id"], "attachments": [ref(held), ref(owed)]},
    )
    assert named["status"] == "applied", named
    before = scrape(world.client)
    assert value(before, "fieldsync_attachments_owed") == 2

    upload(tablet.device, held)
    after = scrape(world.client)

    uploaded = value(after, "fieldsync_upload_bytes_total")
    assert uploaded - value(before, "fieldsync_upload_bytes_total") == len(held)
    assert value(after, "fieldsync_attachments_owed") == 1


def test_deferred_changes_and_open_conflicts_are_counted_in_the_database(world: World) -> None:
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    other = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    tablet.defer_one()
    patrol_id = str(uuid.uuid4())
    assert tablet.send("patrol", patrol_id, "create", {"sector_id": sector["id"]})["status"] == (
        "applied"
    )
    first = tablet.send("patrol", patrol_id, "update", {"objective": "Quebrada"}, base_version=1)
    second = other.send("patrol", patrol_id, "update", {"objective": "Laguna"}, base_version=1)
    assert (first["status"], second["status"]) == ("applied", "conflict")

    samples = scrape(world.client)

    assert value(samples, "fieldsync_deferred_changes") == 1
    assert value(samples, "fieldsync_open_conflicts") == 1
    assert value(samples, "fieldsync_attachments_owed") == 0


def test_a_scrape_without_a_database_still_has_the_requests() -> None:
    nowhere = create_db_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    try:
        text = metrics.exposition(nowhere).decode()
    finally:
        nowhere.dispose()

    names = {family.name for family in text_string_to_metric_families(text)}
    assert "fieldsync_http_requests" in names
    assert "fieldsync_deferred_changes" not in names


def _result(status: Status, *, replayed: bool = False) -> ChangeResult:
    return ChangeResult(change_id=uuid.uuid4(), status=status, replayed=replayed or None)


def _counted(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_push_is_counted_by_status_with_its_replayed_changes() -> None:
    statuses = [s.value for s in Status]
    before = {
        status: _counted("fieldsync_changes_pushed_total", status=status) for status in statuses
    }
    replayed = _counted("fieldsync_changes_replayed_total")
    spent_before = {
        phase: _counted("fieldsync_push_cpu_seconds_total", phase=phase) for phase in PHASES
    }
    spent = Spent()
    spent.seconds.update(parse=0.25, decisions=0.5, commit=0.125)
    answer = PushResponse(
        results=[
            _result(Status.applied),
            _result(Status.applied),
            _result(Status.applied, replayed=True),
            _result(Status.merged),
            _result(Status.conflict, replayed=True),
            _result(Status.rejected),
            _result(Status.deferred),
        ],
        last_seq=7,
        server_time=datetime.now(UTC),
    )

    metrics.record_push(answer, spent)

    counted = {
        status: _counted("fieldsync_changes_pushed_total", status=status) - before[status]
        for status in statuses
    }
    assert counted == {"applied": 3, "merged": 1, "conflict": 1, "rejected": 1, "deferred": 1}
    assert _counted("fieldsync_changes_replayed_total") - replayed == 2
    spent_counted = {
        phase: _counted("fieldsync_push_cpu_seconds_total", phase=phase) - spent_before[phase]
        for phase in PHASES
    }
    # The counter is the process's, grown by earlier tests: (a + 0.5) - a need not be
    # exactly 0.5 in floating point.
    assert spent_counted == pytest.approx({**dict.fromkeys(PHASES, 0.0), **spent.seconds})


def test_a_pull_is_counted_as_a_page_and_its_records() -> None:
    pages = _counted("fieldsync_pull_pages_total")
    records = _counted("fieldsync_pull_records_total")

    metrics.record_pull(500)
    metrics.record_pull(0)

    assert _counted("fieldsync_pull_pages_total") - pages == 2
    assert _counted("fieldsync_pull_records_total") - records == 500


def test_a_tablets_push_and_pull_through_the_api_are_counted(world: World) -> None:
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    root = TestClient(world.client.app, base_url=ROOT)
    before = scrape(root)

    tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})
    tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": "nowhere"})
    page = tablet.device.get("/sync/pull").json()

    after = scrape(root)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("fieldsync_changes_pushed_total", status="applied") == 1
    assert grew("fieldsync_changes_pushed_total", status="rejected") == 1
    assert grew("fieldsync_pull_pages_total") == 1
    assert grew("fieldsync_pull_records_total") == len(page["changes"]) == 2  # sector, patrol


def test_the_cpu_of_pushes_is_counted_by_phase_and_is_the_process_s(world: World) -> None:
    """Each phase of a push is timed by its thread's own CPU clock: every phase that
    always does work grows, and all of them together are no more than the CPU the
    process spent meanwhile (the client and the event loop included)."""
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    root = TestClient(world.client.app, base_url=ROOT)
    before = scrape(root)
    cpu_before = time.process_time()

    for _ in range(3):
        tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})

    cpu = time.process_time() - cpu_before
    after = scrape(root)
    grew = {
        phase: value(after, "fieldsync_push_cpu_seconds_total", phase=phase)
        - value(before, "fieldsync_push_cpu_seconds_total", phase=phase)
        for phase in PHASES
    }
    assert all(grew[phase] > 0 for phase in ("parse", "reads", "decisions", "writes", "publish"))
    assert grew["commit"] >= 0
    assert sum(grew.values()) <= cpu


@pytest.fixture
def two_workers(deployment: Deployment) -> Server:
    deployment.env["FIELDSYNC_METRICS_TOKEN"] = TOKEN
    return deployment.start(workers=2)


def metrics_folder(server: Server) -> Path:
    """The ``PROMETHEUS_MULTIPROC_DIR`` that ``fieldsync serve`` gave its workers."""
    for pid in tree(server.pid)[1:]:
        for variable in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            name, _, folder = variable.decode().partition("=")
            if name == "PROMETHEUS_MULTIPROC_DIR":
                return Path(folder)
    raise AssertionError("no worker has PROMETHEUS_MULTIPROC_DIR")


def health_checks_per_worker(folder: Path) -> list[float]:
    """What each worker counted of ``GET /healthz``, read from its own file."""
    counted = []
    for path in sorted(folder.glob("counter_*.db")):
        families = MultiProcessCollector.merge([str(path)])
        counted.append(
            sum(
                sample.value
                for family in families
                for sample in family.samples
                if sample.name == "fieldsync_http_requests_total"
                and sample.labels["route"] == "/healthz"
            )
        )
    return counted


@pytest.mark.slow
def test_the_workers_of_one_server_are_summed_in_every_scrape(two_workers: Server) -> None:
    def check_health(_: int) -> int:
        return httpx.get(f"{two_workers.base_url}/healthz", timeout=30).status_code

    folder = metrics_folder(two_workers)
    sent = 0
    # A connection each, 20 at once, until each worker has answered some.
    with ThreadPoolExecutor(max_workers=20) as pool:
        while sent < 400:
            assert set(pool.map(check_health, range(20))) == {200}
            sent += 20
            per_worker = health_checks_per_worker(folder)
            if len(per_worker) == 2 and min(per_worker) > 0:
                break
    # A request is counted once its answer is sent: the last few may be counted a moment
    # after the client has them.
    deadline = time.monotonic() + 10
    while sum(per_worker) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
        per_worker = health_checks_per_worker(folder)
    assert len(per_worker) == 2, per_worker
    assert min(per_worker) > 0, per_worker
    assert sum(per_worker) == sent

    for _ in range(6):  # answered by either worker, each time the sum of both
        answer = httpx.get(
            f"{two_workers.base_url}/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        samples: dict[tuple[str, str | None, str | None], float] = {
            (sample.name, sample.labels.get("route"), sample.labels.get("status")): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }
        assert samples[("fieldsync_http_requests_total", "/healthz", "200")] == sent
        assert samples[("fieldsync_deferred_changes", None, None)] == 0


def test_sqlite_write_turns_are_timed_as_pushes_take_them(world: World, backend: str) -> None:
    """Every push on SQLite takes a turn at the one write lock: how long it waited for
    it, how long it held it and the holder's CPU meanwhile are counted; PostgreSQL has
    no such lock, so nothing is counted there."""
    sector = world.sector()
    tablet = Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]])))
    root = TestClient(world.client.app, base_url=ROOT)
    before = scrape(root)

    for _ in range(3):
        tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})

    after = scrape(root)

    def grew(name: str) -> float:
        return value(after, name) - value(before, name)

    turns = grew("fieldsync_sqlite_write_held_seconds_count")
    if backend == "postgresql":
        assert turns == 0
        return
    assert turns >= 3  # a push's each, and whatever brief writes came with them
    assert grew("fieldsync_sqlite_write_wait_seconds_count") == turns
    held, cpu = (
        grew("fieldsync_sqlite_write_held_seconds_sum"),
        grew("fieldsync_sqlite_write_held_cpu_seconds_total"),
    )
    assert 0 < cpu <= held


def test_a_process_routes_once_before_it_serves_neither_counted_nor_logged(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """``warm_up`` (run by a server process as it starts) routes a request past the
    middleware: the first request a tablet sends must not pay for building the routes,
    and the warm-up must not show in the figures or the access log."""
    caplog.set_level(logging.INFO, logger="fieldsync")
    before = scrape(client)

    app = client.app
    assert isinstance(app, FastAPI)
    asyncio.run(warm_up(app))

    after = scrape(client)
    requests = "fieldsync_http_requests_total"
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(after, requests, **healthz) == value(before, requests, **healthz)
    assert not [
        r for r in caplog.records if r.name == "fieldsync.access" and "healthz" in r.message
    ]
