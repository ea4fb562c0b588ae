"""The reference device client (sync/client.py) against the real app, on both databases.

Tablets are ``DeviceClient``s talking to the app through the ``TestClient`` (an
``httpx.Client``), or through a flaky transport that drops, refuses or loses
requests before handing them to the app.
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api.app import create_app
from schemas.sync import Status
from schemas.types import utcnow
from sync.accounts import security
from sync.client import AuthFailed, DeviceClient, NotEnrolled, SyncError, Unreachable
from tests.asgi import TestClient
from tests.conftest import Caller, World, make_settings

BASE_URL = "http://testserver/api/v1"


# ---------------------------------------------------------------- helpers


class Flaky:
    """An ``httpx.MockTransport`` handler: plays a script of failures, one step per
    request, then hands requests to the app.

    Steps: ``"ok"`` forwards; ``"connect"`` fails before the app sees the request;
    ``"503"`` answers 503 without the app; ``"lost"`` lets the app answer, then drops
    the answer (the server applied it, the tablet never heard).
    """

    def __init__(self, app: httpx.Client, script: list[str] | None = None) -> None:
        self.app = app
        self.script = list(script or [])
        self.seen: list[tuple[str, str, str, int | None]] = []  # method, path, step, status
        self.pushes: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        self.encodings: list[str] = []  # of the pushes the app saw

    def __call__(self, request: httpx.Request) -> httpx.Response:
        step = self.script.pop(0) if self.script else "ok"
        status: int | None = None
        try:
            if step == "connect":
                raise httpx.ConnectError("no signal", request=request)
            if step == "503":
                status = 503
                return httpx.Response(503, json={"code": "not_ready", "detail": "restarting"})
            answer = self.app.send(request)
            status = answer.status_code
            if request.url.path.endswith("/sync/push"):
                self.encodings.append(request.headers.get("content-encoding", "identity"))
                self.pushes.append((_body(request), answer.json() if status == 200 else None))
            if step == "lost":
                raise httpx.ReadError("the link dropped", request=request)
            headers = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-encoding", "content-length")
            }
            return httpx.Response(status, headers=headers, content=answer.content)
        finally:
            self.seen.append((request.method, request.url.path, step, status))


def _body(request: httpx.Request) -> dict[str, Any]:
    raw = request.content
    if request.headers.get("content-encoding") == "gzip":
        raw = gzip.decompress(raw)
    document: dict[str, Any] = json.loads(raw)
    return document


def flaky_http(flaky: Flaky) -> httpx.Client:
    return httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(flaky))


def tablet(
    world: World,
    owner: Caller,
    path: Path,
    *,
    http: httpx.Client | None = None,
    **options: Any,
) -> DeviceClient:
    """A new tablet of ``owner``: enrolled, with a fresh state file at ``path``."""
    device = world.device(owner)
    return DeviceClient(
        http or world.client,
        path,
        device_id=device.tokens["device_id"],
        access_token=device.tokens["access_token"],
        refresh_token=device.tokens["refresh_token"],
        backoff=0,
        **options,
    )


def server_view(world: World, owner: Caller, path: Path, entity: str = "patrol") -> Any:
    """What a brand-new tablet of ``owner`` pulls: the server's state of the scope."""
    with tablet(world, owner, path) as fresh:
        fresh.pull()
        return fresh.records(entity)


def versions(engine: Engine, record_id: str) -> list[tuple[int, str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT version, op, change_id FROM record_version "
                "WHERE record_id = :id ORDER BY version"
            ),
            {"id": _db_id(engine, record_id)},
        ).all()
    return [(r[0], r[1], str(uuid.UUID(str(r[2]))) if r[2] else None) for r in rows]


def _db_id(engine: Engine, record_id: str) -> Any:
    # UUIDs are stored as 32 hex characters on SQLite, natively on PostgreSQL.
    return uuid.UUID(record_id).hex if engine.dialect.name == "sqlite" else uuid.UUID(record_id)


@pytest.fixture
def sector(world: World) -> dict[str, Any]:
    return world.sector("AM-01")


