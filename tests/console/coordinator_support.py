"""A small programme for the coordinator's pages, built as the tablets send it: two
communities, people with and without accents (José Núñez registered twice, the second
time without them and with the same DNI), coffee and school sessions in 2019 and 2020,
households and agreements; and the helpers to read figures off a page."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent

from tests.conftest import Caller, World
from tests.people_support import Recorder

DNI = "44556677"
PHONE = "987654321"
TODAY = datetime.now(ZoneInfo("America/Lima")).date()
PAGES = (
    "/console/programme",
    "/console/programme/attendance.csv",
    "/console/programme/agreements.csv",
    "/console/sessions",
    "/console/sessions.csv",
    "/console/attendance.csv",
    "/console/people",
    "/console/people.csv",
    "/console/people/duplicates",
    "/console/agreements",
    "/console/agreements.csv",
    "/console/conflicts",
)


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def build(world: World) -> dict[str, Any]:
    """The programme; what the tests name in it."""
    sector = world.sector("AM-01")["id"]
    alianza = world.community(sector, "Nueva Alianza")["id"]
    yarau = world.community(sector, "Yarau")["id"]
    worker = world.user("extension_worker", community_ids=[alianza, yarau])
    colleague = world.user("extension_worker", community_ids=[alianza])
    tablet, second = Recorder(world.device(worker)), Recorder(world.device(colleague))
    people = {
        "jose": tablet.person(
            alianza, "José", "Núñez", "male", maternal_surname="Tafur", birth_year=1980,
            doc_type="dni", doc_number=DNI, phone=PHONE,
        ),
        "ana": tablet.person(alianza, "Ana", "Tapia", "female", birth_year=1985),
        "rosa": tablet.person(alianza, "Rosa", "Guevara", "female", birth_year=1979),
        "luis": tablet.person(yarau, "Luis", "Mego", "male", birth_year=1990),
        "zoila": tablet.person(yarau, "Zoila", "Dekentai", "female", birth_year=1992),
    }  # fmt: skip
    sessions = {
        "c2019": tablet.session(alianza, "coffee_production", "2019-03-10T09:00:00-05:00",
                                topic="Poda y renovación"),
        "c2020": tablet.session(yarau, "coffee_production", "2020-02-01T09:00:00-05:00"),
        "f2020": tablet.session(alianza, "financial_skills", "2020-05-05T09:00:00-05:00"),
        "school": tablet.session(yarau, "school_environmental_education",
                                 "2019-09-09T08:00:00-05:00", headcount={"female": 12, "male": 10}),
    }  # fmt: skip
    for who in ("jose", "ana", "rosa"):
        tablet.attend(sessions["c2019"], people[who])
    for who in ("luis", "zoila", "ana"):
        tablet.attend(sessions["c2020"], people[who])
    tablet.attend(sessions["f2020"], people["rosa"])
    home = tablet.record(
        "household",
        {"code": "NA-014", "community_id": alianza, "head_person_id": people["jose"],
         "members": [{"person_id": people["jose"], "relation": "jefe"}]},
    )  # fmt: skip
    other_home = tablet.record("household", {"code": "YA-002", "community_id": yarau})
    agreement = tablet.record(
        "agreement",
        {"code": "AC-001", "household_id": home, "community_id": alianza,
         "signatory_person_id": people["jose"], "status": "active", "signed_on": day(-340),
         "valid_from": day(-340), "valid_until": day(20), "area_total_ha": 5.5,
         "area_forest_ha": 3.0, "area_coffee_ha": 1.5},
    )  # fmt: skip
    assert {r["status"] for r in tablet.sync()} == {"applied"}
    # The colleague's tablet never met the first: José again, without accents.
    double = second.person(
        alianza, "JOSE", "NUNEZ", "male", maternal_surname="tafur", birth_year=1980,
        doc_type="dni", doc_number=DNI,
    )  # fmt: skip
    second.attend(sessions["c2019"], double)
    assert {r["status"] for r in second.sync()} == {"applied"}
    return {
        "sector": sector,
        "communities": (alianza, yarau),
        "people": people,
        "double": double,
        "sessions": sessions,
        "homes": (home, other_home),
        "agreement": agreement,
        "worker": worker,
        "tablet": tablet,
        "second": second,
        "coordinator": world.user("coordinator"),
    }


def number(value: float, digits: int = 0) -> str:
    """A figure as the Spanish page writes it."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return str(format_decimal(value, format=pattern, locale="es"))


def share(value: float) -> str:
    return str(format_percent(value, format="#,##0.0 %", locale="es"))


def figures(page: str) -> list[str]:
    """The big figures of a page's cards, in order."""
    return [html.unescape(f) for f in re.findall(r'<div class="figure">(?:<a[^>]*>)?([^<]+)', page)]


def text(page: str) -> str:
    """A page's words, without its markup."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def api_csv(caller: Caller, path: str, params: dict[str, Any]) -> bytes:
    answer = caller.get(path, params={**params, "format": "csv"})
    assert answer.status_code == 200, answer.text
    content: bytes = answer.content
    return content


__all__ = ["DNI", "PAGES", "PHONE", "build", "figures", "number", "share", "text"]
