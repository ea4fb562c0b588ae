"""Families' agreements: lists, search, renewals due, one agreement with its
history, and the coverage report, against a small programme counted by hand in
``programme`` below. Dates are relative to today in Peru, as the server counts them.

Community A (Nueva Alianza, AM-01): households H-A1..H-A4 live, H-A5 deleted.
  a1   H-A1  José Núñez   active, until today+10     5.0 / 3.0 / 1.5   due in 30 and 60
  a2   H-A2  Ana Tapia    active, until yesterday    (4 / 2 / 1)       reads expired: lapsed
  a3o  H-A3  Rosa Guevara expired, until today-30    (9 / 9 / 9)       renewed by a3n
  a3n  H-A3  Rosa Guevara active, until today+45     2.5 / 1.25 / 0.75 due in 60; renews a3o
  a4   H-A4  Luis Mego    draft, until today+5       doesn't count
  a5   H-A4  Luis Mego    terminated                 doesn't count
  a6   H-A1  José Núñez   active, 100 ha, deleted    doesn't count
  → 4 households, 2 under active agreement (H-A1, H-A3): 50.0 %; 7.5 / 4.25 / 2.25 ha.
Community B (Shampuyacu, AM-01): H-B1, H-B2.
  b1   H-B1  Marco Díaz   active, until today+20     (10 / 6 / 3)      renewed early by b2
  b2   H-B1  Marco Díaz   active, until today+385    12 / 7 / 4        renews b1
  → 2 households, 1 covered: 50.0 %; the land once, as b2 says: 12 / 7 / 4; nothing due.
Community C (Yarau, AM-02, another extension worker): H-C1.
  c1   H-C1  Zoila Dekentai active, until today+100  3 / 2 / 1
Community D (Aguas Verdes, AM-01): H-D1, H-D2, nobody signed → 0.0 %.
Community E (Playa Hermosa, AM-02): nothing at all → no coverage (null).
Sector AM-03 holds no community.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from schemas.agreements import AgreementQuery, AgreementReportQuery
from schemas.enums import Role
from schemas.records import AgreementStatus
from sync.accounts.principal import Principal
from sync.people import agreement_report, agreements
from sync.platform.database import transaction
from tests.conftest import Caller, World, assert_problem
from tests.sync_support import change, push

BOM = b"\xef\xbb\xbf"
TODAY = datetime.now(ZoneInfo("America/Lima")).date()
DOC_NUMBER, PHONE = "44556677", "987654321"


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


class Recorder:
    """An extension worker's tablet: records pile up offline, then go in one push."""

    def __init__(self, device: Caller) -> None:
        self.device = device
        self.seq = 0
        self.outbox: list[dict[str, Any]] = []

    def send(self, entity: str, record_id: str, op: str, fields: dict[str, Any], **kw: Any) -> str:
        self.seq += 1
        self.outbox.append(change(entity, record_id, op, self.seq, fields, **kw))
        return record_id

    def record(self, entity: str, fields: dict[str, Any]) -> str:
        return self.send(entity, str(uuid.uuid4()), "create", fields)

    def person(self, community: str, given: str, surname: str) -> str:
        fields = {"given_names": given, "paternal_surname": surname, "community_id": community}
        return self.record(
            "person", {**fields, "doc_type": "dni", "doc_number": DOC_NUMBER, "phone": PHONE}
        )

    def household(self, community: str, code: str) -> str:
        return self.record("household", {"code": code, "community_id": community})

    def agreement(
        self, household: str, signatory: str, community: str, code: str, status: str,
        until: int | None, areas: tuple[float, float, float] | None = None, **fields: Any,
    ) -> str:  # fmt: skip
        body: dict[str, Any] = {
            "code": code,
            "household_id": household,
            "signatory_person_id": signatory,
            "community_id": community,
            "status": status,
            "signed_on": day(until - 365) if until is not None else None,
            "valid_from": day(until - 365) if until is not None else None,
            "valid_until": day(until) if until is not None else None,
            "commitments": ["no_primary_forest_clearing"],
            "benefits": ["technical_assistance"],
        }
        if areas is not None:
            total, forest, coffee = areas
            body |= {"area_total_ha": total, "area_forest_ha": forest, "area_coffee_ha": coffee}
        return self.record("agreement", {**body, **fields})

    def sync(self) -> list[str]:
        results = push(self.device, *self.outbox)["results"]
        self.outbox = []
        return [result["status"] for result in results]


