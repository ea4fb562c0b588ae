"""Push over HTTP: every rule of the contract (docs: /work/shared/PROTOCOL.md, "Push")."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from schemas import Conflict, RecordVersion, SyncChange
from schemas.sync import Change
from sync.engine.prepare import document_of
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import Caller, World, all_at_once, assert_problem, make_settings

RECORDED_AT = "2026-11-02T09:31:07-05:00"
STARTS_AT = "2026-11-02T09:00:00-05:00"


# ---------------------------------------------------------------- helpers


class Tablet:
    """A device that numbers its own changes, as the app does."""

    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.seq = 0

    @property
    def device_id(self) -> str:
        device_id: str = self.caller.tokens["device_id"]
        return device_id

    def change(
        self,
        entity: str,
        record_id: str,
        op: str,
        fields: dict[str, Any] | None = None,
        *,
        base_version: int | None = None,
        seq: int | None = None,
    ) -> dict[str, Any]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return {
            "change_id": str(uuid.uuid4()),
            "seq": seq,
            "entity": entity,
            "id": record_id,
            "op": op,
            "base_version": base_version,
            "schema_version": 1,
            "recorded_at": RECORDED_AT,
            "fields": fields or {},
        }

    def body(self, *changes: dict[str, Any], **overrides: Any) -> dict[str, Any]:
        return {
            "protocol": 1,
            "device_id": self.device_id,
            "batch_id": str(uuid.uuid4()),
            "changes": list(changes),
            **overrides,
        }

    def send(self, *changes: dict[str, Any], **overrides: Any) -> httpx.Response:
        answer: httpx.Response = self.caller.post(
            "/sync/push", json=self.body(*changes, **overrides)
        )
        return answer

    def push(self, *changes: dict[str, Any]) -> dict[str, Any]:
        answer = self.send(*changes)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        assert len(result["results"]) == len(changes)
        return result

    def one(self, change: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.push(change)["results"][0]
        assert result["change_id"] == change["change_id"]
        return result

    def pull_all(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every record the device holds after pulling from no cursor, by (entity, id)."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            params = {"cursor": cursor} if cursor else {}
            answer = self.caller.get("/sync/pull", params=params)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            for item in page["changes"]:
                seen[(item["entity"], item["id"])] = item
            cursor = page["cursor"]
            if not page["has_more"]:
                return seen


def new_id() -> str:
    return str(uuid.uuid4())


def patrol_fields(sector_id: str, **more: Any) -> dict[str, Any]:
    return {"sector_id": sector_id, "objective": "Río Mayo", **more}


def session_fields(community_id: str) -> dict[str, Any]:
    return {"program": "coffee_production", "community_id": community_id, "starts_at": STARTS_AT}


def person_fields(community_id: str) -> dict[str, Any]:
    return {
        "given_names": "Rosa",
        "paternal_surname": "Huamán",
        "sex": "female",
        "community_id": community_id,
    }


def segment_fields(patrol_id: str) -> dict[str, Any]:
    return {
        "patrol_id": patrol_id,
        "points": [
            {"t": "2026-11-02T09:40:00-05:00", "lat": -5.91, "lon": -77.31, "accuracy_m": 4.0},
            {"t": "2026-11-02T09:41:00-05:00", "lat": -5.92, "lon": -77.32},
        ],
    }


def versions(engine: Engine, entity: str, record_id: str) -> list[RecordVersion]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(RecordVersion)
                .where(
                    RecordVersion.entity == entity,
                    RecordVersion.record_id == uuid.UUID(record_id),
                )
                .order_by(col(RecordVersion.version))
            )
        )


def stored_change(engine: Engine, change_id: str) -> SyncChange:
    with Session(engine) as session:
        row = session.get(SyncChange, uuid.UUID(change_id))
        assert row is not None
        return row


def conflict(engine: Engine, conflict_id: str) -> Conflict:
    with Session(engine) as session:
        row = session.get(Conflict, uuid.UUID(conflict_id))
        assert row is not None
        return row


def rejected_by_id(world: World) -> dict[str, dict[str, Any]]:
    answer = world.admin.get("/sync/rejected")
    assert answer.status_code == 200, answer.text
    return {item["change_id"]: item for item in answer.json()["items"]}


def set_patrol_status(engine: Engine, patrol_id: str, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE patrol SET status = :status WHERE id = :id"),
            {"status": status, "id": _db_id(engine, patrol_id)},
        )


def _db_id(engine: Engine, record_id: str) -> Any:
    # SQLAlchemy's Uuid type: native on PostgreSQL, 32 hex characters on SQLite.
    value = uuid.UUID(record_id)
    return value if engine.dialect.name == "postgresql" else value.hex


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def sector(world: World) -> dict[str, Any]:
    return world.sector("AM-01")


@pytest.fixture
def ranger(world: World, sector: dict[str, Any]) -> Caller:
    return world.user("ranger", sector_ids=[sector["id"]])


@pytest.fixture
def tablet(world: World, ranger: Caller) -> Tablet:
    return Tablet(world.device(ranger, label="Tablet A"))


@pytest.fixture
def community(world: World, sector: dict[str, Any]) -> dict[str, Any]:
    return world.community(sector["id"], "Nuevo Horizonte")


@pytest.fixture
def worker(world: World, community: dict[str, Any]) -> Caller:
    return world.user("extension_worker", community_ids=[community["id"]])


@pytest.fixture
def worker_tablet(world: World, worker: Caller) -> Tablet:
    return Tablet(world.device(worker, label="Extension tablet"))


@pytest.fixture
def patrol(tablet: Tablet, sector: dict[str, Any]) -> str:
    """A patrol at version 1, made by ``tablet``."""
    patrol_id = new_id()
    made = tablet.one(tablet.change("patrol", patrol_id, "create", patrol_fields(sector["id"])))
    assert made["status"] == "applied", made
    return patrol_id


# ---------------------------------------------------------------- replay


def test_a_batch_sent_again_gets_the_same_results_marked_replayed(
    tablet: Tablet, sector: dict[str, Any]
) -> None:
    patrol_id = new_id()
    body = tablet.body(
        tablet.change("patrol", patrol_id, "create", patrol_fields(sector["id"])),
        tablet.change("patrol", patrol_id, "update", {"comment": "lluvia"}, base_version=1),
    )

    first = tablet.caller.post("/sync/push", json=body).json()
    again = tablet.caller.post("/sync/push", json=body).json()

    assert [r["status"] for r in first["results"]] == ["applied", "applied"]
    assert all(r["replayed"] is None for r in first["results"]), first
    assert again["results"] == [{**r, "replayed": True} for r in first["results"]]
    assert again["last_seq"] == first["last_seq"] == 2


def test_a_change_stored_before_the_hash_form_changed_is_still_replayed(
    engine: Engine, tablet: Tablet, sector: dict[str, Any]
) -> None:
    """Changes kept by an older server carry the SHA-256 of the older canonical form
    (the standard library's JSON, ASCII-escaped): a tablet sending one again after the
    upgrade gets its answer, not ``change_id_reused``."""
    change = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"], comment="río"))
    body = tablet.body(change)
    first = tablet.caller.post("/sync/push", json=body).json()["results"][0]
    with Session(engine) as session:
        stored = session.get(SyncChange, uuid.UUID(change["change_id"]))
        assert stored is not None
        # The change's JSON form, which an older server kept and hashed (this one keeps
        # no copy of a change applied as sent).
        sent = document_of(Change.model_validate(change))
        legacy = json.dumps(sent, sort_keys=True, separators=(",", ":"))
        stored.content_hash = hashlib.sha256(legacy.encode()).hexdigest()
        session.add(stored)
        session.commit()

    again = tablet.caller.post("/sync/push", json=body).json()["results"][0]
    edited = {**change, "fields": {**change["fields"], "comment": "rio"}}
    reused = tablet.caller.post("/sync/push", json=tablet.body(edited)).json()["results"][0]

    assert again == {**first, "replayed": True}
    assert reused["errors"][0]["code"] == "change_id_reused"


def test_a_replayed_batch_changes_nothing(
    engine: Engine, tablet: Tablet, sector: dict[str, Any]
) -> None:
    patrol_id = new_id()
    body = tablet.body(tablet.change("patrol", patrol_id, "create", patrol_fields(sector["id"])))
    tablet.caller.post("/sync/push", json=body)
    cursor = tablet.caller.get("/sync/pull").json()["cursor"]

    for _ in range(2):
        assert tablet.caller.post("/sync/push", json=body).json()["results"][0]["replayed"]

    assert [v.version for v in versions(engine, "patrol", patrol_id)] == [1]
    after = tablet.caller.get("/sync/pull", params={"cursor": cursor}).json()
    assert after["changes"] == []
    held = tablet.pull_all()[("patrol", patrol_id)]
    assert held["version"] == 1


def test_a_change_id_sent_again_with_other_content_is_rejected_as_reused(
    engine: Engine, world: World, tablet: Tablet, patrol: str
) -> None:
    original = tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=1)
    assert tablet.one(original)["status"] == "applied"

    reused = {**original, "fields": {"comment": "sol"}}
    result = tablet.one(reused)

    assert result["status"] == "rejected"
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("change_id", "change_id_reused")
    ]
    assert result.get("replayed") is None
    assert [v.version for v in versions(engine, "patrol", patrol)] == [1, 2]
    assert tablet.pull_all()[("patrol", patrol)]["fields"]["comment"] == "lluvia"
    # Kept, with its reason and its content, where an admin can see it.
    kept = [
        r
        for r in world.admin.get("/sync/rejected").json()["items"]
        if r["change_id"] == original["change_id"]
    ]
    assert [(r["errors"][0]["code"], r["change"]["fields"]) for r in kept] == [
        ("change_id_reused", {"comment": "sol"})
    ]


def test_a_change_id_of_another_device_is_rejected_as_reused(
    world: World, ranger: Caller, tablet: Tablet, patrol: str
) -> None:
    original = tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=1)
    assert tablet.one(original)["status"] == "applied"
    other = Tablet(world.device(ranger, label="Tablet B"))

    result = other.one({**original, "seq": 1})

    assert result["status"] == "rejected"
    assert result["errors"][0]["code"] == "change_id_reused"


def test_the_same_batch_sent_six_times_at_once_is_applied_exactly_once(
    engine: Engine, tablet: Tablet, sector: dict[str, Any]
) -> None:
    patrol_id = new_id()
    body = tablet.body(tablet.change("patrol", patrol_id, "create", patrol_fields(sector["id"])))

    answers = all_at_once(
        tablet.caller.client,
        lambda client: client.post("/sync/push", json=body, headers=tablet.caller.headers),
        times=6,
    )

    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    results = [a.json()["results"][0] for a in answers]
    originals = [r for r in results if not r.get("replayed")]
    assert len(originals) == 1, results
    assert all(r["status"] == "applied" and r["version"] == 1 for r in results), results
    assert [v.version for v in versions(engine, "patrol", patrol_id)] == [1]
    assert tablet.pull_all()[("patrol", patrol_id)]["version"] == 1


def test_a_change_sent_twice_in_one_batch_is_applied_once(
    engine: Engine, tablet: Tablet, sector: dict[str, Any]
) -> None:
    patrol_id = new_id()
    create = tablet.change("patrol", patrol_id, "create", patrol_fields(sector["id"]))

    first, second = tablet.push(create, create)["results"]

    assert (first["status"], first["replayed"]) == ("applied", None)
    assert second == {**first, "replayed": True}
    assert [v.version for v in versions(engine, "patrol", patrol_id)] == [1]


# ---------------------------------------------------------------- order


def test_results_come_in_the_order_sent_and_changes_apply_in_seq_order(
    tablet: Tablet, sector: dict[str, Any]
) -> None:
    patrol_id = new_id()
    create = tablet.change("patrol", patrol_id, "create", patrol_fields(sector["id"]), seq=1)
    update = tablet.change(
        "patrol", patrol_id, "update", {"comment": "lluvia"}, base_version=1, seq=2
    )

    answer = tablet.push(update, create)

    assert [r["change_id"] for r in answer["results"]] == [
        update["change_id"],
        create["change_id"],
    ]
    assert [(r["status"], r["version"]) for r in answer["results"]] == [
        ("applied", 2),
        ("applied", 1),
    ]
    assert answer["last_seq"] == 2
    assert tablet.pull_all()[("patrol", patrol_id)]["fields"]["comment"] == "lluvia"


# ---------------------------------------------------------------- rejections


BAD_PATROL_CHANGES: list[Any] = [
    pytest.param({"entity": "canoe"}, ("entity", "unknown_entity"), id="unknown-entity"),
    pytest.param({"entity": "sector"}, ("entity", "read_only_entity"), id="reference-entity"),
    pytest.param({"op": "upsert"}, ("op", "unknown_op"), id="unknown-op"),
    pytest.param(
        {"fields": {"patrol_type": "helicopter"}},
        ("fields.patrol_type", "enum"),
        id="invalid-value",
    ),
    pytest.param(
        {"fields": {"started_at": "2026-11-02T09:00:00"}},
        ("fields.started_at", "value_error"),
        id="timestamp-without-offset",
    ),
    pytest.param({"fields": {"colour": "green"}}, ("fields.colour", "unknown_field"), id="unknown"),
    pytest.param(
        {"fields": {"version": 7}}, ("fields.version", "server_owned_field"), id="version"
    ),
    pytest.param(
        {"fields": {"reviewed_by": "00000000-0000-0000-0000-000000000001"}},
        ("fields.reviewed_by", "server_owned_field"),
        id="reviewed-by",
    ),
    pytest.param(
        {"fields": {"status": "approved"}},
        ("fields.status", "review_status"),
        id="device-approves-its-own-patrol",
    ),
    pytest.param(
        {"fields": {"sector_id": "other"}},
        ("fields.sector_id", "out_of_scope"),
        id="sector-out-of-scope",
    ),
    pytest.param(
        {"op": "update", "base_version": None},
        ("base_version", "base_version_required"),
        id="update-without-base",
    ),
]


@pytest.mark.parametrize(("bad", "expected"), BAD_PATROL_CHANGES)
def test_one_bad_change_is_rejected_with_its_reason_and_the_rest_of_the_batch_applies(
    world: World,
    tablet: Tablet,
    sector: dict[str, Any],
    patrol: str,
    bad: dict[str, Any],
    expected: tuple[str, str],
) -> None:
    fields = patrol_fields(sector["id"])
    bad = dict(bad)  # the parameter is shared by both backends' runs
    if bad.get("fields", {}).get("sector_id") == "other":
        bad = {"fields": {"sector_id": world.sector("AM-99")["id"]}}
    target = patrol if bad.get("op") == "update" else new_id()
    wrong = {
        **tablet.change("patrol", target, "create", {**fields, **bad.pop("fields", {})}),
        **bad,
    }
    before = tablet.change("patrol", new_id(), "create", fields)
    after = tablet.change("patrol", patrol, "update", {"comment": "sin novedad"}, base_version=1)

    results = tablet.push(before, wrong, after)["results"]

    assert [r["status"] for r in results] == ["applied", "rejected", "applied"], results
    errors = results[1]["errors"]
    assert all(set(e) == {"field", "code", "message"} and e["message"] for e in errors), errors
    assert (errors[0]["field"], errors[0]["code"]) == expected, errors
    listed = rejected_by_id(world)[wrong["change_id"]]
    assert listed["errors"] == errors
    assert listed["device_id"] == tablet.device_id
    assert listed["change"]["fields"] == wrong["fields"]
    held = tablet.pull_all()
    assert ("patrol", before["id"]) in held
    assert held[("patrol", patrol)]["fields"]["comment"] == "sin novedad"
    if wrong["op"] == "create":
        assert ("patrol", target) not in held


def test_every_server_owned_field_sent_is_named(tablet: Tablet, sector: dict[str, Any]) -> None:
    fields = {**patrol_fields(sector["id"]), "version": 3, "device_id": tablet.device_id}

    result = tablet.one(tablet.change("patrol", new_id(), "create", fields))

    assert result["status"] == "rejected"
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        ("fields.device_id", "server_owned_field"),
        ("fields.version", "server_owned_field"),
    ]


def test_an_extension_worker_cannot_push_a_patrol(
    world: World, worker_tablet: Tablet, sector: dict[str, Any], community: dict[str, Any]
) -> None:
    bad = worker_tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]))
    good = worker_tablet.change("person", new_id(), "create", person_fields(community["id"]))

    results = worker_tablet.push(bad, good)["results"]

    assert [r["status"] for r in results] == ["rejected", "applied"]
    assert results[0]["errors"][0]["code"] == "forbidden_entity"
    assert bad["change_id"] in rejected_by_id(world)


def test_a_ranger_cannot_push_people(
    world: World, tablet: Tablet, community: dict[str, Any]
) -> None:
    result = tablet.one(tablet.change("person", new_id(), "create", person_fields(community["id"])))

    assert result["status"] == "rejected"
    assert result["errors"][0]["code"] == "forbidden_entity"


def test_an_update_of_a_record_in_another_sector_is_rejected(world: World, tablet: Tablet) -> None:
    elsewhere = world.sector("AM-02")
    stranger = Tablet(world.device(world.user("ranger", sector_ids=[elsewhere["id"]])))
    their_patrol = new_id()
    stranger.one(stranger.change("patrol", their_patrol, "create", patrol_fields(elsewhere["id"])))

    result = tablet.one(
        tablet.change("patrol", their_patrol, "update", {"comment": "mine"}, base_version=1)
    )

    assert result["status"] == "rejected"
    assert result["errors"][0]["code"] == "out_of_scope"
    assert stranger.pull_all()[("patrol", their_patrol)]["version"] == 1


def test_the_rejected_changes_are_for_admins_only(
    world: World, ranger: Caller, tablet: Tablet
) -> None:
    assert_problem(ranger.get("/sync/rejected"), 403)
    assert_problem(tablet.caller.get("/sync/rejected"), 403)


# ---------------------------------------------------------------- seq


def test_a_seq_already_used_by_an_earlier_batch_is_rejected(
    world: World, tablet: Tablet, sector: dict[str, Any]
) -> None:
    tablet.push(tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=5))

    again = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=5)
    answer = tablet.push(again)

    result = answer["results"][0]
    assert result["status"] == "rejected"
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("seq", "seq_not_increasing")]
    assert answer["last_seq"] == 5
    assert ("patrol", again["id"]) not in tablet.pull_all()
    assert again["change_id"] in rejected_by_id(world)


def test_a_seq_lower_than_an_earlier_batch_is_rejected_and_the_higher_ones_apply(
    tablet: Tablet, sector: dict[str, Any]
) -> None:
    tablet.push(tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=10))

    lower = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=3)
    higher = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=11)
    answer = tablet.push(lower, higher)

    assert [r["status"] for r in answer["results"]] == ["rejected", "applied"]
    assert answer["results"][0]["errors"][0]["code"] == "seq_not_increasing"
    assert answer["last_seq"] == 11


def test_a_seq_used_twice_in_one_batch_is_rejected_the_second_time(
    tablet: Tablet, sector: dict[str, Any]
) -> None:
    first = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=7)
    second = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=7)

    answer = tablet.push(first, second)

    assert [r["status"] for r in answer["results"]] == ["applied", "rejected"]
    assert answer["results"][1]["errors"][0]["code"] == "seq_not_increasing"
    assert answer["last_seq"] == 7


def test_seqs_are_per_device(world: World, ranger: Caller, sector: dict[str, Any]) -> None:
    one, two = Tablet(world.device(ranger)), Tablet(world.device(ranger))

    first = one.push(one.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=4))
    second = two.push(two.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=4))

    assert first["results"][0]["status"] == second["results"][0]["status"] == "applied"
    assert first["last_seq"] == second["last_seq"] == 4


def test_last_seq_is_the_highest_seq_the_server_holds(
    tablet: Tablet, sector: dict[str, Any]
) -> None:
    answer = tablet.push(
        tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]), seq=8),
        tablet.change("patrol", new_id(), "create", {"sector_id": "nope"}, seq=9),
    )

    assert answer["results"][1]["status"] == "rejected"
    assert answer["last_seq"] == 9
    assert tablet.caller.get("/sync/pull").json()["last_seq"] == 9


# ---------------------------------------------------------------- merge


@pytest.fixture
def other_tablet(world: World, sector: dict[str, Any]) -> Tablet:
    """Another ranger's device, editing the same patrols."""
    return Tablet(world.device(world.user("ranger", sector_ids=[sector["id"]]), label="Tablet B"))


def test_edits_of_disjoint_fields_from_the_same_base_are_merged_keeping_both(
    tablet: Tablet, other_tablet: Tablet, patrol: str
) -> None:
    first = tablet.one(
        tablet.change("patrol", patrol, "update", {"objective": "Quebrada"}, base_version=1)
    )
    second = other_tablet.one(
        other_tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=1)
    )

    assert (first["status"], first["version"]) == ("applied", 2)
    assert (second["status"], second["version"]) == ("merged", 3)
    assert second.get("conflict_id") is None
    fields = other_tablet.pull_all()[("patrol", patrol)]["fields"]
    assert (fields["objective"], fields["comment"]) == ("Quebrada", "lluvia")