@pytest.fixture
def rangers(world: World, sector: dict[str, Any]) -> tuple[Caller, Caller]:
    return (
        world.user("ranger", sector_ids=[sector["id"]]),
        world.user("ranger", sector_ids=[sector["id"]]),
    )


def patrol(sector: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"sector_id": sector["id"], "objective": "Río Mayo", **fields}


def fields_of(view: dict[str, dict[str, Any]], record_id: str) -> dict[str, Any]:
    return {k: view[record_id].get(k) for k in ("objective", "comment", "transport")}


# ---------------------------------------------------------------- round trips


def test_create_update_delete_round_trip(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    with tablet(world, ranger, tmp_path / "a.db") as a:
        a.create("patrol", one, patrol(sector, comment="sol"))
        a.create("patrol", two, patrol(sector, objective="Quebrada"))
        assert [c.seq for c in a.outbox()] == [1, 2]
        assert a.records("patrol")[one]["comment"] == "sol"  # visible before any sync

        results = a.sync()

        assert [(r.status, r.version) for r in results] == [(Status.applied, 1)] * 2
        assert a.outbox() == []
        assert a.records("patrol") == server_view(world, ranger, tmp_path / "s1.db")
        assert sector["id"] in a.records("sector")

        a.update("patrol", one, {"comment": "lluvia", "transport": "moto"})
        assert a.outbox()[0].base_version == 1
        assert [(r.status, r.version) for r in a.sync()] == [(Status.applied, 2)]
        a.delete("patrol", two)
        assert a.outbox()[0].base_version == 1
        assert two not in a.records("patrol")
        assert [(r.status, r.version) for r in a.sync()] == [(Status.applied, 2)]

        view = server_view(world, ranger, tmp_path / "s2.db")
        assert a.records("patrol") == view
        assert set(view) == {one}
        assert fields_of(view, one) == {
            "objective": "Río Mayo",
            "comment": "lluvia",
            "transport": "moto",
        }
        assert a.record("patrol", one).version == 2  # type: ignore[union-attr]
        assert a.record("patrol", two).deleted  # type: ignore[union-attr]
    assert [v[:2] for v in versions(world.engine, one)] == [(1, "create"), (2, "update")]
    assert [v[:2] for v in versions(world.engine, two)] == [(1, "create"), (2, "delete")]


def test_each_push_reports_the_tablet_to_the_fleet_view_and_each_pull_is_noted(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    with tablet(world, ranger, tmp_path / "a.db", batch_size=2, app_version="2.5.0-rc.1") as a:
        for _ in range(3):
            a.create("patrol", str(uuid.uuid4()), patrol(sector))
        oldest = a.outbox()[0].recorded_at

        a.sync()

        [health] = world.admin.get("/devices/health").json()["items"]
    assert (health["app_version"], health["schema_version"]) == ("2.5.0-rc.1", 2)
    # The last batch's report: its one change was still unsent when it left.
    assert health["pending_changes"] == 1
    assert health["oldest_pending_at"] is not None
    assert health["oldest_pending_at"] > oldest[:10]
    assert health["free_storage_mb"] > 0
    assert health["last_pull_at"] is not None
    assert health["behind_since"] is None
    assert health["pulled_seq"] == health["newest_seq"]


def test_an_update_of_a_record_made_here_and_not_yet_pushed_has_base_version_zero(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    record = str(uuid.uuid4())
    with tablet(world, ranger, tmp_path / "a.db") as a:
        a.create("patrol", record, patrol(sector))
        a.update("patrol", record, {"comment": "first"})
        a.update("patrol", record, {"comment": "second"})
        assert [c.base_version for c in a.outbox()] == [None, 0, 0]
        results = a.sync()
    assert [(r.status, r.version) for r in results] == [
        (Status.applied, 1),
        (Status.applied, 2),
        (Status.applied, 3),
    ]


def test_two_rangers_edit_one_patrol_offline_and_both_end_with_the_servers_state(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    rosa, juan = rangers
    record = str(uuid.uuid4())
    a = tablet(world, rosa, tmp_path / "a.db")
    b = tablet(world, juan, tmp_path / "b.db")
    a.create("patrol", record, patrol(sector, comment="inicio"))
    a.sync()
    b.sync()
    assert b.records("patrol") == a.records("patrol")

    # Offline, both edit: objective on both sides (a conflict), and one field each.
    a.update("patrol", record, {"objective": "Cerro A", "comment": "de Rosa"})
    b.update("patrol", record, {"objective": "Cerro B", "transport": "bote"})
    assert [r.status for r in a.sync()] == [Status.applied]
    [answer] = b.sync()
    assert answer.status == Status.conflict
    assert answer.version == 3  # transport was applied; objective kept the server's
    a.sync()

    view = server_view(world, rosa, tmp_path / "s.db")
    assert a.records("patrol") == b.records("patrol") == view
    assert fields_of(view, record) == {
        "objective": "Cerro A",
        "comment": "de Rosa",
        "transport": "bote",
    }
    conflict = world.admin.get(f"/conflicts/{answer.conflict_id}").json()
    assert conflict["fields"]["objective"] == {"server": "Cerro A", "device": "Cerro B"}
    a.close()
    b.close()


def test_a_merged_answer_does_not_make_its_version_the_conflict_tag_before_a_pull(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    """A merged change's version holds others' changes the tablet has not seen: an edit
    made before the next pull must still meet them (a conflict), not overwrite them."""
    rosa, juan = rangers
    record = str(uuid.uuid4())
    with tablet(world, rosa, tmp_path / "a.db") as a, tablet(world, juan, tmp_path / "b.db") as b:
        a.create("patrol", record, patrol(sector))
        a.sync()
        b.sync()
        b.update("patrol", record, {"objective": "Juan's"})
        b.sync()
        a.update("patrol", record, {"comment": "Rosa's"})
        assert [(r.status, r.version) for r in a.push()] == [(Status.merged, 3)]
        known = a.record("patrol", record)
        assert known is not None
        assert known.version == 1  # v2 (Juan's objective) is still unseen here
        assert known.fields["comment"] == "Rosa's"  # but the tablet's own change shows

        a.update("patrol", record, {"objective": "Rosa's"})  # Rosa never saw Juan's
        assert a.outbox()[0].base_version == 1
        [answer] = a.sync()
        assert answer.status == Status.conflict
        assert fields_of(a.records("patrol"), record)["objective"] == "Juan's"


def test_disjoint_offline_edits_merge(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    rosa, juan = rangers
    record = str(uuid.uuid4())
    with tablet(world, rosa, tmp_path / "a.db") as a, tablet(world, juan, tmp_path / "b.db") as b:
        a.create("patrol", record, patrol(sector))
        a.sync()
        b.sync()
        a.update("patrol", record, {"comment": "Rosa"})
        b.update("patrol", record, {"transport": "a pie"})
        a.sync()
        assert [(r.status, r.version) for r in b.sync()] == [(Status.merged, 3)]
        a.sync()
        assert a.records("patrol") == b.records("patrol")
        assert fields_of(a.records("patrol"), record) == {
            "objective": "Río Mayo",
            "comment": "Rosa",
            "transport": "a pie",
        }


def test_a_large_batch_goes_gzipped(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    flaky = Flaky(world.client)
    with tablet(world, ranger, tmp_path / "a.db", http=flaky_http(flaky)) as a:
        for n in range(20):
            a.create("patrol", uuid.uuid4(), patrol(sector, comment=f"parada {n} " * 10))
        assert [r.status for r in a.sync()] == [Status.applied] * 20
        assert len(a.records("patrol")) == 20
    [(body, answer)] = flaky.pushes
    assert len(body["changes"]) == 20
    assert answer is not None
    assert flaky.encodings == ["gzip"]


def test_an_edit_the_server_would_refuse_with_its_whole_batch_is_refused_at_once(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    with tablet(world, ranger, tmp_path / "a.db") as a:
        with pytest.raises(ValueError, match="NUL"):
            a.create("patrol", uuid.uuid4(), patrol(sector, comment="a\x00b"))
        with pytest.raises(ValueError, match="64"):
            a.create("x" * 65, uuid.uuid4(), {})
        assert a.outbox() == []
        assert a.records("patrol") == {}
        assert a.next_seq == 1


def test_a_client_made_from_a_url_owns_its_connection(
    rangers: tuple[Caller, Caller], world: World, tmp_path: Path
) -> None:
    ranger, _ = rangers
    device = world.device(ranger)
    with DeviceClient(
        "http://127.0.0.1:9/api/v1",  # nothing listens there
        tmp_path / "a.db",
        device_id=device.tokens["device_id"],
        access_token=device.tokens["access_token"],
        refresh_token=device.tokens["refresh_token"],
        max_retries=1,
        backoff=0,
        timeout=2,
    ) as a:
        assert a.push() == []  # nothing queued: no request at all
        with pytest.raises(Unreachable, match="2 attempts"):
            a.pull()


# ---------------------------------------------------------------- enrollment


def enrollment_code(world: World, owner: Caller, label: str = "Tablet 7") -> dict[str, Any]:
    """A one-time code for a new device of ``owner``, as the office hands it out."""
    answer = world.admin.post("/devices", json={"label": label, "user_id": str(owner.user_id)})
    assert answer.status_code == 201, answer.text
    code: dict[str, Any] = answer.json()
    return code


def test_enroll_trades_a_code_for_the_identity_the_device_then_syncs_with(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    made = enrollment_code(world, ranger)
    path = tmp_path / "a.db"
    with DeviceClient(world.client, path, backoff=0) as a:
        assert not a.enrolled
        with pytest.raises(NotEnrolled):
            a.pull()
        with pytest.raises(NotEnrolled):
            a.create("patrol", uuid.uuid4(), patrol(sector))

        typed = made["enrollment_code"].lower().replace("-", " ")  # as read out, say
        enrollment = a.enroll(typed)

        assert a.enrolled
        assert a.device_id == enrollment.device_id == uuid.UUID(made["device_id"])
        assert a.user_id == enrollment.user_id == ranger.user_id
        assert a.tokens["access_token"] == enrollment.access_token
        assert a.me()["username"] == ranger.username
        pulled: list[tuple[str, str]] = []
        assert a.pull(on_change=lambda c: pulled.append((c.entity, str(c.id)))) == len(pulled)
        assert ("sector", sector["id"]) in pulled
        record = uuid.uuid4()
        a.create("patrol", record, patrol(sector))
        assert [(r.status, r.version) for r in a.push()] == [(Status.applied, 1)]
    device = world.admin.get(f"/devices/{made['device_id']}").json()
    assert device["status"] == "active"
    # A restart finds the identity in the state file, and the device goes on.
    with DeviceClient(world.client, path, backoff=0) as again:
        assert (again.device_id, again.user_id) == (enrollment.device_id, ranger.user_id)
        again.update("patrol", record, {"comment": "de vuelta"})
        assert [(r.status, r.version) for r in again.sync()] == [(Status.applied, 2)]


def test_a_spent_code_is_refused_and_leaves_the_state_file_unenrolled(
    world: World, rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    code = enrollment_code(world, ranger)["enrollment_code"]
    with DeviceClient(world.client, tmp_path / "a.db", backoff=0) as a:
        a.enroll(code)
    with DeviceClient(world.client, tmp_path / "b.db", backoff=0) as b:
        with pytest.raises(SyncError) as refused:
            b.enroll(code)
        assert (refused.value.status, refused.value.code) == (401, "invalid_enrollment_code")
        assert not b.enrolled


def test_re_enrolling_a_revoked_device_keeps_its_outbox_and_pulls_its_scope_afresh(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    with DeviceClient(world.client, tmp_path / "a.db", backoff=0) as a:
        first = a.enroll(enrollment_code(world, ranger)["enrollment_code"])
        kept = uuid.uuid4()
        a.create("patrol", kept, patrol(sector))
        a.sync()
        unsent = uuid.uuid4()
        a.create("patrol", unsent, patrol(sector, objective="Quebrada"))
        world.admin.post(f"/devices/{first.device_id}/revoke")
        with pytest.raises(AuthFailed):
            a.push()

        second = a.enroll(enrollment_code(world, ranger, "Tablet 8")["enrollment_code"])

        assert a.device_id == second.device_id != first.device_id
        assert a.cursor is None  # the new device pulls its scope from the start
        assert [c.id for c in a.outbox()] == [str(unsent)]
        [result] = a.sync()
        assert (result.status, result.version) == (Status.applied, 1)
        assert set(a.records("patrol")) == {str(kept), str(unsent)}
        assert a.record("patrol", kept).version == 1  # type: ignore[union-attr]


def test_the_unsent_edits_of_one_user_are_never_handed_to_another(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    rosa, juan = rangers
    with DeviceClient(world.client, tmp_path / "a.db", backoff=0) as a:
        hers = a.enroll(enrollment_code(world, rosa)["enrollment_code"])
        a.create("patrol", uuid.uuid4(), patrol(sector))
        with pytest.raises(ValueError, match="unsent edits of user"):
            a.enroll(enrollment_code(world, juan)["enrollment_code"])
        assert (a.device_id, a.user_id) == (hers.device_id, rosa.user_id)
        assert [r.status for r in a.push()] == [Status.applied]


def test_a_state_file_keeps_the_server_url_it_was_given(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/api/v1"
    DeviceClient(url, tmp_path / "a.db").close()
    with DeviceClient(None, tmp_path / "a.db") as again:
        assert again.server_url == url
        assert not again.enrolled
    with pytest.raises(ValueError, match="keeps no server URL"):
        DeviceClient(None, tmp_path / "new.db")


# ---------------------------------------------------------------- restarts


def test_a_restart_keeps_the_outbox_the_cursor_and_the_tokens(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    record = str(uuid.uuid4())
    path = tmp_path / "a.db"
    a = tablet(world, ranger, path)
    a.create("patrol", record, patrol(sector))
    a.sync()
    cursor, tokens = a.cursor, a.tokens
    a.update("patrol", record, {"comment": "antes de apagar"})
    queued = a.outbox()
    a.close()

    # The app starts again: no tokens given, the state file has them.
    with DeviceClient(world.client, path, backoff=0) as again:
        assert again.outbox() == queued
        assert again.cursor == cursor
        assert again.tokens == tokens
        assert again.next_seq == 3
        assert again.records("patrol")[record]["comment"] == "antes de apagar"
        [result] = again.sync()
        assert (result.change_id, result.status, result.version) == (
            uuid.UUID(queued[0].change_id),
            Status.applied,
            2,
        )
        assert again.pull() == 0  # the cursor went on from where it was


def test_a_state_file_of_another_device_is_refused(
    world: World, rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    tablet(world, ranger, tmp_path / "a.db").close()
    with pytest.raises(ValueError, match="holds the state of device"):
        DeviceClient(world.client, tmp_path / "a.db", device_id=uuid.uuid4())
    with pytest.raises(ValueError, match="an identity is device_id, access_token"):
        DeviceClient(world.client, tmp_path / "new.db", device_id=uuid.uuid4())


# ---------------------------------------------------------------- retries


def test_failed_and_lost_pushes_are_retried_and_each_change_applies_once(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    record = str(uuid.uuid4())
    # Batch 1 is refused twice, then lost after the app applied it; batch 2 goes through.
    flaky = Flaky(world.client, ["connect", "503", "lost"])
    with tablet(
        world, ranger, tmp_path / "a.db", http=flaky_http(flaky), batch_size=2, max_retries=5
    ) as a:
        a.create("patrol", record, patrol(sector))
        a.update("patrol", record, {"comment": "uno"})
        a.update("patrol", record, {"comment": "dos"})
        sent = [c.change_id for c in a.outbox()]

        results = a.push()

    assert [str(r.change_id) for r in results] == sent
    assert [(r.status, r.version, r.replayed) for r in results] == [
        (Status.applied, 1, True),  # the lost answer, told again
        (Status.applied, 2, True),
        (Status.applied, 3, None),
    ]
    assert [step for _, path, step, _ in flaky.seen] == ["connect", "503", "lost", "ok", "ok"]
    bodies = [body for body, _ in flaky.pushes]
    assert [c["change_id"] for c in bodies[0]["changes"]] == sent[:2]
    assert bodies[0] == bodies[1]  # the same batch, byte for byte the same content
    assert [(v, change) for v, _, change in versions(world.engine, record)] == list(
        zip([1, 2, 3], sent, strict=True)
    )


def test_a_push_that_runs_out_of_retries_keeps_its_changes_for_later(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    record = str(uuid.uuid4())
    flaky = Flaky(world.client, ["lost", "connect", "connect"])
    with tablet(world, ranger, tmp_path / "a.db", http=flaky_http(flaky), max_retries=2) as a:
        a.create("patrol", record, patrol(sector, comment="x"))
        queued = a.outbox()
        with pytest.raises(Unreachable):
            a.push()
        assert a.outbox() == queued  # applied on the server, but the tablet never heard

        # A pull shows the tablet its own change; the queued change stays on top.
        a.pull()
        assert a.record("patrol", record).version == 1  # type: ignore[union-attr]
        a.update("patrol", record, {"comment": "y"})
        [first, second] = a.push()

    assert (first.status, first.version, first.replayed) == (Status.applied, 1, True)
    assert (second.status, second.version, second.replayed) == (Status.applied, 2, None)
    assert [v for v, _, _ in versions(world.engine, record)] == [1, 2]


def test_a_pull_retries_and_resumes_from_the_last_stored_page(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    with tablet(world, ranger, tmp_path / "w.db") as writer:
        for _ in range(5):
            writer.create("patrol", uuid.uuid4(), patrol(sector))
        writer.push()
    flaky = Flaky(world.client)
    with tablet(
        world, ranger, tmp_path / "r.db", http=flaky_http(flaky), pull_limit=2, max_retries=0
    ) as reader:
        flaky.script = ["ok", "ok", "connect"]  # the third page never arrives
        with pytest.raises(Unreachable):
            reader.pull()
        assert len(reader.records("patrol")) + len(reader.records("sector")) == 4
        flaky.script = ["503"]
        reader.max_retries = 1
        reader.pull()
        assert len(reader.records("patrol")) == 5
    pulls = [step for method, _, step, _ in flaky.seen if method == "GET"]
    # Six records in pages of two: a full third page says has_more, so a fourth (empty)
    # page ends the pull.
    assert pulls == ["ok", "ok", "connect", "503", "ok", "ok"]


# ---------------------------------------------------------------- tokens


def test_an_expired_access_token_is_refreshed_once_and_the_new_pair_stored(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    device = world.device(ranger)
    claims = security.decode_access_token(device.tokens["access_token"], world.settings)
    expired = security.issue_access_token(
        user_id=claims.user_id,
        family_id=claims.family_id,
        device_id=claims.device_id,
        now=utcnow() - timedelta(hours=2),
        settings=world.settings,
    )
    path = tmp_path / "a.db"
    with DeviceClient(
        world.client,
        path,
        device_id=device.tokens["device_id"],
        access_token=expired,
        refresh_token=device.tokens["refresh_token"],
        backoff=0,
    ) as a:
        a.create("patrol", uuid.uuid4(), patrol(sector))
        assert [r.status for r in a.push()] == [Status.applied]
        rotated = a.tokens
    assert rotated["refresh_token"] != device.tokens["refresh_token"]
    assert rotated["access_token"] != expired
    # Stored: a restarted app uses the new pair (the old refresh token is dead).
    with DeviceClient(world.client, path, backoff=0) as again:
        assert again.tokens == rotated
        again.pull()


def test_a_revoked_device_is_told_so_and_keeps_its_outbox(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    with tablet(world, ranger, tmp_path / "a.db") as a:
        a.create("patrol", uuid.uuid4(), patrol(sector))
        answer = world.admin.post(f"/devices/{a.device_id}/revoke")
        assert answer.status_code in (200, 204), answer.text
        with pytest.raises(AuthFailed) as failure:
            a.push()
        assert failure.value.code == "device_revoked"
        assert len(a.outbox()) == 1


# ---------------------------------------------------------------- the local view


def test_pending_edits_stay_on_top_of_a_pulled_older_server_state(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    rosa, juan = rangers
    record, doomed = str(uuid.uuid4()), str(uuid.uuid4())
    with tablet(world, rosa, tmp_path / "a.db") as a, tablet(world, juan, tmp_path / "b.db") as b:
        a.create("patrol", record, patrol(sector, comment="c1", transport="moto"))
        a.create("patrol", doomed, patrol(sector))
        a.sync()
        b.sync()
        # a edits offline; meanwhile b changes the record on the server.
        a.update("patrol", record, {"comment": "mine"})
        a.delete("patrol", doomed)
        b.update("patrol", record, {"objective": "theirs"})
        b.update("patrol", doomed, {"comment": "still here"})
        b.sync()

        a.pull()  # the server's state, which knows nothing of a's edits

        local = a.record("patrol", record)
        assert local is not None
        assert local.version == 2  # the new base
        assert local.base_fields is not None
        assert local.base_fields["comment"] == "c1"
        assert fields_of(a.records("patrol"), record) == {
            "objective": "theirs",  # the server's
            "comment": "mine",  # still the tablet's own, pending
            "transport": "moto",
        }
        assert doomed not in a.records("patrol")  # the pending delete stays on top
        assert [c.base_version for c in a.outbox()] == [1, 1]  # the conflict tags hold

        statuses = [r.status for r in a.sync()]
        assert statuses == [Status.merged, Status.merged]
        b.sync()
        assert a.records("patrol") == b.records("patrol")
        assert set(a.records("patrol")) == {record}


def test_a_rejected_change_leaves_the_outbox_and_the_view_returns_to_the_server(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    record, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    with tablet(world, ranger, tmp_path / "a.db") as a:
        a.create("patrol", record, patrol(sector))
        a.sync()
        a.update("patrol", record, {"status": "approved"})  # only a review approves
        a.create("patrol", stranger, patrol({"id": str(uuid.uuid4())}))  # not their sector
        assert a.records("patrol")[record]["status"] == "approved"
        results = a.push()
        assert [r.status for r in results] == [Status.rejected, Status.rejected]
        assert results[0].errors is not None
        assert results[0].errors[0].code == "review_status"
        assert a.outbox() == []
        assert a.records("patrol")[record]["status"] == "draft"
        assert stranger not in a.records("patrol")
        assert a.record("patrol", stranger) is None


def test_a_cursor_reset_pushes_what_the_tablet_holds_and_pulls_everything_again(
    world: World, sector: dict[str, Any], rangers: tuple[Caller, Caller], tmp_path: Path
) -> None:
    ranger, _ = rangers
    record = str(uuid.uuid4())
    with tablet(world, ranger, tmp_path / "a.db") as a:
        a.create("patrol", record, patrol(sector))
        a.sync()
        a.update("patrol", record, {"comment": "antes del respaldo"})
        old_cursor = a.cursor
        # The database is restored into another history: cursors of the old one die.
        with world.engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE sync_clock SET epoch = :epoch"),
                {"epoch": _db_id(world.engine, str(uuid.uuid4()))},
            )
        assert a.pull() > 0
        assert a.cursor != old_cursor
        assert a.outbox() == []
        assert a.records("patrol") == server_view(world, ranger, tmp_path / "s.db")
        assert a.records("patrol")[record]["comment"] == "antes del respaldo"


def test_an_oversized_batch_is_split(
    engine: Engine, world: World, sector: dict[str, Any], tmp_path: Path
) -> None:
    small = make_settings(str(engine.url.render_as_string(hide_password=False)), max_batch=2)
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    with TestClient(create_app(small, engine), base_url=BASE_URL) as http:
        device = world.device(ranger)
        with DeviceClient(
            http,
            tmp_path / "a.db",
            device_id=device.tokens["device_id"],
            access_token=device.tokens["access_token"],
            refresh_token=device.tokens["refresh_token"],
            batch_size=5,
            backoff=0,
        ) as a:
            for _ in range(5):
                a.create("patrol", uuid.uuid4(), patrol(sector))
            results = a.push()
    assert [r.status for r in results] == [Status.applied] * 5
