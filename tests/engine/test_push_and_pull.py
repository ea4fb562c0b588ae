"""The engine called as a library: push and pull on a real database (both), no HTTP.

The engine is given its catalog of record types; these tests hand it the product's
(``sync.catalog``) and, once, a smaller one, to show that what it syncs is what it is
given and nothing it knows of itself.
"""

from __future__ import annotations

import gc
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from schemas import Device, TrackSegment, User
from schemas.accounts import UserCreate
from schemas.enums import CommunityKind, Role
from schemas.reference import CommunityCreate, SectorCreate
from schemas.sync import PushRequest, PushResponse, Status
from schemas.types import utcnow
from sync.accounts import users
from sync.accounts.auth import principal_of
from sync.accounts.principal import Principal
from sync.catalog import CATALOG
from sync.engine.entities import Catalog
from sync.engine.pull import pull
from sync.engine.push import push
from sync.patrols.entities import PATROL
from sync.platform.database import transaction
from sync.platform.settings import Settings
from sync.reference import service as reference
from tests.conftest import PASSWORD


@dataclass
class Office:
    engine: Engine
    settings: Settings
    sector_id: uuid.UUID
    community_id: uuid.UUID
    admin_id: uuid.UUID

    def tablet(self, role: Role) -> Principal:
        """A user of ``role`` in the office's sector or community, with an enrolled device."""
        with transaction(self.engine) as session:
            made = users.create(
                session,
                user=UserCreate(
                    username=f"{role}-{uuid.uuid4().hex[:6]}".replace("_", "-"),
                    password=PASSWORD,
                    full_name="Field User",
                    role=role,
                    sector_ids=[self.sector_id] if role is Role.ranger else [],
                    community_ids=[self.community_id] if role is Role.extension_worker else [],
                ),
                settings=self.settings,
            )
            device = Device(
                label="Tablet", user_id=made.id, created_by=self.admin_id, enrolled_at=utcnow()
            )
            session.add(device)
            session.flush()
            user = session.get(User, made.id)
            assert user is not None
            return principal_of(session, user, family_id=None, device_id=device.id)

    def push(
        self, principal: Principal, *changes: dict[str, Any], catalog: Catalog = CATALOG
    ) -> PushResponse:
        batch = PushRequest(protocol=1, device_id=principal.device_id, changes=list(changes))
        with transaction(self.engine) as session:
            return push(
                session, catalog=catalog, principal=principal, batch=batch, settings=self.settings
            )

    def pull(self, principal: Principal) -> list[tuple[str, str, str]]:
        """Every change the device pulls from no cursor: (entity, id, op)."""
        pulled: list[tuple[str, str, str]] = []
        cursor = None
        while True:
            with transaction(self.engine, write=False) as session:
                page = json.loads(
                    pull(
                        session,
                        principal=principal,
                        cursor=cursor,
                        limit=None,
                        settings=self.settings,
                    ).body
                )
            pulled += [(c["entity"], c["id"], c["op"]) for c in page["changes"]]
            cursor = page["cursor"]
            if not page["has_more"]:
                return pulled


def office(engine: Engine, settings: Settings) -> Office:
    with transaction(engine) as session:
        admin = users.create_admin(
            session, username="admin", password=PASSWORD, full_name="Admin", settings=settings
        )
        sector = reference.create_sector(session, sector=SectorCreate(code="S1", name="Alto Mayo"))
        community = reference.create_community(
            session,
            community=CommunityCreate(
                name="Nuevo Edén", sector_id=sector.id, kind=CommunityKind.settlement
            ),
        )
    return Office(engine, settings, sector.id, community.id, admin.id)


def change(seq: int, entity: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "change_id": str(uuid.uuid4()),
        "seq": seq,
        "entity": entity,
        "id": record_id,
        "op": "create",
        "schema_version": 1,
        "recorded_at": "2026-11-02T09:31:07-05:00",
        "fields": fields,
    }


def new_id() -> str:
    return str(uuid.uuid4())


def test_a_patrol_pushed_is_pulled_by_the_sectors_other_tablet(
    engine: Engine, settings: Settings
) -> None:
    place = office(engine, settings)
    ranger, other = place.tablet(Role.ranger), place.tablet(Role.ranger)
    patrol, segment = new_id(), new_id()
    point = {"t": "2026-11-02T09:40:00-05:00", "lat": -5.91, "lon": -77.31}

    answer = place.push(
        ranger,
        change(1, "patrol", patrol, {"sector_id": str(place.sector_id)}),
        change(2, "track_segment", segment, {"patrol_id": patrol, "points": [point]}),
    )

    assert [r.status for r in answer.results] == [Status.applied, Status.applied]
    pulled = place.pull(other)
    assert ("patrol", patrol, "upsert") in pulled
    assert ("track_segment", segment, "upsert") in pulled
    assert ("sector", str(place.sector_id), "upsert") in pulled