def test_a_change_applied_as_sent_is_held_by_its_version_and_the_others_are_kept_as_sent(
    engine: Engine, tablet: Tablet, other_tablet: Tablet, patrol: str
) -> None:
    applied = tablet.change("patrol", patrol, "update", {"objective": "Quebrada"}, base_version=1)
    merged = other_tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=1)
    conflicting = other_tablet.change(
        "patrol", patrol, "update", {"objective": "Laguna"}, base_version=1
    )
    rejected = tablet.change("patrol", patrol, "update", {"rest_minutes": -5}, base_version=2)
    statuses = [
        tablet.one(applied)["status"],
        other_tablet.one(merged)["status"],
        other_tablet.one(conflicting)["status"],
        tablet.one(rejected)["status"],
    ]

    assert statuses == ["applied", "merged", "conflict", "rejected"]

    assert stored_change(engine, applied["change_id"]).change is None
    [version] = [v for v in versions(engine, "patrol", patrol) if v.version == 2]
    assert (str(version.change_id), version.fields["objective"]) == (
        applied["change_id"],
        "Quebrada",
    )
    for kept in (merged, conflicting, rejected):
        held = stored_change(engine, kept["change_id"]).change
        assert held is not None
        assert held["fields"] == kept["fields"]
    # A replay of the change applied is answered all the same.
    assert tablet.one(applied)["replayed"] is True