@pytest.fixture
def programme(world: World) -> dict[str, Any]:
    s1, s2, s3 = (world.sector(code)["id"] for code in ("AM-01", "AM-02", "AM-03"))
    a = world.community(s1, "Nueva Alianza")["id"]
    b = world.community(s1, "Shampuyacu")["id"]
    c = world.community(s2, "Yarau")["id"]
    d = world.community(s1, "Aguas Verdes")["id"]
    e = world.community(s2, "Playa Hermosa")["id"]
    worker = world.user("extension_worker", community_ids=[a, b, d])
    far_worker = world.user("extension_worker", community_ids=[c])
    tablet, far = Recorder(world.device(worker)), Recorder(world.device(far_worker))

    jose = tablet.person(a, "José", "Núñez")
    ana = tablet.person(a, "Ana", "Tapia")
    rosa = tablet.person(a, "Rosa", "Guevara")
    luis = tablet.person(a, "Luis", "Mego")
    marco = tablet.person(b, "Marco", "Díaz")
    zoila = far.person(c, "Zoila", "Dekentai")
    h = {code: tablet.household(a, code) for code in ("H-A1", "H-A2", "H-A3", "H-A4", "H-A5")}
    h |= {code: tablet.household(b, code) for code in ("H-B1", "H-B2")}
    h |= {code: tablet.household(d, code) for code in ("H-D1", "H-D2")}
    h["H-C1"] = far.household(c, "H-C1")
    ids = {
        "a1": tablet.agreement(h["H-A1"], jose, a, "AC-001", "active", 10, (5.0, 3.0, 1.5)),
        "a2": tablet.agreement(h["H-A2"], ana, a, "AC-002", "active", -1, (4, 2, 1)),
        "a3o": tablet.agreement(h["H-A3"], rosa, a, "AC-003", "expired", -30, (9, 9, 9)),
        "a4": tablet.agreement(h["H-A4"], luis, a, "AC-004", "draft", 5, (1, 1, 1)),
        "a5": tablet.agreement(h["H-A4"], luis, a, "AC-005", "terminated", 200, (1, 1, 1)),
        "a6": tablet.agreement(h["H-A1"], jose, a, "AC-006", "active", 300, (100, 100, 100)),
        "b1": tablet.agreement(h["H-B1"], marco, b, "SH-001", "active", 20, (10, 6, 3)),
        "c1": far.agreement(h["H-C1"], zoila, c, "YA-001", "active", 100, (3, 2, 1)),
    }  # fmt: skip
    ids["a3n"] = tablet.agreement(
        h["H-A3"], rosa, a, "AC-007", "active", 45, (2.5, 1.25, 0.75),
        renews_agreement_id=ids["a3o"],
    )  # fmt: skip
    ids["b2"] = tablet.agreement(
        h["H-B1"], marco, b, "SH-002", "active", 385, (12, 7, 4), renews_agreement_id=ids["b1"]
    )
    assert set(tablet.sync() + far.sync()) == {"applied"}
    # Registered by mistake, then deleted on the tablet.
    tablet.send("household", h["H-A5"], "delete", {}, base_version=1)
    tablet.send("agreement", ids["a6"], "delete", {}, base_version=1)
    assert tablet.sync() == ["applied", "applied"]
    return {
        "sectors": (s1, s2, s3),
        "communities": {"A": a, "B": b, "C": c, "D": d, "E": e},
        "households": h,
        "agreements": ids,
        "tablet": tablet,
        "worker": worker,
        "far_worker": far_worker,
        "coordinator": world.user("coordinator"),
    }


