"""Ranger leads' patrol queue and detail: filters, paging, order, scope,
the track as GeoJSON, effort figures and flags against hand-computed values, and
every review kept."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Caller, World, all_at_once, assert_problem
from tests.patrol_support import PatrolTablet, at, walk
from tests.sync_support import change, push

KM_PER_DEGREE = math.pi / 180 * 6371.0088  # 111.19508 km of latitude on the sphere
LAT, LON = -5.8, -77.3
MORNING = at("2026-03-02T08:00:00-05:00")


def east(km: float, lat: float = LAT) -> float:
    """Degrees of longitude that make ``km`` eastward at ``lat``."""
    return km / (KM_PER_DEGREE * math.cos(math.radians(lat)))


@pytest.fixture
def park(world: World) -> dict[str, Any]:
    """Two sectors, their people, and a category with typed attributes."""
    sector = world.sector("AM-01")
    other = world.sector("AM-02")
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    partner = world.user("ranger", sector_ids=[sector["id"]])
    far_ranger = world.user("ranger", sector_ids=[other["id"]])
    lead = world.user("ranger_lead", sector_ids=[sector["id"]])
    for key, name_es, name_en in [
        ("threat.logging.timber", "Tala de madera", "Timber logging"),
        ("threat.fire", "Incendio", "Fire"),
        ("wildlife.sighting", "Avistamiento", "Sighting"),
    ]:
        made = world.admin.post(
            "/observation-categories",
            json={
                "key": key,
                "name_es": name_es,
                "name_en": name_en,
                "attributes": [{"key": "count", "type": "number"}],
            },
        )
        assert made.status_code == 201, made.text
    return {
        "sector": sector["id"],
        "other": other["id"],
        "ranger": ranger,
        "partner": partner,
        "lead": lead,
        "outsider": world.user("ranger_lead", sector_ids=[other["id"]]),
        "coordinator": world.user("coordinator"),
        "tablet": PatrolTablet(world.device(ranger)),
        "far_tablet": PatrolTablet(world.device(far_ranger)),
        "far_ranger": far_ranger,
    }


def observation(key: str, when: Any, lat: float = LAT, lon: float = LON) -> dict[str, Any]:
    return {"category_key": key, "observed_at": when, "lat": lat, "lon": lon}


def ids(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


# ---------------------------------------------------------------- the list


def test_each_filter_narrows_the_list(park: dict[str, Any]) -> None:
    tablet: PatrolTablet = park["tablet"]
    ranger: Caller = park["ranger"]
    partner: Caller = park["partner"]
    lead: Caller = park["lead"]
    led = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=4),
        leader_id=str(ranger.user_id),
        observations=[observation("threat.logging.timber", MORNING)],
    )
    joined = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING + timedelta(days=1),
        ended_at=MORNING + timedelta(days=1, hours=3),
        leader_id=str(ranger.user_id),
        members=[{"user_id": str(partner.user_id), "role": "apoyo"}, {"name": "Juan Tapia"}],
        observations=[observation("wildlife.sighting", MORNING + timedelta(days=1))],
    )
    draft = tablet.patrol(
        sector_id=park["sector"], started_at=MORNING - timedelta(days=5), ended_at=None,
        status="draft",
    )  # fmt: skip
    far = park["far_tablet"].patrol(
        sector_id=park["other"], started_at=MORNING, ended_at=MORNING + timedelta(hours=1)
    )
    coordinator: Caller = park["coordinator"]

    assert set(ids(coordinator.get("/patrols"))) == {led, joined, draft, far}
    assert set(ids(coordinator.get("/patrols", params={"sector_id": park["other"]}))) == {far}
    assert set(ids(lead.get("/patrols", params={"ranger_id": str(ranger.user_id)}))) == {
        led,
        joined,
    }
    assert ids(lead.get("/patrols", params={"ranger_id": str(partner.user_id)})) == [joined]
    assert ids(lead.get("/patrols", params={"ranger_id": str(uuid.uuid4())})) == []
    assert ids(lead.get("/patrols", params={"status": "draft"})) == [draft]
    assert set(ids(lead.get("/patrols", params={"status": "submitted"}))) == {led, joined}
    assert ids(lead.get("/patrols", params={"from": "2026-03-03"})) == [joined]
    assert ids(lead.get("/patrols", params={"to": "2026-03-02", "from": "2026-03-01"})) == [led]
    eight = "2026-03-02T08:00:00-05:00"
    assert ids(lead.get("/patrols", params={"from": eight, "to": eight})) == [led]
    assert ids(lead.get("/patrols", params={"from": "2026-03-02T08:00:01-05:00"})) == [joined]
    assert ids(lead.get("/patrols", params={"category": "threat"})) == [led]
    assert ids(lead.get("/patrols", params={"category": "threat.logging.timber"})) == [led]
    assert ids(lead.get("/patrols", params={"category": "wildlife"})) == [joined]
    # A prefix is a whole dotted part: `threat.log` is not `threat.logging`.
    assert ids(lead.get("/patrols", params={"category": "threat.log"})) == []
    # Filters combine.
    assert ids(
        lead.get("/patrols", params={"ranger_id": str(ranger.user_id), "category": "wildlife"})
    ) == [joined]


def test_a_date_is_a_whole_local_day_in_peru(park: dict[str, Any]) -> None:
    """23:30 on 31 March in Moyobamba is 04:30 on 1 April in UTC: it is a March patrol."""
    late = at("2026-03-31T23:30:00-05:00")
    tablet: PatrolTablet = park["tablet"]
    patrol = tablet.patrol(
        sector_id=park["sector"], started_at=late, ended_at=late + timedelta(hours=2)
    )
    lead: Caller = park["lead"]
    assert ids(lead.get("/patrols", params={"from": "2026-03-01", "to": "2026-03-31"})) == [patrol]
    assert ids(lead.get("/patrols", params={"from": "2026-04-01"})) == []


def test_pages_carry_the_total_and_never_repeat_a_patrol(park: dict[str, Any]) -> None:
    tablet: PatrolTablet = park["tablet"]
    made = [
        tablet.patrol(
            sector_id=park["sector"],
            started_at=MORNING + timedelta(days=day),
            ended_at=MORNING + timedelta(days=day, hours=2),
        )
        for day in range(5)
    ]
    lead: Caller = park["lead"]
    seen: list[str] = []
    for offset in (0, 2, 4):
        page = lead.get("/patrols", params={"limit": 2, "offset": offset})
        assert page.json()["total"] == 5
        assert (page.json()["limit"], page.json()["offset"]) == (2, offset)
        seen += ids(page)
    # Newest first outside the queue.
    assert seen == list(reversed(made))


def test_the_queue_puts_the_longest_waiting_patrol_first(park: dict[str, Any]) -> None:
    tablet: PatrolTablet = park["tablet"]
    # Started later but sent first: it has waited longest.
    first = tablet.patrol(
        sector_id=park["sector"], started_at=MORNING + timedelta(days=3), ended_at=None
    )
    second = tablet.patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None)
    third = tablet.patrol(
        sector_id=park["sector"], started_at=MORNING + timedelta(days=1), ended_at=None
    )
    queue = park["lead"].get("/patrols", params={"status": "submitted"})
    assert ids(queue) == [first, second, third]
    assert queue.json()["total"] == 3


def test_queue_rows_name_the_members_with_one_query_for_the_page(
    park: dict[str, Any], world: World
) -> None:
    tablet: PatrolTablet = park["tablet"]
    ranger: Caller = park["ranger"]
    partner: Caller = park["partner"]
    for day in range(3):
        tablet.patrol(
            sector_id=park["sector"],
            started_at=MORNING + timedelta(days=day),
            ended_at=None,
            leader_id=str(ranger.user_id),
            members=[
                {"user_id": str(partner.user_id), "role": "apoyo"},
                {"user_id": str(ranger.user_id), "name": "Ana (as typed)"},
                {"name": "Juan Tapia"},
            ],
        )
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(world.engine, "before_cursor_execute", seen)
    try:
        queue = park["lead"].get("/patrols", params={"status": "submitted"})
    finally:
        sa.event.remove(world.engine, "before_cursor_execute", seen)

    assert queue.status_code == 200, queue.text
    for row in queue.json()["items"]:
        assert [m["name"] for m in row["members"]] == [
            partner.username.title(),
            "Ana (as typed)",
            "Juan Tapia",
        ]
    # The names' query selects full names by id; the caller's own is read by primary key.
    user_queries = [s for s in statements if "full_name" in s and ".id IN (" in s]
    assert len(user_queries) == 1, user_queries


def test_hours_and_km_are_rounded_in_json_where_people_read_them(park: dict[str, Any]) -> None:
    """47 min 13 s with 7 min of rest, 47 steps of 37 m: figures with many decimals."""
    tablet: PatrolTablet = park["tablet"]
    patrol = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(minutes=47, seconds=13),
        rest_minutes=7,
        segments=[walk(MORNING, LAT, LON, minutes=47, step_m=37)],
        observations=[observation("threat.fire", MORNING, LAT, LON + east(1.2345678))],
    )
    detail = park["lead"].get(f"/patrols/{patrol}").json()
    listed = park["lead"].get("/patrols").json()["items"][0]

    def two_decimals(value: float) -> bool:
        return value == round(value, 2)

    effort = detail["effort"]
    assert effort["patrol_hours"] == round((47 * 60 + 13) / 3600, 2)
    assert effort["field_hours"] == round((40 * 60 + 13) / 3600, 2)
    assert effort["distance_km"] == round(47 * 0.037, 2)
    for figures in (detail["patrol"], listed):
        assert two_decimals(figures["patrol_hours"])
        assert two_decimals(figures["field_hours"])
    [far] = effort["flags"]
    assert far["km"] == 1.23
    assert detail["observations"][0]["distance_to_track_km"] == 1.23
    [line] = detail["track"]["features"]
    assert line["properties"]["distance_km"] == round(47 * 0.037, 2)
    # Positions are not figures: they stay exact.
    assert line["geometry"]["coordinates"][-1][1] == pytest.approx(LAT + 47 * 0.037 / 111.19508)
    assert not two_decimals(line["geometry"]["coordinates"][-1][1])


def test_deleted_patrols_are_not_listed_nor_shown(park: dict[str, Any]) -> None:
    tablet: PatrolTablet = park["tablet"]
    patrol = tablet.patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None)
    tablet.seq += 1
    gone = push(tablet.device, change("patrol", patrol, "delete", tablet.seq, base_version=1))
    assert gone["results"][0]["status"] == "applied", gone
    lead: Caller = park["lead"]
    assert ids(lead.get("/patrols")) == []
    assert_problem(lead.get(f"/patrols/{patrol}"), 404, "not_found")


def test_scope_a_lead_sees_only_the_sectors_held(park: dict[str, Any], world: World) -> None:
    tablet: PatrolTablet = park["tablet"]
    patrol = tablet.patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None)
    outsider: Caller = park["outsider"]
    assert outsider.get("/patrols").json()["total"] == 0
    assert ids(outsider.get("/patrols", params={"sector_id": park["sector"]})) == []
    assert_problem(outsider.get(f"/patrols/{patrol}"), 404, "not_found")
    assert_problem(outsider.get(f"/patrols/{uuid.uuid4()}"), 404, "not_found")
    assert ids(park["ranger"].get("/patrols")) == [patrol]
    assert ids(park["coordinator"].get("/patrols")) == [patrol]
    assert park["coordinator"].get(f"/patrols/{patrol}").status_code == 200
    worker = world.user("extension_worker")
    assert_problem(worker.get("/patrols"), 403, "forbidden")
    assert_problem(worker.get(f"/patrols/{patrol}"), 403, "forbidden")
    assert_problem(world.client.get("/patrols"), 401)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"satus": "submitted"}, "satus"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "2026-03-02T08:00:00"}, "to"),  # no offset: which 08:00?
        ({"status": "lost"}, "status"),
        ({"sector_id": "AM-01"}, "sector_id"),
        ({"ranger_id": "rosa"}, "ranger_id"),
        ({"category": "Threat%"}, "category"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_bad_filters_are_a_422_naming_the_parameter(
    park: dict[str, Any], params: dict[str, Any], field: str
) -> None:
    body = assert_problem(park["lead"].get("/patrols", params=params), 422, "validation_failed")
    assert [error["field"] for error in body["errors"]] == [field]


def test_a_period_that_ends_before_it_starts_is_a_422(park: dict[str, Any]) -> None:
    answer = park["lead"].get("/patrols", params={"from": "2026-03-02", "to": "2026-03-01"})
    body = assert_problem(answer, 422, "validation_failed")
    assert body["errors"][0]["field"] == "to"


# ---------------------------------------------------------------- the detail


def test_the_detail_figures_match_a_hand_computed_patrol(park: dict[str, Any]) -> None:
    """60 one-minute steps of 50 m north: 3.000 km, 61 points; 08:00 to 12:00 with 30
    minutes of rest: 4 patrol hours, 3.5 field hours. One observation on the track,
    one 2 km east of it."""
    tablet: PatrolTablet = park["tablet"]
    ranger: Caller = park["ranger"]
    partner: Caller = park["partner"]
    patrol = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=4),
        rest_minutes=30,
        transport="a pie",
        leader_id=str(ranger.user_id),
        members=[{"user_id": str(partner.user_id), "role": "apoyo"}, {"name": "Juan Tapia"}],
        segments=[walk(MORNING, LAT, LON, minutes=60, step_m=50)],
        observations=[
            {**observation("threat.logging.timber", MORNING), "attributes": {"count": 3}},
            observation("threat.fire", MORNING + timedelta(minutes=30), LAT, LON + east(2.0)),
        ],
    )
    answer = park["lead"].get(f"/patrols/{patrol}")
    assert answer.status_code == 200, answer.text
    detail = answer.json()

    assert detail["effort"]["patrol_hours"] == 4.0
    assert detail["effort"]["field_hours"] == 3.5
    assert detail["effort"]["distance_km"] == pytest.approx(3.0, rel=1e-6)
    assert detail["effort"]["point_count"] == 61
    assert detail["effort"]["transport"] == "foot"
    [far] = detail["effort"]["flags"]
    assert far["code"] == "observation_far_from_track"
    assert far["km"] == pytest.approx(2.0, rel=1e-3)

    head = detail["patrol"]
    assert (head["id"], head["status"]) == (patrol, "submitted")
    assert (head["observation_count"], head["point_count"]) == (2, 61)
    assert detail["leader"]["user_id"] == str(ranger.user_id)
    assert detail["leader"]["full_name"] == ranger.username.title()
    assert head["members"] == [
        {"user_id": str(partner.user_id), "name": partner.username.title(), "role": "apoyo"},
        {"user_id": None, "name": "Juan Tapia", "role": None},
    ]

    timber, fire = detail["observations"]
    assert timber["category_key"] == "threat.logging.timber"
    assert timber["category_name_es"] == "Tala de madera"
    assert timber["attributes"] == {"count": 3}
    assert timber["distance_to_track_km"] == pytest.approx(0.0, abs=1e-9)
    assert fire["distance_to_track_km"] == pytest.approx(2.0, rel=1e-3)

    [line] = detail["track"]["features"]
    assert detail["track"]["type"] == "FeatureCollection"
    assert line["geometry"]["type"] == "LineString"
    assert line["geometry"]["coordinates"][0] == [LON, LAT]  # GeoJSON is [lon, lat]
    assert len(line["geometry"]["coordinates"]) == 61
    assert line["properties"]["coordTimes"][0] == "2026-03-02T13:00:00Z"
    assert line["properties"]["distance_km"] == pytest.approx(3.0, rel=1e-6)
    assert detail["reviews"] == []


def test_a_gap_over_30_minutes_is_flagged_cut_and_not_walked(park: dict[str, Any]) -> None:
    """Two walks of 30 steps of 100 m (3 km each) 45 minutes apart, the second starting
    where the first ended: 6 km walked, not a metre more for the gap."""
    first = walk(MORNING, LAT, LON, minutes=30, step_m=100)
    resume = MORNING + timedelta(minutes=75)
    second = walk(resume, first[-1][1], LON, minutes=30, step_m=100)
    patrol = park["tablet"].patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=resume + timedelta(minutes=30),
        segments=[second, first],  # sent out of order
    )
    detail = park["lead"].get(f"/patrols/{patrol}").json()
    assert detail["effort"]["distance_km"] == pytest.approx(6.0, rel=1e-6)
    assert detail["effort"]["point_count"] == 62
    [gap] = detail["effort"]["flags"]
    assert gap["code"] == "track_gap"
    assert gap["minutes"] == 45.0
    assert gap["from_at"] == "2026-03-02T13:30:00Z"
    assert [f["properties"]["point_count"] for f in detail["track"]["features"]] == [31, 31]


def test_a_foot_patrol_at_car_speed_is_flagged(park: dict[str, Any]) -> None:
    """500 m a minute is 30 km/h: no ranger walks that (the limit on foot is 15)."""
    patrol = park["tablet"].patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=1),
        transport="caminando",
        segments=[walk(MORNING, LAT, LON, minutes=10, step_m=500)],
    )
    [fast] = park["lead"].get(f"/patrols/{patrol}").json()["effort"]["flags"]
    assert fast["code"] == "implausible_speed"
    assert fast["speed_kmh"] == pytest.approx(30.0, rel=1e-6)
    assert fast["limit_kmh"] == 15.0
    assert fast["km"] == pytest.approx(5.0, rel=1e-6)


def test_points_outside_the_sector_boundary_are_counted(world: World) -> None:
    # A square from lat -5.80 to -5.79: a walk north 2 km from -5.80 leaves it at ~1.1 km.
    square = [[LON - 0.01, -5.80], [LON + 0.01, -5.80], [LON + 0.01, -5.79],
              [LON - 0.01, -5.79], [LON - 0.01, -5.80]]  # fmt: skip
    sector = world.sector("AM-09", boundary={"type": "Polygon", "coordinates": [square]})
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    tablet = PatrolTablet(world.device(ranger))
    fixes = walk(MORNING, -5.7999, LON, minutes=20, step_m=100)  # 21 fixes, 0 to 2 km
    patrol = tablet.patrol(
        sector_id=sector["id"], started_at=MORNING, ended_at=MORNING + timedelta(hours=1),
        segments=[fixes],
    )  # fmt: skip
    [outside] = world.admin.get(f"/patrols/{patrol}").json()["effort"]["flags"]
    expected = sum(1 for _, lat, _ in fixes if lat > -5.79)
    assert outside["code"] == "points_outside_sector"
    assert outside["count"] == expected == 9
    assert len(outside["first"]) == 5


def test_overlapping_patrols_of_a_ranger_flag_each_other(park: dict[str, Any]) -> None:
    ranger: Caller = park["ranger"]
    partner: Caller = park["partner"]
    tablet: PatrolTablet = park["tablet"]
    morning = tablet.patrol(
        sector_id=park["sector"], started_at=MORNING, ended_at=MORNING + timedelta(hours=4),
        leader_id=str(ranger.user_id), segments=[walk(MORNING, LAT, LON, minutes=5, step_m=50)],
    )  # fmt: skip
    # The partner led another patrol from 11:00 while a member of the first till 12:00.
    eleven = MORNING + timedelta(hours=3)
    later = tablet.patrol(
        sector_id=park["sector"], started_at=eleven, ended_at=eleven + timedelta(hours=2),
        leader_id=str(partner.user_id),
        members=[{"user_id": str(ranger.user_id)}],
        segments=[walk(eleven, LAT, LON, minutes=5, step_m=50)],
    )  # fmt: skip
    # Back to back is not an overlap; a cancelled patrol did not happen.
    tablet.patrol(
        sector_id=park["sector"], started_at=MORNING - timedelta(hours=2), ended_at=MORNING,
        leader_id=str(ranger.user_id), segments=[walk(MORNING, LAT, LON, minutes=5, step_m=50)],
    )  # fmt: skip
    tablet.patrol(
        sector_id=park["sector"], started_at=MORNING, ended_at=MORNING + timedelta(hours=4),
        leader_id=str(ranger.user_id), status="cancelled",
    )  # fmt: skip
    lead: Caller = park["lead"]
    [overlap] = lead.get(f"/patrols/{morning}").json()["effort"]["flags"]
    assert overlap["code"] == "overlapping_patrol"
    assert overlap["patrol_id"] == later
    assert overlap["overlap_minutes"] == 60.0
    [back] = lead.get(f"/patrols/{later}").json()["effort"]["flags"]
    assert back["patrol_id"] == morning


def test_no_track_and_an_end_before_the_start_are_flagged(park: dict[str, Any]) -> None:
    patrol = park["tablet"].patrol(
        sector_id=park["sector"], started_at=MORNING, ended_at=MORNING - timedelta(hours=1)
    )
    detail = park["lead"].get(f"/patrols/{patrol}").json()
    assert [flag["code"] for flag in detail["effort"]["flags"]] == ["ends_before_start", "no_track"]
    assert detail["effort"]["patrol_hours"] is None
    assert detail["effort"]["distance_km"] == 0.0
    assert detail["track"] == {"type": "FeatureCollection", "features": []}


def test_an_unknown_or_malformed_patrol_id(park: dict[str, Any]) -> None:
    lead: Caller = park["lead"]
    assert_problem(lead.get(f"/patrols/{uuid.uuid4()}"), 404, "not_found")
    assert_problem(lead.get("/patrols/not-a-uuid"), 422, "validation_failed")


# ---------------------------------------------------------------- reviews


def test_every_review_is_kept_in_the_detail(park: dict[str, Any]) -> None:
    """Returned with a comment, fixed and sent again, approved: both reviews shown."""
    tablet: PatrolTablet = park["tablet"]
    lead: Caller = park["lead"]
    patrol = tablet.patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None)
    returned = lead.post(
        f"/patrols/{patrol}/review", json={"decision": "return", "comment": "falta la hora final"}
    )
    assert returned.status_code == 200, returned.text
    tablet.seq += 1
    fixed = push(
        tablet.device,
        change(
            "patrol",
            patrol,
            "update",
            tablet.seq,
            {"ended_at": "2026-03-02T12:00:00-05:00", "status": "submitted"},
            base_version=2,
        ),
    )
    assert fixed["results"][0]["status"] == "applied", fixed
    approved = lead.post(f"/patrols/{patrol}/review", json={"decision": "approve"})
    assert approved.status_code == 200, approved.text

    detail = lead.get(f"/patrols/{patrol}").json()
    assert [(r["decision"], r["comment"], r["version"]) for r in detail["reviews"]] == [
        ("return", "falta la hora final", 2),
        ("approve", None, 4),
    ]
    assert {r["reviewed_by"]["user_id"] for r in detail["reviews"]} == {str(lead.user_id)}
    assert detail["reviews"][0]["reviewed_by"]["full_name"] == lead.username.title()
    assert detail["patrol"]["status"] == "approved"
    assert detail["patrol"]["version"] == 4

    again = lead.post(f"/patrols/{patrol}/review", json={"decision": "approve"})
    assert_problem(again, 409, "already_approved")
    assert len(lead.get(f"/patrols/{patrol}").json()["reviews"]) == 2


def test_rangers_cannot_review_and_outsiders_cannot_find(park: dict[str, Any]) -> None:
    patrol = park["tablet"].patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None)
    body = {"decision": "approve"}
    assert_problem(park["ranger"].post(f"/patrols/{patrol}/review", json=body), 403, "forbidden")
    assert_problem(park["outsider"].post(f"/patrols/{patrol}/review", json=body), 404)
    assert park["lead"].get(f"/patrols/{patrol}").json()["reviews"] == []


def test_leads_reviewing_at_once_make_one_review(park: dict[str, Any], world: World) -> None:
    """Eight leads (or one lead's eight tabs) approve at once: one approval, one review
    kept, seven 409s; the patrol's version moves once."""
    patrol = park["tablet"].patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None)
    lead: Caller = park["lead"]
    answers = all_at_once(
        world.client,
        lambda client: client.post(
            f"/patrols/{patrol}/review", json={"decision": "approve"}, headers=lead.headers
        ),
    )
    assert sorted(answer.status_code for answer in answers) == [200] + [409] * 7
    detail = lead.get(f"/patrols/{patrol}").json()
    assert len(detail["reviews"]) == 1
    assert detail["patrol"]["version"] == 2