def test_edits_setting_the_same_field_to_the_same_value_are_merged(
    engine: Engine, tablet: Tablet, other_tablet: Tablet, patrol: str
) -> None:
    tablet.one(tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=1))

    second = other_tablet.one(
        other_tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=1)
    )

    assert second["status"] == "merged"
    assert second["version"] == 2  # nothing new to store
    assert [v.version for v in versions(engine, "patrol", patrol)] == [1, 2]


def test_edits_of_the_same_field_to_different_values_conflict_and_the_server_keeps_the_first(
    engine: Engine, tablet: Tablet, other_tablet: Tablet, patrol: str
) -> None:
    tablet.one(tablet.change("patrol", patrol, "update", {"objective": "Quebrada"}, base_version=1))

    second = other_tablet.one(
        other_tablet.change(
            "patrol",
            patrol,
            "update",
            {"objective": "Laguna", "comment": "lluvia", "rest_minutes": 20},
            base_version=1,
        )
    )

    assert second["status"] == "conflict"
    assert second["conflict_id"]
    assert second["version"] == 3
    held = tablet.pull_all()[("patrol", patrol)]
    assert held["version"] == 3
    assert held["fields"]["objective"] == "Quebrada"
    assert (held["fields"]["comment"], held["fields"]["rest_minutes"]) == ("lluvia", 20)
    opened = conflict(engine, second["conflict_id"])
    assert opened.status == "open"
    assert opened.kind == "fields"
    assert opened.fields == {"objective": {"server": "Quebrada", "device": "Laguna"}}
    assert (opened.base_version, opened.server_version) == (1, 3)
    assert str(opened.device_id) == other_tablet.device_id
    assert str(opened.change_id) == second["change_id"]


