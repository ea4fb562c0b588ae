"""Coordinators' attendance lists and the programme's figures, against a
small programme whose every figure is counted by hand in ``programme`` below:
a person recorded by two tablets at one session, a duplicate merged, a session
never marked held, a cancelled one, school sessions by headcount, a patrol of
23:30 on New Year's Eve, and one session outside the period."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.conftest import Caller, World, assert_problem
from tests.people_support import Recorder

BOM = b"\xef\xbb\xbf"
PERIOD = {"from": "2018-01-01", "to": "2020-12-31"}


@pytest.fixture
def programme(world: World, engine: Engine) -> dict[str, Any]:
    s1, s2 = world.sector("AM-01")["id"], world.sector("AM-02")["id"]
    c1 = world.community(s1, "Nueva Alianza")["id"]
    c2 = world.community(s1, "Shampuyacu")["id"]
    c3 = world.community(s2, "Yarau")["id"]
    worker = world.user("extension_worker", community_ids=[c1, c2])
    colleague = world.user("extension_worker", community_ids=[c1])
    far_worker = world.user("extension_worker", community_ids=[c3])
    tablet, second, far = (Recorder(world.device(w)) for w in (worker, colleague, far_worker))

    people = {
        "ana": tablet.person(c1, "Ana", "Tapia", "female"),
        "rosa": tablet.person(c1, "Rosa", "Guevara", "female"),
        "jose": tablet.person(c1, "José", "Núñez", "male"),
        "luis": tablet.person(c1, "Luis", "Mego", "male"),
        "pat": tablet.person(c1, "Pat", "Cubas", "unknown"),
        "zoila": far.person(c3, "Zoila", "Dekentai", "female"),
        "tomas": far.person(c3, "Tomás", "Antuash", "male"),
    }
    # The colleague's tablet never met the worker's: Ana registered again.
    people["ana2"] = second.person(c1, "Ana", "Tapia", "female")
    facilitator = [{"user_id": str(worker.user_id), "role": "facilitador"}]
    sessions = {
        "s1": tablet.session(c1, "coffee_production", "2019-03-10T09:00:00-05:00",
                             facilitators=facilitator, topic="Poda y renovación"),
        "s2": tablet.session(c1, "coffee_production", "2019-07-01T09:00:00-05:00"),
        "s3": tablet.session(c2, "financial_skills", "2020-01-15T09:00:00-05:00",
                             status="planned"),
        "s4": tablet.session(c2, "coffee_production", "2020-02-01T09:00:00-05:00"),
        "s5": tablet.session(c1, "coffee_production", "2019-05-05T09:00:00-05:00",
                             status="cancelled"),
        "s6": tablet.session(c1, "school_environmental_education", "2019-09-09T08:00:00-05:00",
                             headcount={"female": 12, "male": 10}),
        "s10": tablet.session(c1, "coffee_production", "2018-12-31T23:30:00-05:00"),
        "s7": far.session(c3, "school_environmental_education", "2020-10-10T08:00:00-05:00",
                          headcount={"female": 5, "male": 3}),
        "s8": far.session(c3, "coffee_production", "2018-06-06T09:00:00-05:00"),
        "s9": far.session(c3, "coffee_production", "2021-01-10T09:00:00-05:00"),
    }  # fmt: skip
    for who in ("ana", "rosa", "jose"):
        tablet.attend(sessions["s1"], people[who])
    tablet.attend(sessions["s2"], people["luis"])
    tablet.attend(sessions["s2"], people["pat"])
    tablet.attend(sessions["s2"], people["rosa"], role="facilitator")
    tablet.attend(sessions["s3"], people["jose"])
    tablet.attend(sessions["s5"], people["luis"])
    tablet.attend(sessions["s10"], people["luis"])
    far.attend(sessions["s8"], people["zoila"])
    far.attend(sessions["s8"], people["tomas"])
    far.attend(sessions["s9"], people["zoila"])
    assert {r["status"] for r in tablet.sync() + far.sync()} == {"applied"}
    # The colleague's tablet syncs later: José again at s1 (folded), and Ana's double.
    second.attend(sessions["s1"], people["jose"])
    second.attend(sessions["s2"], people["ana2"])
    assert [r["status"] for r in second.sync()] == ["applied", "merged", "applied"]
    # A coordinator merged the double into Ana (the registry's merge does this).
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE person SET merged_into = :kept WHERE id = :double"),
            {"kept": uuid.UUID(people["ana"]).hex if _sqlite(engine) else people["ana"],
             "double": uuid.UUID(people["ana2"]).hex if _sqlite(engine) else people["ana2"]},
        )  # fmt: skip
    return {
        "sectors": (s1, s2),
        "communities": (c1, c2, c3),
        "people": people,
        "sessions": sessions,
        "worker": worker,
        "far_worker": far_worker,
        "coordinator": world.user("coordinator"),
    }


def _sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def report(caller: Caller, **params: Any) -> dict[str, Any]:
    answer = caller.get("/reports/attendance", params={**PERIOD, **params})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def figures(body: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (
        body["participants"],
        body["attendances"],
        body["sessions"],
        body["women"],
        body["men"],
    )


def headcount(body: dict[str, Any]) -> tuple[int, int, int, int]:
    found = body["headcount"]
    return found["sessions"], found["people"], found["women"], found["men"]


# ---------------------------------------------------------------- the report


def test_the_totals_count_each_person_once(programme: dict[str, Any]) -> None:
    """Participants: Ana (and her merged double), Rosa, José, Luis, Pat, Zoila, Tomás.
    Sessions: s1, s2, s3 (not marked held, but attended), s4 (held, empty), s8, s10."""
    body = report(programme["coordinator"])
    assert figures(body) == (7, 10, 6, 3, 3)
    assert body["women_share"] == 0.429
    assert headcount(body) == (2, 30, 17, 13)
    assert body["from"] == "2018-01-01"
    assert body["group_by"] is None
    assert body["groups"] == []


def test_per_program(programme: dict[str, Any]) -> None:
    groups = {g["key"]: g for g in report(programme["coordinator"], group_by="program")["groups"]}
    assert figures(groups["coffee_production"]) == (7, 9, 5, 3, 3)
    assert figures(groups["financial_skills"]) == (1, 1, 1, 0, 1)
    school = groups["school_environmental_education"]
    assert figures(school) == (0, 0, 0, 0, 0)
    assert headcount(school) == (2, 30, 17, 13)
    assert school["women_share"] is None


def test_per_sex_headcounts_split_by_sex(programme: dict[str, Any]) -> None:
    body = report(programme["coordinator"], group_by="sex")
    groups = {g["key"]: g for g in body["groups"]}
    assert set(groups) == {"female", "male", "unknown"}
    assert figures(groups["female"]) == (3, 4, 3, 3, 0)
    assert headcount(groups["female"]) == (2, 17, 17, 0)
    assert figures(groups["male"]) == (3, 5, 5, 0, 3)
    assert headcount(groups["male"]) == (2, 13, 0, 13)
    assert figures(groups["unknown"]) == (1, 1, 1, 0, 0)
    assert figures(body) == (7, 10, 6, 3, 3)


def test_per_sector_and_community(programme: dict[str, Any]) -> None:
    s1, s2 = programme["sectors"]
    body = report(programme["coordinator"], group_by="sector")
    groups = {g["key"]: g for g in body["groups"]}
    assert figures(groups[s1]) == (5, 8, 5, 2, 2)
    assert headcount(groups[s1]) == (1, 22, 12, 10)
    assert figures(groups[s2]) == (2, 2, 1, 1, 1)
    assert headcount(groups[s2]) == (1, 8, 5, 3)
    assert [g["label"].split(" — ")[0] for g in body["groups"]] == ["AM-01", "AM-02"]
    communities = report(programme["coordinator"], group_by="community")["groups"]
    by_name = {g["label"]: figures(g) for g in communities}
    assert by_name == {
        "Nueva Alianza": (5, 7, 3, 2, 2),
        "Shampuyacu": (1, 1, 2, 0, 1),
        "Yarau": (2, 2, 1, 1, 1),
    }


def test_per_month_in_peru_time(programme: dict[str, Any]) -> None:
    """s10 starts 23:30 on 31 December 2018 in Peru: 2019 in UTC, December here."""
    groups = report(programme["coordinator"], group_by="month")["groups"]
    found = [(g["key"], g["sessions"], g["participants"], g["headcount"]["people"]) for g in groups]
    assert found == [
        ("2018-06", 1, 2, 0),
        ("2018-12", 1, 1, 0),
        ("2019-03", 1, 3, 0),
        ("2019-07", 1, 3, 0),
        ("2019-09", 0, 0, 22),
        ("2020-01", 1, 1, 0),
        ("2020-02", 1, 0, 0),
        ("2020-10", 0, 0, 8),
    ]  # fmt: skip
    only_2018 = report(programme["coordinator"], **{"from": "2018-01-01", "to": "2018-12-31"})
    assert figures(only_2018) == (3, 3, 2, 1, 2)


def test_filters_narrow_the_figures(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    c3 = programme["communities"][2]
    assert figures(report(coordinator, program="coffee_production")) == (7, 9, 5, 3, 3)
    assert figures(report(coordinator, community_id=c3)) == (2, 2, 1, 1, 1)
    assert figures(report(coordinator, sector_id=programme["sectors"][0])) == (5, 8, 5, 2, 2)
    everything = coordinator.get("/reports/attendance").json()
    assert figures(everything) == (7, 11, 7, 3, 3)  # s9 of 2021 too


def test_an_extension_worker_counts_their_communities(programme: dict[str, Any]) -> None:
    body = report(programme["worker"])
    assert figures(body) == (5, 8, 5, 2, 2)
    assert headcount(body) == (1, 22, 12, 10)
    c1 = programme["communities"][0]
    far = programme["far_worker"].get("/reports/attendance", params={"community_id": c1})
    assert_problem(far, 404, "not_found")


def test_the_report_as_csv(programme: dict[str, Any]) -> None:
    answer = programme["coordinator"].get(
        "/reports/attendance", params={**PERIOD, "group_by": "program", "format": "csv"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.content.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [row["group"] for row in rows] == [
        "coffee_production",
        "financial_skills",
        "school_environmental_education",
        "total",
    ]
    total = rows[-1]
    # Exact in the CSV, where the JSON answer says 0.429.
    assert (total["participants"], total["women"]) == ("7", "3")
    assert float(total["women_share"]) == 3 / 7
    assert rows[2]["headcount_people"] == "30"


# ---------------------------------------------------------------- the lists


def test_sessions_carry_their_counts_and_facilitators(programme: dict[str, Any]) -> None:
    answer = programme["coordinator"].get("/training-sessions", params=PERIOD)
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["total"] == 9  # s9 is 2021
    by_id = {item["id"]: item for item in page["items"]}
    sessions = programme["sessions"]
    s1 = by_id[sessions["s1"]]
    assert (s1["attendees"], s1["women"], s1["men"], s1["counted_by"]) == (3, 2, 1, "attendance")
    assert s1["community_name"] == "Nueva Alianza"
    assert s1["facilitators"] == [
        {
            "user_id": str(programme["worker"].user_id),
            "person_id": None,
            "name": programme["worker"].username.title(),
            "role": "facilitador",
        }
    ]
    s2 = by_id[sessions["s2"]]
    assert (s2["attendees"], s2["women"], s2["men"]) == (3, 1, 1)
    assert [f["name"] for f in s2["facilitators"]] == ["Rosa Guevara"]
    s6 = by_id[sessions["s6"]]
    assert (s6["attendees"], s6["women"], s6["men"], s6["counted_by"]) == (22, 12, 10, "headcount")
    assert [item["starts_at"] for item in page["items"]] == sorted(
        (item["starts_at"] for item in page["items"]), reverse=True
    )


def test_session_filters(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    sessions = programme["sessions"]

    def ids(**params: Any) -> set[str]:
        answer = coordinator.get("/training-sessions", params=params)
        assert answer.status_code == 200, answer.text
        return {item["id"] for item in answer.json()["items"]}

    assert ids(program="financial_skills") == {sessions["s3"]}
    assert ids(status="cancelled") == {sessions["s5"]}
    assert ids(community_id=programme["communities"][1]) == {sessions["s3"], sessions["s4"]}
    assert ids(sector_id=programme["sectors"][1]) == {sessions[s] for s in ("s7", "s8", "s9")}
    assert ids(**{"from": "2021-01-01"}) == {sessions["s9"]}
    page = coordinator.get("/training-sessions", params={"limit": 2, "offset": 2}).json()
    assert (page["total"], len(page["items"])) == (10, 2)
    assert programme["far_worker"].get("/training-sessions").json()["total"] == 3


def test_attendance_rows_carry_session_and_person_without_personal_data(
    programme: dict[str, Any],
) -> None:
    coordinator: Caller = programme["coordinator"]
    people, sessions = programme["people"], programme["sessions"]
    page = coordinator.get("/attendance", params={"session_id": sessions["s1"]}).json()
    assert page["total"] == 3  # José once, though two tablets recorded him
    names = [row["person"]["given_names"] for row in page["items"]]
    assert names == ["Rosa", "José", "Ana"]  # by surname: Guevara, Núñez, Tapia
    row = page["items"][0]
    assert row["session"]["id"] == sessions["s1"]
    assert row["session"]["program"] == "coffee_production"
    assert "doc_number" not in row["person"]
    assert "phone" not in row["person"]
    # Ana's history takes in the double merged into her.
    ana = coordinator.get("/attendance", params={"person_id": people["ana"]}).json()
    assert {r["session"]["id"] for r in ana["items"]} == {sessions["s1"], sessions["s2"]}
    women = coordinator.get("/attendance", params={"sex": "female", **PERIOD}).json()
    assert women["total"] == 5  # Ana s1, Ana's double s2, Rosa s1, Rosa s2 (facilitator), Zoila s8


def test_one_persons_history_oldest_first(programme: dict[str, Any]) -> None:
    people, sessions = programme["people"], programme["sessions"]
    answer = programme["worker"].get(f"/people/{people['luis']}/attendance")
    assert answer.status_code == 200, answer.text
    history = [row["session"]["id"] for row in answer.json()["items"]]
    assert history == [sessions["s10"], sessions["s5"], sessions["s2"]]
    assert_problem(programme["far_worker"].get(f"/people/{people['luis']}/attendance"), 404)
    assert_problem(programme["worker"].get(f"/people/{uuid.uuid4()}/attendance"), 404)


def test_every_list_as_csv(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    people = programme["people"]
    lists: list[tuple[str, dict[str, Any], int]] = [
        ("/training-sessions", {}, 10),
        ("/training-sessions", {"limit": 3}, 3),
        ("/attendance", {}, 13),
        ("/attendance", {"sex": "male"}, 6),
        (f"/people/{people['luis']}/attendance", {}, 3),
    ]
    for path, params, count in lists:
        answer = coordinator.get(path, params={**params, "format": "csv"})
        assert answer.status_code == 200, answer.text
        assert answer.content.startswith(BOM), path
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert len(rows) == count + 1, (path, params, rows)
    text = coordinator.get("/attendance", params={"format": "csv"}).content.decode("utf-8-sig")
    assert "Núñez" in text
    assert "Tomás" in text


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/reports/attendance", {"group_by": "gender"}, "group_by"),
        ("/reports/attendance", {"from": "2019-13-01"}, "from"),
        ("/reports/attendance", {"programme": "coffee_production"}, "programme"),
        ("/reports/attendance", {"format": "xlsx"}, "format"),
        ("/training-sessions", {"status": "done"}, "status"),
        ("/training-sessions", {"to": "2020-01-01T00:00:00"}, "to"),
        ("/attendance", {"sex": "f"}, "sex"),
        ("/attendance", {"person": "x"}, "person"),
        ("/attendance", {"limit": 0}, "limit"),
    ],
)
def test_bad_parameters_are_a_422_naming_them(
    programme: dict[str, Any], path: str, params: dict[str, Any], field: str
) -> None:
    body = assert_problem(programme["coordinator"].get(path, params=params), 422)
    assert [error["field"] for error in body["errors"]] == [field]


def test_a_backwards_period_is_a_422_also_for_csv(programme: dict[str, Any]) -> None:
    backwards = {"from": "2020-01-02", "to": "2020-01-01"}
    for path in ("/reports/attendance", "/training-sessions", "/attendance"):
        for fmt in ("json", "csv"):
            answer = programme["coordinator"].get(path, params={**backwards, "format": fmt})
            assert_problem(answer, 422, "validation_failed")


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_ids_out_of_scope_are_a_404_before_anything_is_sent(
    programme: dict[str, Any], fmt: str
) -> None:
    """Another worker's community, sector, session or person, or one that does not
    exist, is absent (404), not an empty list that reads as "nobody trained there"."""
    far: Caller = programme["far_worker"]
    c1 = programme["communities"][0]
    s1 = programme["sectors"][0]
    session, person = programme["sessions"]["s1"], programme["people"]["ana"]
    for path, params in [
        ("/training-sessions", {"community_id": c1}),
        ("/training-sessions", {"sector_id": s1}),
        ("/attendance", {"session_id": session}),
        ("/attendance", {"person_id": person}),
        ("/attendance", {"community_id": str(uuid.uuid4())}),
        ("/reports/attendance", {"sector_id": s1}),
    ]:
        assert_problem(far.get(path, params={**params, "format": fmt}), 404, "not_found")
    coordinator: Caller = programme["coordinator"]
    unknown = {"sector_id": str(uuid.uuid4()), "format": fmt}
    assert_problem(coordinator.get("/training-sessions", params=unknown), 404)
    assert coordinator.get("/attendance", params={"session_id": session}).status_code == 200


def test_rangers_have_no_business_here(programme: dict[str, Any], world: World) -> None:
    ranger = world.user("ranger", sector_ids=[programme["sectors"][0]])
    for path in ("/training-sessions", "/attendance", "/reports/attendance"):
        assert_problem(ranger.get(path), 403, "forbidden")
    assert_problem(ranger.get(f"/people/{programme['people']['ana']}/attendance"), 403)