def listed(caller: Caller, **params: Any) -> list[str]:
    answer = caller.get("/agreements", params=params)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def named(programme: dict[str, Any], *names: str) -> set[str]:
    return {programme["agreements"][name] for name in names}


# ---------------------------------------------------------------- the report

FIGURES = (
    "households", "households_with_active_agreement", "coverage_share", "hectares_total",
    "hectares_forest", "hectares_coffee", "renewals_due_30", "renewals_due_60", "lapsed",
)  # fmt: skip


def figures(body: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(body[name] for name in FIGURES)


def report(caller: Caller, **params: Any) -> dict[str, Any]:
    answer = caller.get("/reports/agreements", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_coverage_per_community_counted_by_hand(programme: dict[str, Any]) -> None:
    body = report(programme["coordinator"])
    assert body["group_by"] == "community"
    assert body["as_of"] == TODAY.isoformat()
    groups = {group["label"]: figures(group) for group in body["groups"]}
    assert groups == {
        "Nueva Alianza": (4, 2, 0.5, 7.5, 4.25, 2.25, 1, 2, 1),
        "Shampuyacu": (2, 1, 0.5, 12.0, 7.0, 4.0, 0, 0, 0),
        "Yarau": (1, 1, 1.0, 3.0, 2.0, 1.0, 0, 0, 0),
        "Aguas Verdes": (2, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0),
        "Playa Hermosa": (0, 0, None, 0.0, 0.0, 0.0, 0, 0, 0),
    }
    assert [group["label"] for group in body["groups"]] == sorted(groups)  # by name
    assert figures(body) == (9, 4, 0.444, 22.5, 13.25, 7.25, 1, 2, 1)


def test_coverage_per_sector_every_sector_shown(programme: dict[str, Any]) -> None:
    s1, s2, s3 = programme["sectors"]
    body = report(programme["coordinator"], group_by="sector")
    assert [(group["key"], group["label"]) for group in body["groups"]] == [
        (s1, "AM-01 — Sector AM-01"),
        (s2, "AM-02 — Sector AM-02"),
        (s3, "AM-03 — Sector AM-03"),
    ]
    by_key = {group["key"]: figures(group) for group in body["groups"]}
    assert by_key[s1] == (8, 3, 0.375, 19.5, 11.25, 6.25, 1, 2, 1)
    assert by_key[s2] == (1, 1, 1.0, 3.0, 2.0, 1.0, 0, 0, 0)
    assert by_key[s3] == (0, 0, None, 0.0, 0.0, 0.0, 0, 0, 0)
    assert figures(body) == (9, 4, 0.444, 22.5, 13.25, 7.25, 1, 2, 1)


def test_report_filters_and_scope(programme: dict[str, Any]) -> None:
    s1, s2, _ = programme["sectors"]
    communities = programme["communities"]
    coordinator: Caller = programme["coordinator"]
    only_b = report(coordinator, community_id=communities["B"])
    assert [group["label"] for group in only_b["groups"]] == ["Shampuyacu"]
    assert figures(only_b) == (2, 1, 0.5, 12.0, 7.0, 4.0, 0, 0, 0)
    by_sector = report(coordinator, sector_id=s2, group_by="sector")
    assert [group["key"] for group in by_sector["groups"]] == [s2]
    # An extension worker: their communities, and the sectors those lie in.
    mine = report(programme["worker"])
    assert [group["label"] for group in mine["groups"]] == [
        "Aguas Verdes",
        "Nueva Alianza",
        "Shampuyacu",
    ]
    assert figures(mine) == (8, 3, 0.375, 19.5, 11.25, 6.25, 1, 2, 1)
    assert [g["key"] for g in report(programme["worker"], group_by="sector")["groups"]] == [s1]
    far = programme["far_worker"].get(
        "/reports/agreements", params={"community_id": communities["A"]}
    )
    assert_problem(far, 404, "not_found")


def test_the_report_as_csv(programme: dict[str, Any]) -> None:
    answer = programme["coordinator"].get("/reports/agreements", params={"format": "csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.content.startswith(BOM)
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [row["label"] for row in rows] == [
        "Aguas Verdes", "Nueva Alianza", "Playa Hermosa", "Shampuyacu", "Yarau", "",
    ]  # fmt: skip
    total = rows[-1]
    # Exact in the CSV, where the JSON answer says 0.444.
    assert (total["group"], total["households"]) == ("total", "9")
    assert float(total["coverage_share"]) == 4 / 9
    assert rows[2]["coverage_share"] == ""
    assert rows[1]["hectares_forest"] == "4.25"


def coordinator_principal() -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        username="coordinator",
        role=Role.coordinator,
        family_id=None,
        device_id=None,
        sector_ids=frozenset(),
        community_ids=frozenset(),
    )


def test_eleven_days_on_the_unrenewed_agreement_has_lapsed(
    programme: dict[str, Any], engine: Engine
) -> None:
    """Nothing stored changes: a1 (until today+10) reads expired from today+11."""
    later = TODAY + timedelta(days=11)
    principal = coordinator_principal()
    with transaction(engine, write=False) as session:
        found = agreement_report.agreement_report(
            session, principal=principal, query=AgreementReportQuery(), today=later
        )
        page = agreements.list_agreements(
            session,
            principal=principal,
            query=AgreementQuery(status=AgreementStatus.expired),
            today=later,
        )
    nueva_alianza = next(g for g in found.groups if g.label == "Nueva Alianza")
    # H-A3 alone is covered; a1 and a2 lapsed; a3n (until today+45) is 34 days away.
    assert figures(nueva_alianza.model_dump()) == (4, 1, 0.25, 2.5, 1.25, 0.75, 0, 1, 2)
    assert {str(item.id) for item in page.items} == named(programme, "a1", "a2", "a3o")
    assert found.as_of == later


# ---------------------------------------------------------------- the lists


def test_expired_is_computed_on_read(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    page = coordinator.get("/agreements").json()
    assert page["total"] == 9  # a6 is deleted
    by_id = {item["id"]: item for item in page["items"]}
    a2 = by_id[programme["agreements"]["a2"]]
    assert (a2["status"], a2["recorded_status"]) == ("expired", "active")
    assert set(listed(coordinator, status="expired")) == named(programme, "a2", "a3o")
    assert set(listed(coordinator, status="active")) == named(
        programme, "a1", "a3n", "b1", "b2", "c1"
    )
    assert set(listed(coordinator, status="draft")) == named(programme, "a4")
    assert set(listed(coordinator, status="terminated")) == named(programme, "a5")


def test_list_items_carry_household_signatory_and_renewal(programme: dict[str, Any]) -> None:
    ids = programme["agreements"]
    answer = programme["coordinator"].get("/agreements", params={"q": "rosa"})
    by_id = {item["id"]: item for item in answer.json()["items"]}
    old, new = by_id[ids["a3o"]], by_id[ids["a3n"]]
    assert old["renewed_by_id"] == ids["a3n"]
    assert new["renews_agreement_id"] == ids["a3o"]
    assert new["renewed_by_id"] is None
    assert new["household"] == {"id": programme["households"]["H-A3"], "code": "H-A3"}
    assert new["signatory"]["given_names"] == "Rosa"
    assert set(new["signatory"]) == {"id", "given_names", "paternal_surname", "maternal_surname"}
    assert (new["community_name"], new["sector_id"]) == ("Nueva Alianza", programme["sectors"][0])
    assert new["area_total_ha"] == 2.5
    assert DOC_NUMBER not in answer.text
    assert PHONE not in answer.text


def test_newest_first_and_paging(programme: dict[str, Any]) -> None:
    page = programme["coordinator"].get("/agreements").json()
    signed = [item["signed_on"] for item in page["items"]]
    assert signed == sorted(signed, reverse=True)
    assert page["items"][0]["id"] == programme["agreements"]["b2"]
    second = programme["coordinator"].get("/agreements", params={"limit": 2, "offset": 2}).json()
    assert (second["total"], second["limit"], second["offset"]) == (9, 2, 2)
    assert [item["id"] for item in second["items"]] == [item["id"] for item in page["items"][2:4]]


def test_place_filters(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    communities = programme["communities"]
    assert set(listed(coordinator, community_id=communities["B"])) == named(programme, "b1", "b2")
    assert set(listed(coordinator, sector_id=programme["sectors"][1])) == named(programme, "c1")
    assert listed(coordinator, community_id=communities["D"]) == []


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("nunez", {"a1"}),
        ("JOSE", {"a1"}),
        ("José Núñez", {"a1"}),
        ("jose tapia", set()),  # every word must appear
        ("rosa guevara", {"a3o", "a3n"}),
        ("ac-002", {"a2"}),  # the agreement's code
        ("h-a4", {"a4", "a5"}),  # the household's code
        ("mego  H-A4", {"a4", "a5"}),
        ("100%", set()),  # LIKE wildcards are text
    ],
)
def test_search_ignores_accents_and_case(
    programme: dict[str, Any], q: str, expected: set[str]
) -> None:
    assert set(listed(programme["coordinator"], q=q)) == named(programme, *expected)


def test_renewals_due_soonest_first(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    ids = programme["agreements"]
    # b1 ends in 20 days but b2 renews it already; a4 is a draft.
    assert listed(coordinator, renewal_due_within=30) == [ids["a1"]]
    assert listed(coordinator, renewal_due_within=60) == [ids["a1"], ids["a3n"]]
    assert listed(coordinator, renewal_due_within=366) == [ids["a1"], ids["a3n"], ids["c1"]]
    assert listed(coordinator, renewal_due_within=10) == [ids["a1"]]  # today+10 included
    assert listed(coordinator, renewal_due_within=9) == []
    both = listed(coordinator, renewal_due_within=366, community_id=programme["communities"]["C"])
    assert both == [ids["c1"]]


def test_every_match_as_csv(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    for params, count in (({}, 9), ({"limit": 3}, 3), ({"status": "expired"}, 2)):
        answer = coordinator.get("/agreements", params={**params, "format": "csv"})
        assert answer.status_code == 200, answer.text
        assert answer.content.startswith(BOM)
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert len(rows) == count, (params, rows)
    text = coordinator.get("/agreements", params={"format": "csv"}).content.decode("utf-8-sig")
    assert "Núñez" in text
    assert DOC_NUMBER not in text
    assert PHONE not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    a2 = next(row for row in rows if row["agreement_id"] == programme["agreements"]["a2"])
    assert (a2["status"], a2["recorded_status"], a2["household_code"]) == (
        "expired",
        "active",
        "H-A2",
    )


# ---------------------------------------------------------------- one agreement


def test_detail_links_the_renewal_both_ways(programme: dict[str, Any]) -> None:
    ids = programme["agreements"]
    coordinator: Caller = programme["coordinator"]
    answer = coordinator.get(f"/agreements/{ids['a3n']}")
    assert answer.status_code == 200, answer.text
    new = answer.json()
    assert new["renews"] == {
        "id": ids["a3o"],
        "code": "AC-003",
        "status": "expired",
        "valid_from": day(-395),
        "valid_until": day(-30),
    }
    assert new["renewed_by"] is None
    assert new["signatory"]["paternal_surname"] == "Guevara"
    assert DOC_NUMBER not in answer.text
    assert PHONE not in answer.text
    old = coordinator.get(f"/agreements/{ids['a3o']}").json()
    assert old["renewed_by"]["id"] == ids["a3n"]
    assert old["renewed_by"]["status"] == "active"
    assert old["renews"] is None
    lapsed = coordinator.get(f"/agreements/{ids['a2']}").json()
    assert lapsed["status"] == "expired"


def test_detail_history_after_a_tablet_update(programme: dict[str, Any]) -> None:
    ids = programme["agreements"]
    tablet: Recorder = programme["tablet"]
    commitments = ["no_primary_forest_clearing", "agroforestry"]
    tablet.send("agreement", ids["a1"], "update", {"commitments": commitments}, base_version=1)
    assert tablet.sync() == ["applied"]
    detail = programme["coordinator"].get(f"/agreements/{ids['a1']}").json()
    assert detail["version"] == 2
    assert detail["commitments"] == commitments
    first, second = detail["history"]
    assert (first["version"], first["op"], second["version"], second["op"]) == (
        1,
        "create",
        2,
        "update",
    )
    assert second["changes"] == {
        "commitments": {"before": ["no_primary_forest_clearing"], "after": commitments}
    }
    worker: Caller = programme["worker"]
    assert second["user_id"] == str(worker.user_id)
    assert second["user_name"] == worker.username.title()
    assert second["device_id"] == tablet.device.tokens["device_id"]
    assert second["device_label"] == "Tablet"
    assert first["changes"]["code"] == {"before": None, "after": "AC-001"}


def test_deleted_and_unknown_agreements_are_404(programme: dict[str, Any]) -> None:
    coordinator: Caller = programme["coordinator"]
    assert_problem(coordinator.get(f"/agreements/{programme['agreements']['a6']}"), 404)
    assert_problem(coordinator.get(f"/agreements/{uuid.uuid4()}"), 404, "not_found")


# ---------------------------------------------------------------- scope and bad input


def test_an_extension_worker_sees_their_communities_only(programme: dict[str, Any]) -> None:
    ids = programme["agreements"]
    far: Caller = programme["far_worker"]
    assert listed(far) == [ids["c1"]]
    # Another worker's community is not there to filter by (out of scope: 404).
    answer = far.get("/agreements", params={"community_id": programme["communities"]["A"]})
    assert_problem(answer, 404, "not_found")
    assert listed(far, q="nunez") == []
    assert listed(far, renewal_due_within=60) == []
    assert_problem(far.get(f"/agreements/{ids['a1']}"), 404, "not_found")
    assert far.get(f"/agreements/{ids['c1']}").status_code == 200
    worker: Caller = programme["worker"]
    assert len(listed(worker)) == 8
    assert_problem(worker.get(f"/agreements/{ids['c1']}"), 404)


def test_rangers_get_403(programme: dict[str, Any], world: World) -> None:
    for role in ("ranger", "ranger_lead"):
        ranger = world.user(role, sector_ids=[programme["sectors"][0]])
        a1 = programme["agreements"]["a1"]
        for path in ("/agreements", f"/agreements/{a1}", "/reports/agreements"):
            assert_problem(ranger.get(path), 403, "forbidden")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/agreements", {"satus": "active"}, "satus"),
        ("/agreements", {"status": "lapsed"}, "status"),
        ("/agreements", {"renewal_due_within": 0}, "renewal_due_within"),
        ("/agreements", {"renewal_due_within": 367}, "renewal_due_within"),
        ("/agreements", {"limit": 501}, "limit"),
        ("/agreements", {"format": "xlsx"}, "format"),
        ("/reports/agreements", {"group_by": "district"}, "group_by"),
        ("/reports/agreements", {"status": "active"}, "status"),
    ],
)
def test_bad_parameters_are_a_422_naming_them(
    programme: dict[str, Any], path: str, params: dict[str, Any], field: str
) -> None:
    body = assert_problem(programme["coordinator"].get(path, params=params), 422)
    assert [error["field"] for error in body["errors"]] == [field]