def test_two_devices_of_the_same_ranger_conflict_like_two_rangers(
    world: World, ranger: Caller, tablet: Tablet, patrol: str
) -> None:
    second_tablet = Tablet(world.device(ranger, label="Tablet B"))
    tablet.one(tablet.change("patrol", patrol, "update", {"objective": "Quebrada"}, base_version=1))

    second = second_tablet.one(
        second_tablet.change(
            "patrol", patrol, "update", {"objective": "Laguna", "comment": "x"}, base_version=1
        )
    )

    assert second["status"] == "conflict"
    fields = tablet.pull_all()[("patrol", patrol)]["fields"]
    assert (fields["objective"], fields["comment"]) == ("Quebrada", "x")


def test_a_conflict_on_every_field_sent_stores_no_new_version(
    engine: Engine, tablet: Tablet, other_tablet: Tablet, patrol: str
) -> None:
    tablet.one(tablet.change("patrol", patrol, "update", {"objective": "Quebrada"}, base_version=1))

    second = other_tablet.one(
        other_tablet.change("patrol", patrol, "update", {"objective": "Laguna"}, base_version=1)
    )

    assert (second["status"], second["version"]) == ("conflict", 2)
    assert [v.version for v in versions(engine, "patrol", patrol)] == [1, 2]


def test_a_device_never_conflicts_with_its_own_earlier_changes(
    engine: Engine, tablet: Tablet, patrol: str
) -> None:
    tablet.one(tablet.change("patrol", patrol, "update", {"objective": "Quebrada"}, base_version=1))
    tablet.one(tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=1))

    third = tablet.one(
        tablet.change("patrol", patrol, "update", {"objective": "Laguna"}, base_version=1)
    )

    assert (third["status"], third["version"]) == ("applied", 4)
    assert tablet.pull_all()[("patrol", patrol)]["fields"]["objective"] == "Laguna"
    with Session(engine) as session:
        assert session.exec(select(Conflict)).all() == []


