"""The patrol-effort and threat reports, every figure against one computed by hand.

The world (America/Lima, UTC-5; tracks are walks north of known length):

    patrol  sector  status     started (local)  ended (local)  rest  track          people
    P1      AM-01   submitted  03-10 08:00      03-10 14:00    60    60 x 50 m      Ana; Beto
    P2      AM-01   approved   03-20 16:00      03-21 10:00    0     1 km, gap, 2   Beto (twice)
    P3      AM-02   returned   03-31 23:30      04-01 03:30    0     30 x 100 m     Ana
    P7      AM-02   submitted  03-15 07:00      (none)         -     (none)         Carla
    P6      AM-01   submitted  04-10 08:00      04-10 10:00    0     20 x 50 m      Ana
    draft   AM-01   draft      03-12 08:00      03-12 12:00    0     10 km          Ana
    cancel  AM-01   cancelled  03-13 08:00      03-13 12:00    0     10 km          Ana
    undated AM-01   submitted  (none)           (none)         -     3 km           Ana

In March P1, P2, P3 (started 31 March in Lima, 1 April in UTC) and P7 count: 9 km.

Observations: P1 2 timber, 1 mammal; P2 1 hunting; P3 1 timber (03-31 23:45);
standalone in AM-02 1 timber, 1 hunting (03-15); the draft 1 timber; P6 1 hunting
(04-10); standalone in AM-01 1 mammal (05-05).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from sync.patrols import reports as patrol_reports
from sync.platform.csv_files import BOM
from tests.conftest import Caller, World, assert_problem
from tests.patrol_support import PatrolTablet, at, walk
from tests.sync_support import Tablet

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
LAT, LON = -5.9, -77.3

TIMBER, HUNTING, MAMMAL = "threat.logging.timber", "threat.hunting", "wildlife.mammal"


def observation(category: str, when: str) -> dict[str, Any]:
    return {"category_key": category, "observed_at": at(when), "lat": LAT, "lon": LON}


@pytest.fixture
def park(world: World) -> dict[str, Any]:
    for key, name_es, name_en in [
        (TIMBER, "Tala de madera", "Timber logging"),
        (HUNTING, "Caza", "Hunting"),
        (MAMMAL, "Mamífero", "Mammal"),
    ]:
        made = world.admin.post(
            "/observation-categories", json={"key": key, "name_es": name_es, "name_en": name_en}
        )
        assert made.status_code == 201, made.text
    a = world.sector("AM-01", name="Huasta")
    b = world.sector("AM-02", name="Venceremos")
    ana = world.user("ranger", username="ana-quispe", sector_ids=[a["id"], b["id"]])
    beto = world.user("ranger", username="beto-tapia", sector_ids=[a["id"]])
    carla = world.user("ranger", username="carla-rios", sector_ids=[b["id"]])
    tablet = PatrolTablet(world.device(ana))
    led_by_ana = str(ana.user_id)

    p1_start = at("2026-03-10T08:00-05:00")
    p1 = tablet.patrol(
        sector_id=a["id"],
        started_at=p1_start,
        ended_at=at("2026-03-10T14:00-05:00"),
        rest_minutes=60,
        segments=[walk(p1_start, LAT, LON, minutes=60, step_m=50)],
        observations=[
            observation(TIMBER, "2026-03-10T09:00-05:00"),
            observation(TIMBER, "2026-03-10T10:00-05:00"),
            observation(MAMMAL, "2026-03-10T11:00-05:00"),
        ],
        members=[{"user_id": str(beto.user_id)}, {"name": "Guía de Nueva Esperanza"}],
        leader_id=led_by_ana,
    )
    p2_start = at("2026-03-20T16:00-05:00")
    p2 = tablet.patrol(
        sector_id=a["id"],
        started_at=p2_start,
        ended_at=at("2026-03-21T10:00-05:00"),
        segments=[
            walk(p2_start, LAT, LON, minutes=40, step_m=25),
            # Two hours of silence and 5 km away: the gap is not walked distance.
            walk(p2_start + timedelta(hours=3), LAT + 0.045, LON, minutes=20, step_m=100),
        ],
        observations=[observation(HUNTING, "2026-03-20T17:00-05:00")],
        leader_id=str(beto.user_id),
        members=[{"user_id": str(beto.user_id), "role": "jefe"}],
    )
    p3_start = at("2026-03-31T23:30-05:00")
    p3 = tablet.patrol(
        sector_id=b["id"],
        started_at=p3_start,
        ended_at=at("2026-04-01T03:30-05:00"),
        segments=[walk(p3_start, LAT, LON, minutes=30, step_m=100)],
        observations=[observation(TIMBER, "2026-03-31T23:45-05:00")],
        leader_id=led_by_ana,
    )
    tablet.patrol(
        sector_id=b["id"],
        started_at=at("2026-03-15T07:00-05:00"),
        ended_at=None,
        leader_id=str(carla.user_id),
    )
    p6_start = at("2026-04-10T08:00-05:00")
    tablet.patrol(
        sector_id=a["id"],
        started_at=p6_start,
        ended_at=at("2026-04-10T10:00-05:00"),
        segments=[walk(p6_start, LAT, LON, minutes=20, step_m=50)],
        observations=[observation(HUNTING, "2026-04-10T09:00-05:00")],
        leader_id=led_by_ana,
    )
    for status, day in [("draft", "12"), ("cancelled", "13")]:
        start = at(f"2026-03-{day}T08:00-05:00")
        tablet.patrol(
            sector_id=a["id"],
            started_at=start,
            ended_at=at(f"2026-03-{day}T12:00-05:00"),
            segments=[walk(start, LAT, LON, minutes=100, step_m=100)],
            observations=[observation(TIMBER, f"2026-03-{day}T09:00-05:00")],
            status=status,
            leader_id=led_by_ana,
        )
    tablet.patrol(
        sector_id=a["id"],
        started_at=None,
        ended_at=None,
        segments=[walk(at("2026-03-05T08:00-05:00"), LAT, LON, minutes=60, step_m=50)],
        leader_id=led_by_ana,
    )
    assert world.admin.post(f"/patrols/{p2}/review", json={"decision": "approve"}).is_success
    returned = {"decision": "return", "comment": "falta el track de regreso"}
    assert world.admin.post(f"/patrols/{p3}/review", json=returned).is_success

    loose = Tablet(world.device(ana, label="Second tablet"))
    for sector, category, when in [
        (b, TIMBER, "2026-03-15T09:00-05:00"),
        (b, HUNTING, "2026-03-15T09:30-05:00"),
        (a, MAMMAL, "2026-05-05T09:00-05:00"),
    ]:
        fields = {"sector_id": sector["id"], **observation(category, when)}
        fields["observed_at"] = fields["observed_at"].isoformat()
        assert loose.send("observation", str(uuid.uuid4()), "create", fields)["status"] == "applied"

    return {
        "a": a,
        "b": b,
        "ana": ana,
        "beto": beto,
        "carla": carla,
        "p1": p1,
        "lead_a": world.user("ranger_lead", sector_ids=[a["id"]]),
        "coordinator": world.user("coordinator"),
    }


def report(caller: Caller, name: str, **params: str) -> dict[str, Any]:
    answer = caller.get(f"/reports/{name}", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def effort(
    patrols: int, days: int, hours: float, field: float, km: float, without_hours: int = 0
) -> dict[str, Any]:
    return {
        "patrols": patrols,
        "patrol_days": days,
        "patrol_hours": pytest.approx(hours, rel=1e-6),
        "field_hours": pytest.approx(field, rel=1e-6),
        "km": pytest.approx(km, rel=1e-6),
        "patrols_without_hours": without_hours,
    }


def threats(observations: int, km: float) -> dict[str, Any]:
    return {
        "observations": observations,
        "km": pytest.approx(km, rel=1e-6),
        "per_10_km": round(observations / km * 10, 2) if km else None,
    }


def figures(group: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in group.items() if name in names}


EFFORT = ("patrols", "patrol_days", "patrol_hours", "field_hours", "km", "patrols_without_hours")
THREAT = ("observations", "km", "per_10_km")

# ---------------------------------------------------------------- patrol effort


def test_effort_by_sector_counts_what_happened_in_the_local_period(park: dict[str, Any]) -> None:
    body = report(park["coordinator"], "patrol-effort", **MARCH)

    assert (body["from"], body["to"], body["group_by"]) == ("2026-03-01", "2026-03-31", "sector")
    # P1, P2 (midnight: 2 days), P3 (31 March in Lima: 2 days), P7 (no end: 1 day, no hours)
    assert body["totals"] == effort(4, 6, 6 + 18 + 4, 5 + 18 + 4, 3 + 3 + 3, without_hours=1)
    assert [(g["key"], g["label"]) for g in body["groups"]] == [
        (park["a"]["id"], "AM-01 — Huasta"),
        (park["b"]["id"], "AM-02 — Venceremos"),
    ]
    assert figures(body["groups"][0], *EFFORT) == effort(2, 1 + 2, 6 + 18, 5 + 18, 6)
    assert figures(body["groups"][1], *EFFORT) == effort(2, 2 + 1, 4, 4, 3, without_hours=1)


def test_effort_by_month_places_a_patrol_in_its_local_month(park: dict[str, Any]) -> None:
    body = report(park["coordinator"], "patrol-effort", group_by="month", **{"from": "2026-03-01"})

    assert body["to"] is None
    assert [(g["key"], g["label"]) for g in body["groups"]] == [
        ("2026-03", "2026-03"),
        ("2026-04", "2026-04"),
    ]
    assert figures(body["groups"][0], *EFFORT) == effort(4, 6, 28, 27, 9, without_hours=1)
    assert figures(body["groups"][1], *EFFORT) == effort(1, 1, 2, 2, 1)
    assert body["totals"] == effort(5, 7, 30, 29, 10, without_hours=1)


def test_effort_by_ranger_counts_a_patrol_for_each_ranger_and_once_in_the_totals(
    park: dict[str, Any],
) -> None:
    body = report(park["coordinator"], "patrol-effort", group_by="ranger", **MARCH)

    assert [(g["key"], g["label"]) for g in body["groups"]] == [
        (str(park["ana"].user_id), "Ana-Quispe"),
        (str(park["beto"].user_id), "Beto-Tapia"),
        (str(park["carla"].user_id), "Carla-Rios"),
    ]
    ana, beto, carla = (figures(g, *EFFORT) for g in body["groups"])
    assert ana == effort(2, 1 + 2, 6 + 4, 5 + 4, 6)  # P1 led, P3
    assert beto == effort(2, 1 + 2, 6 + 18, 5 + 18, 6)  # P1 as a member, P2 led and listed
    assert carla == effort(1, 1, 0, 0, 0, without_hours=1)
    assert body["totals"] == effort(4, 6, 28, 27, 9, without_hours=1)


def test_effort_narrows_to_a_status_a_sector_and_an_instant(park: dict[str, Any]) -> None:
    coordinator = park["coordinator"]

    approved = report(coordinator, "patrol-effort", status="approved", **MARCH)
    assert approved["totals"] == effort(1, 2, 18, 18, 3)
    sector_b = report(coordinator, "patrol-effort", sector_id=park["b"]["id"], **MARCH)
    assert [g["key"] for g in sector_b["groups"]] == [park["b"]["id"]]
    assert sector_b["totals"] == effort(2, 3, 4, 4, 3, without_hours=1)
    # To 23:00 on the 31st in Lima: P3, out at 23:30, is left out.
    until = report(
        coordinator, "patrol-effort", **{"from": "2026-03-01", "to": "2026-03-31T23:00:00-05:00"}
    )
    assert until["to"] == "2026-03-31T23:00:00-05:00"
    assert until["totals"] == effort(3, 4, 24, 23, 6, without_hours=1)


def test_effort_of_a_lead_holds_only_their_sectors(park: dict[str, Any], world: World) -> None:
    own = report(park["lead_a"], "patrol-effort", **MARCH)
    assert [g["key"] for g in own["groups"]] == [park["a"]["id"]]
    assert own["totals"] == effort(2, 3, 24, 23, 6)

    elsewhere = world.user("ranger_lead", sector_ids=[world.sector("AM-03")["id"]])
    nothing = report(elsewhere, "patrol-effort", group_by="ranger", **MARCH)
    assert nothing["groups"] == []
    assert nothing["totals"] == effort(0, 0, 0, 0, 0)
    asked = report(elsewhere, "patrol-effort", sector_id=park["a"]["id"], **MARCH)
    assert asked["totals"]["patrols"] == 0


def test_tracks_are_measured_a_chunk_of_patrols_at_a_time(
    park: dict[str, Any], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(patrol_reports, "CHUNK", 3)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(world.engine, "before_cursor_execute", seen)
    try:
        body = report(park["coordinator"], "patrol-effort", **{"from": "2026-03-01"})
    finally:
        sa.event.remove(world.engine, "before_cursor_execute", seen)

    assert body["totals"] == effort(5, 7, 30, 29, 10, without_hours=1)
    segment_queries = [s for s in statements if "FROM track_segment" in s]
    assert len(segment_queries) == 2  # five patrols, three at a time


# ---------------------------------------------------------------- threats


def test_threats_by_category_weigh_each_against_every_km_walked(park: dict[str, Any]) -> None:
    body = report(park["coordinator"], "threats", **MARCH)

    assert body["group_by"] == "category"
    # P1 2 + P3 1 + standalone 1 timber; P2 1 + standalone 1 hunting; P1 1 mammal.
    # Not the draft's timber, nor P6's hunting (April). All weighed against 9 km.
    assert [(g["key"], g["label"], g["label_en"]) for g in body["groups"]] == [
        (HUNTING, "Caza", "Hunting"),
        (TIMBER, "Tala de madera", "Timber logging"),
        (MAMMAL, "Mamífero", "Mammal"),
    ]
    assert [figures(g, *THREAT) for g in body["groups"]] == [
        threats(2, 9),
        threats(4, 9),
        threats(1, 9),
    ]
    assert body["groups"][1]["per_10_km"] == pytest.approx(4.44)
    assert body["totals"] == threats(7, 9)


def test_threats_of_a_category_prefix_take_every_category_below_it(park: dict[str, Any]) -> None:
    body = report(park["coordinator"], "threats", category="threat", **MARCH)

    assert [g["key"] for g in body["groups"]] == [HUNTING, TIMBER]
    assert body["totals"] == threats(6, 9)
    logging = report(park["coordinator"], "threats", category="threat.logging", **MARCH)
    assert logging["totals"] == threats(4, 9)


def test_threats_by_sector_weigh_each_against_its_own_km(park: dict[str, Any]) -> None:
    body = report(park["coordinator"], "threats", group_by="sector", **MARCH)

    assert [g["key"] for g in body["groups"]] == [park["a"]["id"], park["b"]["id"]]
    assert [figures(g, *THREAT) for g in body["groups"]] == [
        threats(3 + 1, 3 + 3),  # P1, P2
        threats(1 + 2, 3),  # P3 and the two standalone; P7 walked no km
    ]
    assert body["groups"][1]["per_10_km"] == pytest.approx(10.0)
    assert body["totals"] == threats(7, 9)


def test_threats_by_month_weigh_each_against_the_km_of_its_month(park: dict[str, Any]) -> None:
    body = report(
        park["coordinator"],
        "threats",
        group_by="month",
        **{"from": "2026-03-01", "to": "2026-05-31"},
    )

    assert [g["key"] for g in body["groups"]] == ["2026-03", "2026-04", "2026-05"]
    assert [figures(g, *THREAT) for g in body["groups"]] == [
        threats(7, 9),
        threats(1, 1),
        threats(1, 0),  # an observation in May, and no patrol: no rate
    ]
    assert body["groups"][2]["per_10_km"] is None
    assert body["totals"] == threats(9, 10)


def test_threats_of_a_lead_hold_only_their_sectors(park: dict[str, Any], world: World) -> None:
    own = report(park["lead_a"], "threats", group_by="sector", **MARCH)
    assert [g["key"] for g in own["groups"]] == [park["a"]["id"]]
    assert own["totals"] == threats(4, 6)

    elsewhere = world.user("ranger_lead", sector_ids=[world.sector("AM-03")["id"]])
    nothing = report(elsewhere, "threats", **MARCH)
    assert nothing == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "group_by": "category",
        "totals": {"observations": 0, "km": 0.0, "per_10_km": None},
        "groups": [],
    }


# ---------------------------------------------------------------- as CSV


def csv_rows(caller: Caller, name: str, **params: str) -> list[dict[str, str]]:
    answer = caller.get(f"/reports/{name}", params={**params, "format": "csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.content.startswith(BOM.encode())
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


def test_the_effort_report_as_csv_has_a_row_per_group_and_the_totals(
    park: dict[str, Any],
) -> None:
    body = report(park["coordinator"], "patrol-effort", **MARCH)
    rows = csv_rows(park["coordinator"], "patrol-effort", **MARCH)

    assert list(rows[0]) == ["group", "label", *EFFORT]
    assert [(row["group"], row["label"]) for row in rows] == [
        *((g["key"], g["label"]) for g in body["groups"]),
        ("total", ""),
    ]
    total = rows[-1]
    assert (total["patrols"], total["patrol_days"], total["patrols_without_hours"]) == (
        "4",
        "6",
        "1",
    )
    assert float(total["patrol_hours"]) == 6 + 18 + 4
    assert float(total["km"]) == pytest.approx(9, rel=1e-6)
    assert body["totals"]["km"] == round(float(total["km"]), 2)


def test_the_threats_report_as_csv_keeps_the_rates_exact(park: dict[str, Any]) -> None:
    rows = csv_rows(park["coordinator"], "threats", **MARCH)

    assert list(rows[0]) == ["group", "label", "label_en", *THREAT]
    assert [(row["group"], row["label"], row["label_en"]) for row in rows] == [
        (HUNTING, "Caza", "Hunting"),
        (TIMBER, "Tala de madera", "Timber logging"),
        (MAMMAL, "Mamífero", "Mammal"),
        ("total", "", ""),
    ]
    # 4 per 9 km: 4.44 in JSON, every digit in the CSV.
    assert float(rows[1]["per_10_km"]) == pytest.approx(40 / 9, rel=1e-6)
    assert rows[1]["per_10_km"] != "4.44"
    assert rows[-1]["observations"] == "7"


# ---------------------------------------------------------------- who and what may be asked


@pytest.mark.parametrize("name", ["patrol-effort", "threats"])
@pytest.mark.parametrize("role", ["ranger", "extension_worker"])
def test_reports_are_not_for_rangers_nor_extension_workers(
    world: World, name: str, role: str
) -> None:
    sector = world.sector()
    caller = world.user(role, sector_ids=[sector["id"]])
    assert_problem(caller.get(f"/reports/{name}", params=MARCH), 403, "forbidden")


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("patrol-effort", {"satus": "approved"}),
        ("patrol-effort", {"group_by": "category"}),
        ("patrol-effort", {"group_by": "week"}),
        ("patrol-effort", {"status": "draft"}),
        ("patrol-effort", {"from": "2026-13-01"}),
        ("patrol-effort", {"to": "2026-03-31T08:00:00"}),
        ("patrol-effort", {"from": "2026-03-31", "to": "2026-03-01"}),
        ("threats", {"categoria": "threat"}),
        ("threats", {"group_by": "ranger"}),
        ("threats", {"category": "Threat!"}),
        ("threats", {"from": "yesterday"}),
        ("threats", {"from": "2026-03-31", "to": "2026-03-01"}),
    ],
)
def test_unknown_or_bad_parameters_are_refused(
    world: World, name: str, params: dict[str, str]
) -> None:
    assert_problem(world.admin.get(f"/reports/{name}", params=params), 422)