def test_a_batch_sent_again_is_replayed_not_applied_twice(
    engine: Engine, settings: Settings
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    sent = change(1, "patrol", new_id(), {"sector_id": str(place.sector_id)})

    first = place.push(ranger, sent)
    again = place.push(ranger, sent)

    assert first.results[0].status is Status.applied
    assert again.results[0].replayed is True
    assert again.results[0].version == first.results[0].version == 1


def test_an_attendance_before_its_session_waits_and_applies_when_it_arrives(
    engine: Engine, settings: Settings
) -> None:
    place = office(engine, settings)
    worker = place.tablet(Role.extension_worker)
    session_id, person, attendance = new_id(), new_id(), new_id()
    community = str(place.community_id)

    early = place.push(
        worker,
        change(
            1,
            "person",
            person,
            {"given_names": "Rosa", "paternal_surname": "Huamán", "community_id": community},
        ),
        change(2, "attendance", attendance, {"session_id": session_id, "person_id": person}),
    )
    late = place.push(
        worker,
        change(
            3,
            "training_session",
            session_id,
            {
                "program": "coffee_production",
                "community_id": community,
                "starts_at": "2026-11-02T09:00:00-05:00",
            },
        ),
    )

    assert [r.status for r in early.results] == [Status.applied, Status.deferred]
    assert late.results[0].status is Status.applied
    assert ("attendance", attendance, "upsert") in place.pull(place.tablet(Role.extension_worker))


def test_the_engine_syncs_the_record_types_it_is_given_and_no_other(
    engine: Engine, settings: Settings
) -> None:
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    only_patrols = Catalog([PATROL])
    patrol = new_id()

    answer = place.push(
        ranger,
        change(1, "patrol", patrol, {"sector_id": str(place.sector_id)}),
        change(
            2,
            "observation",
            new_id(),
            {
                "patrol_id": patrol,
                "category_key": "logging",
                "observed_at": "2026-11-02T09:00:00-05:00",
                "lat": -5.7,
                "lon": -77.5,
            },
        ),
        catalog=only_patrols,
    )

    assert answer.results[0].status is Status.applied
    assert answer.results[1].status is Status.rejected
    assert answer.results[1].errors is not None
    assert answer.results[1].errors[0].code == "unknown_entity"


def test_a_track_segment_keeps_its_point_count(engine: Engine, settings: Settings) -> None:
    """What a record type derives (``EntitySpec.derived``) is written with the record."""
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    patrol, segment = new_id(), new_id()
    fixes = [
        {"t": f"2026-11-02T09:4{n}:00-05:00", "lat": -5.91, "lon": -77.31 - n / 100}
        for n in range(3)
    ]

    place.push(
        ranger,
        change(1, "patrol", patrol, {"sector_id": str(place.sector_id)}),
        change(2, "track_segment", segment, {"patrol_id": patrol, "points": fixes}),
    )

    with transaction(engine, write=False) as session:
        stored = session.get(TrackSegment, uuid.UUID(segment))
        assert stored is not None
        assert stored.point_count == 3


def test_what_a_batch_read_and_made_is_freed_when_its_push_returns(
    engine: Engine, settings: Settings
) -> None:
    """No reference cycle keeps a batch's objects (its changes, records, versions) for
    the garbage collector, which a loaded server runs rarely: held so, the batches of
    a few minutes doubled a worker's memory. The batch defers a segment until its
    patrol arrives, so the waker's side is walked too."""
    place = office(engine, settings)
    ranger = place.tablet(Role.ranger)
    patrol, segment = new_id(), new_id()
    fixes = [{"t": "2026-11-02T09:40:00-05:00", "lat": -5.91, "lon": -77.31}]
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        answer = place.push(
            ranger,
            change(1, "track_segment", segment, {"patrol_id": patrol, "points": fixes}),
            change(2, "patrol", patrol, {"sector_id": str(place.sector_id)}),
        )
        gc.collect()
        left = sorted(
            {
                type(garbage).__qualname__
                for garbage in gc.garbage
                if type(garbage).__module__.startswith(("sync.engine", "schemas"))
            }
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()

    assert [r.status for r in answer.results] == [Status.deferred, Status.applied]
    assert left == []