def test_a_stale_base_that_is_stale_also_by_others_merges_but_own_fields_never_conflict(
    tablet: Tablet, other_tablet: Tablet, patrol: str
) -> None:
    tablet.one(tablet.change("patrol", patrol, "update", {"objective": "Quebrada"}, base_version=1))
    other_tablet.one(
        other_tablet.change("patrol", patrol, "update", {"comment": "lluvia"}, base_version=2)
    )

    again = tablet.one(
        tablet.change("patrol", patrol, "update", {"objective": "Laguna"}, base_version=1)
    )

    assert again["status"] == "merged"
    fields = tablet.pull_all()[("patrol", patrol)]["fields"]
    assert (fields["objective"], fields["comment"]) == ("Laguna", "lluvia")


def test_a_base_version_the_server_never_had_is_rejected(tablet: Tablet, patrol: str) -> None:
    result = tablet.one(tablet.change("patrol", patrol, "update", {"comment": "x"}, base_version=9))

    assert result["status"] == "rejected"
    assert result["errors"][0]["code"] == "unknown_base_version"


# ---------------------------------------------------------------- deferred


def test_an_attendance_before_its_session_and_person_is_deferred(
    worker_tablet: Tablet, community: dict[str, Any]
) -> None:
    attendance = worker_tablet.change(
        "attendance", new_id(), "create", {"session_id": new_id(), "person_id": new_id()}
    )

    result = worker_tablet.one(attendance)

    assert result["status"] == "deferred"
    assert result.get("version") is None
    assert ("attendance", attendance["id"]) not in worker_tablet.pull_all()


def test_a_deferred_attendance_is_applied_by_itself_when_its_session_and_person_arrive(
    world: World, engine: Engine, worker_tablet: Tablet, community: dict[str, Any]
) -> None:
    session_id, person_id, attendance_id = new_id(), new_id(), new_id()
    attendance = worker_tablet.change(
        "attendance", attendance_id, "create", {"session_id": session_id, "person_id": person_id}
    )
    assert worker_tablet.one(attendance)["status"] == "deferred"

    worker_tablet.push(
        worker_tablet.change(
            "training_session", session_id, "create", session_fields(community["id"])
        )
    )
    assert (
        "attendance",
        attendance_id,
    ) not in worker_tablet.pull_all()  # still waits for the person
    worker_tablet.push(
        worker_tablet.change("person", person_id, "create", person_fields(community["id"]))
    )

    held = worker_tablet.pull_all()[("attendance", attendance_id)]
    assert held["op"] == "upsert"
    assert held["version"] == 1
    assert (held["fields"]["session_id"], held["fields"]["person_id"]) == (session_id, person_id)
    assert held["fields"]["community_id"] == community["id"]
    assert stored_change(engine, attendance["change_id"]).status == "applied"
    assert attendance["change_id"] not in rejected_by_id(world)


def test_a_deferred_attendance_wakes_when_another_device_sends_its_session_and_person(
    world: World,
    engine: Engine,
    worker: Caller,
    worker_tablet: Tablet,
    community: dict[str, Any],
) -> None:
    colleague = world.user("extension_worker", community_ids=[community["id"]])
    other = Tablet(world.device(colleague, label="Colleague's tablet"))
    session_id, person_id, attendance_id = new_id(), new_id(), new_id()
    attendance = worker_tablet.change(
        "attendance", attendance_id, "create", {"session_id": session_id, "person_id": person_id}
    )
    assert worker_tablet.one(attendance)["status"] == "deferred"

    results = other.push(
        other.change("training_session", session_id, "create", session_fields(community["id"])),
        other.change("person", person_id, "create", person_fields(community["id"])),
    )["results"]

    assert [r["status"] for r in results] == ["applied", "applied"]
    held = other.pull_all()[("attendance", attendance_id)]
    assert held["op"] == "upsert"
    assert held["fields"]["created_by"] == str(worker.user_id)
    assert held["fields"]["device_id"] == worker_tablet.device_id
    assert stored_change(engine, attendance["change_id"]).status == "applied"


def test_a_deferred_change_sent_again_is_replayed_not_applied_twice(
    engine: Engine, worker_tablet: Tablet, community: dict[str, Any]
) -> None:
    session_id, person_id, attendance_id = new_id(), new_id(), new_id()
    body = worker_tablet.body(
        worker_tablet.change(
            "attendance",
            attendance_id,
            "create",
            {"session_id": session_id, "person_id": person_id},
        )
    )
    worker_tablet.caller.post("/sync/push", json=body)
    worker_tablet.push(
        worker_tablet.change(
            "training_session", session_id, "create", session_fields(community["id"])
        ),
        worker_tablet.change("person", person_id, "create", person_fields(community["id"])),
    )

    again = worker_tablet.caller.post("/sync/push", json=body).json()["results"][0]

    assert again["replayed"] is True
    assert [v.version for v in versions(engine, "attendance", attendance_id)] == [1]


def test_a_track_segment_before_its_patrol_is_deferred_then_applied(
    tablet: Tablet, sector: dict[str, Any]
) -> None:
    patrol_id, segment_id = new_id(), new_id()
    segment = tablet.change("track_segment", segment_id, "create", segment_fields(patrol_id))

    assert tablet.one(segment)["status"] == "deferred"
    tablet.push(tablet.change("patrol", patrol_id, "create", patrol_fields(sector["id"])))

    held = tablet.pull_all()[("track_segment", segment_id)]
    assert held["op"] == "upsert"
    assert held["fields"]["patrol_id"] == patrol_id
    assert held["fields"]["sector_id"] == sector["id"]
    assert held["fields"]["point_count"] == 2


def test_a_deferred_segment_whose_patrol_arrives_out_of_scope_is_rejected_later(
    world: World, engine: Engine, tablet: Tablet
) -> None:
    elsewhere = world.sector("AM-02")
    stranger = Tablet(world.device(world.user("ranger", sector_ids=[elsewhere["id"]])))
    patrol_id, segment_id = new_id(), new_id()
    segment = tablet.change("track_segment", segment_id, "create", segment_fields(patrol_id))
    assert tablet.one(segment)["status"] == "deferred"

    stranger.push(stranger.change("patrol", patrol_id, "create", patrol_fields(elsewhere["id"])))

    assert stored_change(engine, segment["change_id"]).status == "rejected"
    listed = rejected_by_id(world)[segment["change_id"]]
    assert listed["errors"][0]["code"] == "out_of_scope"
    assert ("track_segment", segment_id) not in stranger.pull_all()


# ---------------------------------------------------------------- attendance uniqueness


def _session_and_person(tablet: Tablet, community: dict[str, Any]) -> tuple[str, str]:
    session_id, person_id = new_id(), new_id()
    tablet.push(
        tablet.change("training_session", session_id, "create", session_fields(community["id"])),
        tablet.change("person", person_id, "create", person_fields(community["id"])),
    )
    return session_id, person_id


def test_the_same_person_at_the_same_session_from_two_devices_makes_one_attendance(
    world: World, worker: Caller, worker_tablet: Tablet, community: dict[str, Any]
) -> None:
    other = Tablet(world.device(worker, label="Second tablet"))
    session_id, person_id = _session_and_person(worker_tablet, community)
    first_id, second_id = new_id(), new_id()
    fields = {"session_id": session_id, "person_id": person_id}

    first = worker_tablet.one(worker_tablet.change("attendance", first_id, "create", fields))
    second = other.one(other.change("attendance", second_id, "create", fields))

    assert first["status"] == "applied"
    assert second["status"] == "merged"
    assert second["merged_into"] == first_id
    held = other.pull_all()
    assert held[("attendance", first_id)]["op"] == "upsert"
    assert held[("attendance", second_id)]["op"] == "delete"
    live = [key for key, item in held.items() if key[0] == "attendance" and item["op"] == "upsert"]
    assert live == [("attendance", first_id)]


def test_the_same_attendance_from_two_devices_at_once_makes_one_attendance(
    world: World, worker: Caller, worker_tablet: Tablet, community: dict[str, Any]
) -> None:
    other = Tablet(world.device(worker, label="Second tablet"))
    session_id, person_id = _session_and_person(worker_tablet, community)
    fields = {"session_id": session_id, "person_id": person_id}
    bodies = [
        (t, t.body(t.change("attendance", new_id(), "create", fields)))
        for t in (worker_tablet, other)
    ]
    record_of = {b["changes"][0]["change_id"]: b["changes"][0]["id"] for _, b in bodies}
    turn = iter(bodies)

    def send(client: TestClient) -> httpx.Response:
        who, body = next(turn)
        answer: httpx.Response = client.post("/sync/push", json=body, headers=who.caller.headers)
        return answer

    answers = all_at_once(worker_tablet.caller.client, send, times=2)

    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    applied, merged = sorted((a.json()["results"][0] for a in answers), key=lambda r: r["status"])
    assert (applied["status"], merged["status"]) == ("applied", "merged")
    assert merged["merged_into"] == record_of[applied["change_id"]]
    live = [
        key
        for key, item in other.pull_all().items()
        if key[0] == "attendance" and item["op"] == "upsert"
    ]
    assert len(live) == 1


# ---------------------------------------------------------------- append-only


@pytest.mark.parametrize("op", ["update", "delete"])
def test_a_track_segment_is_append_only(
    engine: Engine, tablet: Tablet, patrol: str, op: str
) -> None:
    segment_id = new_id()
    tablet.one(tablet.change("track_segment", segment_id, "create", segment_fields(patrol)))
    fields = {"points": segment_fields(patrol)["points"][:1]} if op == "update" else {}

    result = tablet.one(tablet.change("track_segment", segment_id, op, fields, base_version=1))

    assert result["status"] == "rejected"
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("op", "append_only")]
    assert [v.version for v in versions(engine, "track_segment", segment_id)] == [1]


def test_a_track_segment_created_again_with_the_same_points_is_applied_once(
    engine: Engine, tablet: Tablet, patrol: str
) -> None:
    segment_id = new_id()
    tablet.one(tablet.change("track_segment", segment_id, "create", segment_fields(patrol)))

    again = tablet.one(tablet.change("track_segment", segment_id, "create", segment_fields(patrol)))
    other = tablet.one(
        tablet.change(
            "track_segment",
            segment_id,
            "create",
            {**segment_fields(patrol), "points": segment_fields(patrol)["points"][:1]},
        )
    )

    assert (again["status"], again["version"]) == ("applied", 1)
    assert other["status"] == "rejected"
    assert other["errors"][0]["code"] == "id_taken"
    assert [v.version for v in versions(engine, "track_segment", segment_id)] == [1]


# ---------------------------------------------------------------- locked and deleted


def test_an_update_of_an_approved_patrol_is_a_conflict_and_changes_nothing(
    engine: Engine, tablet: Tablet, patrol: str
) -> None:
    set_patrol_status(engine, patrol, "approved")

    result = tablet.one(
        tablet.change("patrol", patrol, "update", {"comment": "editado"}, base_version=1)
    )

    assert result["status"] == "conflict"
    assert result["version"] == 1
    assert result["conflict_id"]
    opened = conflict(engine, result["conflict_id"])
    assert opened.kind == "locked"
    assert opened.fields == {"comment": {"server": None, "device": "editado"}}
    assert [v.version for v in versions(engine, "patrol", patrol)] == [1]
    assert tablet.pull_all()[("patrol", patrol)]["fields"]["comment"] is None


def test_a_delete_of_an_approved_patrol_is_a_conflict_and_deletes_nothing(
    engine: Engine, tablet: Tablet, patrol: str
) -> None:
    set_patrol_status(engine, patrol, "approved")

    result = tablet.one(tablet.change("patrol", patrol, "delete", base_version=1))

    assert result["status"] == "conflict"
    assert conflict(engine, result["conflict_id"]).kind == "locked"
    assert tablet.pull_all()[("patrol", patrol)]["op"] == "upsert"


def test_a_track_segment_of_an_approved_patrol_is_still_appended(
    engine: Engine, tablet: Tablet, patrol: str
) -> None:
    set_patrol_status(engine, patrol, "approved")
    segment_id = new_id()

    result = tablet.one(
        tablet.change("track_segment", segment_id, "create", segment_fields(patrol))
    )

    assert result["status"] == "applied"


def test_an_observation_of_an_approved_patrol_is_a_conflict_not_a_silent_change(
    world: World, engine: Engine, tablet: Tablet, patrol: str
) -> None:
    category = world.admin.post(
        "/observation-categories",
        json={"key": "threat.fire", "name_es": "Fuego", "name_en": "Fire", "attributes": []},
    )
    assert category.status_code == 201, category.text
    fields = {
        "patrol_id": patrol,
        "category_key": "threat.fire",
        "observed_at": RECORDED_AT,
        "lat": -5.9,
        "lon": -77.3,
    }
    earlier = new_id()
    tablet.one(tablet.change("observation", earlier, "create", fields))
    set_patrol_status(engine, patrol, "approved")

    later = new_id()
    created = tablet.one(tablet.change("observation", later, "create", fields))
    edited = tablet.one(
        tablet.change("observation", earlier, "update", {"notes": "humo"}, base_version=1)
    )

    assert created["status"] == edited["status"] == "conflict"
    assert conflict(engine, created["conflict_id"]).kind == "create_locked"
    assert conflict(engine, edited["conflict_id"]).kind == "locked"
    held = tablet.pull_all()
    assert ("observation", later) not in held
    assert held[("observation", earlier)]["fields"]["notes"] is None


@pytest.mark.parametrize("op", ["update", "delete"])
def test_an_edit_that_meets_a_delete_from_another_device_is_a_conflict(
    engine: Engine, tablet: Tablet, other_tablet: Tablet, patrol: str, op: str
) -> None:
    deleted = other_tablet.one(other_tablet.change("patrol", patrol, "delete", base_version=1))
    assert (deleted["status"], deleted["version"]) == ("applied", 2)
    fields = {"comment": "sigo aquí"} if op == "update" else {}

    result = tablet.one(tablet.change("patrol", patrol, op, fields, base_version=1))

    assert result["status"] == "conflict"
    assert result["version"] == 2
    opened = conflict(engine, result["conflict_id"])
    assert opened.kind == "deleted"
    assert str(opened.device_id) == tablet.device_id
    assert tablet.pull_all()[("patrol", patrol)]["op"] == "delete"
    assert [v.version for v in versions(engine, "patrol", patrol)] == [1, 2]


def test_a_device_deleting_its_own_deleted_record_again_is_applied(
    tablet: Tablet, patrol: str
) -> None:
    tablet.one(tablet.change("patrol", patrol, "delete", base_version=1))

    again = tablet.one(tablet.change("patrol", patrol, "delete", base_version=1))

    assert (again["status"], again["version"]) == ("applied", 2)


def test_a_device_updating_the_record_it_deleted_is_rejected(tablet: Tablet, patrol: str) -> None:
    tablet.one(tablet.change("patrol", patrol, "delete", base_version=1))

    result = tablet.one(tablet.change("patrol", patrol, "update", {"comment": "x"}, base_version=1))

    assert result["status"] == "rejected"
    assert result["errors"][0]["code"] == "deleted"


def test_a_delete_shows_in_pull_as_op_delete(tablet: Tablet, patrol: str) -> None:
    result = tablet.one(tablet.change("patrol", patrol, "delete", base_version=1))

    assert (result["status"], result["version"]) == ("applied", 2)
    held = tablet.pull_all()[("patrol", patrol)]
    assert (held["op"], held["version"], held["fields"]) == ("delete", 2, {})


def test_a_create_resent_under_a_new_change_id_by_its_device_is_applied_over_it(
    tablet: Tablet, sector: dict[str, Any], patrol: str
) -> None:
    result = tablet.one(
        tablet.change("patrol", patrol, "create", patrol_fields(sector["id"], comment="b"))
    )

    assert (result["status"], result["version"]) == ("applied", 2)
    assert tablet.pull_all()[("patrol", patrol)]["fields"]["comment"] == "b"


def test_a_create_of_an_id_another_device_made_meets_it_as_an_update_from_nothing(
    engine: Engine, tablet: Tablet, other_tablet: Tablet, sector: dict[str, Any], patrol: str
) -> None:
    same = other_tablet.one(
        other_tablet.change("patrol", patrol, "create", patrol_fields(sector["id"]))
    )
    different = other_tablet.one(
        other_tablet.change("patrol", patrol, "create", patrol_fields(sector["id"], comment="b"))
    )

    assert (same["status"], same["version"]) == ("merged", 1)
    assert (different["status"], different["version"]) == ("conflict", 1)
    assert conflict(engine, different["conflict_id"]).fields == {
        "comment": {"server": None, "device": "b"}
    }
    assert tablet.pull_all()[("patrol", patrol)]["fields"]["comment"] is None


# ---------------------------------------------------------------- limits and the envelope


@pytest.fixture
def small_world(engine: Engine, database_url: str) -> Iterator[World]:
    """A server with small limits: bodies up to 2048 bytes, batches up to 5 changes."""
    settings: Settings = make_settings(database_url, max_body_bytes=2048, max_batch=5)
    app = create_app(settings, engine)
    with TestClient(app, base_url="http://testserver/api/v1") as client:
        yield World(client, engine, settings)


@pytest.fixture
def small_tablet(small_world: World) -> tuple[Tablet, str]:
    sector = small_world.sector("AM-01")
    ranger = small_world.user("ranger", sector_ids=[sector["id"]])
    return Tablet(small_world.device(ranger)), sector["id"]


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzipped: about a thousandth of that on the wire."""
    return gzip.compress(bytes(size), compresslevel=9)


def _raw(tablet: Tablet, content: bytes, **headers: str) -> httpx.Response:
    answer: httpx.Response = tablet.caller.post(
        "/sync/push",
        content=content,
        headers={"Content-Type": "application/json", **headers},
    )
    return answer


def test_a_batch_over_the_change_limit_is_refused_whole(
    small_tablet: tuple[Tablet, str], engine: Engine
) -> None:
    tablet, sector_id = small_tablet
    changes = [
        tablet.change("patrol", new_id(), "create", {"sector_id": sector_id}) for _ in range(6)
    ]

    answer = tablet.send(*changes)

    assert_problem(answer, 413, "batch_too_large")
    assert not any(key[0] == "patrol" for key in tablet.pull_all())


def test_a_batch_at_the_change_limit_is_accepted(small_tablet: tuple[Tablet, str]) -> None:
    tablet, sector_id = small_tablet
    changes = [
        tablet.change("patrol", new_id(), "create", {"sector_id": sector_id}) for _ in range(5)
    ]

    answer = tablet.send(*changes)

    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["applied"] * 5


def test_a_body_over_the_byte_limit_is_refused_and_nothing_applies(
    small_tablet: tuple[Tablet, str],
) -> None:
    tablet, sector_id = small_tablet
    change = tablet.change(
        "patrol", new_id(), "create", {"sector_id": sector_id, "comment": "x" * 2100}
    )

    answer = tablet.send(change)

    assert_problem(answer, 413, "payload_too_large")
    assert ("patrol", change["id"]) not in tablet.pull_all()


def test_the_byte_limit_is_measured_after_gunzip(small_tablet: tuple[Tablet, str]) -> None:
    tablet, sector_id = small_tablet
    change = tablet.change(
        "patrol", new_id(), "create", {"sector_id": sector_id, "comment": "x" * 3000}
    )
    packed = gzip.compress(json.dumps(tablet.body(change)).encode())
    assert len(packed) < 2048

    answer = _raw(tablet, packed, **{"Content-Encoding": "gzip"})

    assert_problem(answer, 413, "payload_too_large")
    assert ("patrol", change["id"]) not in tablet.pull_all()


def test_a_gzip_body_is_accepted(tablet: Tablet, sector: dict[str, Any]) -> None:
    change = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]))
    packed = gzip.compress(json.dumps(tablet.body(change)).encode())

    answer = _raw(tablet, packed, **{"Content-Encoding": "gzip"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["status"] == "applied"
    assert ("patrol", change["id"]) in tablet.pull_all()


def test_a_gzip_bomb_on_the_wire_over_the_small_limit_is_refused_quickly(
    small_tablet: tuple[Tablet, str],
) -> None:
    tablet, _ = small_tablet
    bomb = gzip_bomb(50 * 1024 * 1024)

    started = time.monotonic()
    answer = _raw(tablet, bomb, **{"Content-Encoding": "gzip"})

    assert_problem(answer, 413, "payload_too_large")
    assert time.monotonic() - started < 5


def test_a_small_gzip_bomb_is_refused_as_soon_as_it_inflates_past_the_limit(
    small_tablet: tuple[Tablet, str],
) -> None:
    tablet, _ = small_tablet
    bomb = gzip_bomb(1024 * 1024)
    assert len(bomb) < 2048

    answer = _raw(tablet, bomb, **{"Content-Encoding": "gzip"})

    assert_problem(answer, 413, "payload_too_large")


def test_a_50_mb_gzip_bomb_under_the_default_limit_on_the_wire_is_refused_quickly(
    tablet: Tablet,
) -> None:
    bomb = gzip_bomb(50 * 1024 * 1024)
    assert len(bomb) < 10 * 1024 * 1024

    started = time.monotonic()
    answer = _raw(tablet, bomb, **{"Content-Encoding": "gzip"})

    assert_problem(answer, 413, "payload_too_large")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not gzip at all", id="not-gzip"),
        pytest.param(gzip.compress(b'{"protocol": 1}')[:-12], id="truncated"),
    ],
)
def test_an_invalid_gzip_body_is_a_bad_request(tablet: Tablet, content: bytes) -> None:
    answer = _raw(tablet, content, **{"Content-Encoding": "gzip"})

    assert_problem(answer, 400, "bad_gzip")


def test_an_encoding_other_than_gzip_is_unsupported(tablet: Tablet) -> None:
    answer = _raw(tablet, b"{}", **{"Content-Encoding": "br"})

    assert_problem(answer, 415)


def test_a_batch_naming_another_device_is_forbidden(
    world: World, ranger: Caller, tablet: Tablet, sector: dict[str, Any]
) -> None:
    other = Tablet(world.device(ranger, label="Tablet B"))
    change = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]))

    answer = tablet.send(change, device_id=other.device_id)

    assert_problem(answer, 403, "wrong_device")
    assert ("patrol", change["id"]) not in other.pull_all()


def test_a_user_token_without_a_device_cannot_push(
    ranger: Caller, tablet: Tablet, sector: dict[str, Any]
) -> None:
    body = tablet.body(tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"])))

    answer = ranger.post("/sync/push", json=body)

    assert_problem(answer, 403, "device_required")


def test_pushing_needs_a_token(client: TestClient, tablet: Tablet) -> None:
    answer = client.post("/sync/push", json=tablet.body())

    assert_problem(answer, 401)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"protocol": 1, "changes": [', id="cut-short"),
        pytest.param(b"\xff\xfe not utf-8", id="not-utf-8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_body_that_is_not_json_is_a_bad_request(tablet: Tablet, content: bytes) -> None:
    assert_problem(_raw(tablet, content), 400, "malformed_json")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_json_cannot_hold_are_a_bad_request(
    tablet: Tablet, sector: dict[str, Any], number: str
) -> None:
    """Python's JSON reader takes NaN and Infinity, and reads 1e999 as infinity; none
    is JSON, and no store or tablet could keep it."""
    change = tablet.change("observation", new_id(), "create", {"sector_id": sector["id"]})
    text = json.dumps(tablet.body(change)).replace('"fields": {', f'"fields": {{"lat": {number}, ')

    assert_problem(_raw(tablet, text.encode()), 400, "malformed_json")


def test_a_recorded_at_without_its_offset_rejects_its_change_alone(
    tablet: Tablet, sector: dict[str, Any]
) -> None:
    naive = {
        **tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"])),
        "recorded_at": "2026-11-02T09:31:07",
    }
    fine = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]))

    first, second = tablet.push(naive, fine)["results"]

    assert first["status"] == "rejected"
    assert first["errors"][0]["code"] == "missing_offset"
    assert second["status"] == "applied"


def test_a_gzip_body_that_is_not_json_is_a_bad_request(tablet: Tablet) -> None:
    answer = _raw(tablet, gzip.compress(b"{nope"), **{"Content-Encoding": "gzip"})

    assert_problem(answer, 400, "malformed_json")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"protocol": 2}, "protocol", id="protocol-2"),
        pytest.param({"device_id": "tablet-7"}, "device_id", id="device-id-not-a-uuid"),
        pytest.param({"token": "x"}, "token", id="unknown-envelope-field"),
    ],
)
def test_an_envelope_that_does_not_validate_is_unprocessable(
    tablet: Tablet, overrides: dict[str, Any], field: str
) -> None:
    problem = assert_problem(tablet.send(**overrides), 422, "validation_failed")

    assert any(e["field"].startswith(field) for e in problem["errors"]), problem


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        pytest.param({"seq": -1}, "seq", id="negative-seq"),
        pytest.param({"extra": 1}, "extra", id="unknown-change-field"),
    ],
)
def test_a_change_that_does_not_validate_fails_the_batch_with_422(
    tablet: Tablet, sector: dict[str, Any], broken: dict[str, Any], field: str
) -> None:
    good = tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"]))
    bad = {**tablet.change("patrol", new_id(), "create", patrol_fields(sector["id"])), **broken}

    problem = assert_problem(tablet.send(good, bad), 422, "validation_failed")

    assert any(field in e["field"] for e in problem["errors"]), problem
    assert ("patrol", good["id"]) not in tablet.pull_all()
