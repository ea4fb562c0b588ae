"""The coordinator's programme page and lists, over plain HTTP on both databases: the
figures are the API's reports, each list and report downloads as the API's CSV file,
and only admins and coordinators get in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Caller, World
from tests.console.conftest import Browser, signed_in
from tests.console.coordinator_support import PAGES, api_csv, build, figures, number, share, text

COFFEE = {"from": "2018-01-01", "to": "2020-12-31", "program": "coffee_production"}


@pytest.fixture
def programme(world: World) -> dict[str, Any]:
    return build(world)


@pytest.fixture
def office(world: World, programme: dict[str, Any]) -> Browser:
    return signed_in(world, programme["coordinator"])


def test_the_coordinator_reads_the_coffee_figures_the_api_reports(
    programme: dict[str, Any], office: Browser
) -> None:
    coordinator: Caller = programme["coordinator"]
    report = coordinator.get("/reports/attendance", params=COFFEE).json()

    page = office.get("/console/programme", params=COFFEE)

    assert page.status_code == 200, page.text
    # José twice (two tablets, not merged yet), Ana, Rosa; Luis, Zoila, Ana again.
    assert (report["participants"], report["women"]) == (6, 3)
    participants, women_share, sessions, _young = figures(page.text)[:4]
    assert participants == number(report["participants"])
    assert women_share == share(report["women_share"]) == "50,0 %"
    assert sessions == number(report["sessions"])
    assert "Producción de café" in page.text
    assert 'lang="es"' in page.text


@pytest.mark.parametrize(
    "filters",
    [{}, {"from": "2020-01-01"}, {"to": "2019-12-31"}, {"program": "financial_skills"}, "yarau",
     "sector"],
)  # fmt: skip
def test_every_filter_of_the_report_gives_the_apis_figures(
    programme: dict[str, Any], office: Browser, filters: Any
) -> None:
    if filters == "yarau":
        filters = {"community_id": programme["communities"][1]}
    elif filters == "sector":
        filters = {"sector_id": programme["sector"], "from": "2019-01-01", "to": "2019-12-31"}
    report = programme["coordinator"].get("/reports/attendance", params=filters).json()

    page = office.get("/console/programme", params=filters)

    participants, women_share, sessions, young = figures(page.text)[:4]
    assert participants == number(report["participants"])
    assert women_share == (share(report["women_share"]) if report["participants"] else "—")
    assert (sessions, young) == (number(report["sessions"]), number(report["headcount"]["people"]))
    for name, value in filters.items():  # the form shows what was asked
        shown = (
            f'name="{name}" value="{value}"'
            if name in ("from", "to")
            else f'value="{value}" selected'
        )
        assert shown in page.text


def test_a_place_out_of_reach_is_the_404_page(office: Browser) -> None:
    page = office.get(
        "/console/programme", params={"community_id": "00000000-0000-4000-8000-000000000000"}
    )

    assert page.status_code == 404
    assert "No se encontró" in page.text


def test_the_figures_by_year_are_each_years_report(
    programme: dict[str, Any], office: Browser
) -> None:
    coordinator: Caller = programme["coordinator"]

    page = text(office.get("/console/programme").text)

    for year in ("2019", "2020"):
        report = coordinator.get(
            "/reports/attendance",
            params={"from": f"{year}-01-01", "to": f"{year}-12-31", "group_by": "program"},
        ).json()
        coffee = next(g for g in report["groups"] if g["key"] == "coffee_production")
        row = f"{year} Producción de café {number(coffee['sessions'])} "
        row += f"{number(coffee['participants'])} {number(coffee['women'])} "
        row += share(coffee["women_share"])
        assert row in page
    assert "Jóvenes alcanzados en sesiones escolares, por año" in page  # the school chart
    assert "2019 Educación ambiental escolar 1 0 0 — 22" in page  # by headcount, apart


def test_the_page_draws_its_charts_without_script_nor_style_attribute(office: Browser) -> None:
    page = office.get("/console/programme").text

    assert page.count("<svg") == 3
    assert "<script" not in page
    assert "style=" not in page
    assert "Participantes por programa y año" in page


def test_families_under_agreement_and_renewals_due_are_the_api_report(
    programme: dict[str, Any], office: Browser
) -> None:
    report = programme["coordinator"].get("/reports/agreements").json()

    page = office.get("/console/programme")

    coverage, hectares, due, lapsed = figures(page.text)[4:8]
    assert coverage == share(report["coverage_share"]) == "50,0 %"
    assert hectares == number(report["hectares_total"], 1)
    assert (due, lapsed) == ("1", "0")
    assert 'href="/console/agreements?renewal_due_within=30"' in page.text


def test_a_period_that_ends_before_it_starts_is_said_on_the_page(office: Browser) -> None:
    page = office.get("/console/programme", params={"from": "2020-01-01", "to": "2019-01-01"})

    assert page.status_code == 422
    assert "El periodo termina antes de empezar." in page.text


def test_an_unknown_parameter_is_the_422_page_as_in_the_api(office: Browser) -> None:
    page = office.get("/console/sessions", params={"satus": "held"})

    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")


def test_sessions_and_one_sessions_attendance(programme: dict[str, Any], office: Browser) -> None:
    listed = office.get("/console/sessions", params={"program": "coffee_production"})
    assert listed.status_code == 200
    assert "2 sesiones" in text(listed.text)
    assert f"/console/sessions/{programme['sessions']['c2019']}" in listed.text

    one = office.get(f"/console/sessions/{programme['sessions']['c2019']}")

    assert one.status_code == 200
    words = text(one.text)
    assert "Poda y renovación" in words
    assert "José Núñez Tafur" in words
    assert "JOSE NUNEZ tafur" in words
    assert "4 registradas" in words
    assert "44556677" not in one.text  # attendance never carries a document
    assert office.get(f"/console/sessions/{programme['homes'][0]}").status_code == 404


def test_the_coordinator_moves_a_session_filed_under_the_wrong_community(
    programme: dict[str, Any], office: Browser, world: World
) -> None:
    alianza, yarau = programme["communities"]
    page = f"/console/sessions/{programme['sessions']['c2019']}"
    assert "¿Registrada en la comunidad equivocada?" in office.get(page).text
    colleague = signed_in(world, world.user("ranger_lead", sector_ids=[programme["sector"]]))
    refused = colleague.post(f"{page}/move", {"community_id": yarau}, token_from="/console/patrols")
    assert refused.status_code == 403

    moved = office.post(f"{page}/move", {"community_id": yarau}, token_from=page)

    assert moved.status_code == 303
    assert moved.headers["location"] == f"{page}?done=moved"
    after = text(office.get(moved.headers["location"]).text)
    assert "Capacitación movida, con su asistencia." in after
    assert "Yarau" in after
    assert "4 registradas" in after  # its attendance went with it
    nowhere = office.post(f"{page}/move", {"community_id": programme["sector"]}, token_from=page)
    assert nowhere.status_code == 422
    assert "La capacitación no puede ir a esa comunidad." in nowhere.text
    forged = office.http.post(f"{page}/move", data={"community_id": alianza})
    assert forged.status_code == 403


def test_agreements_list_and_renewals_due(programme: dict[str, Any], office: Browser) -> None:
    due = office.get("/console/agreements", params={"renewal_due_within": "30"})

    assert due.status_code == 200
    words = text(due.text)
    assert "1 renovaciones pendientes" in words
    assert "AC-001" in words
    assert "José Núñez" in words
    found = office.get("/console/agreements", params={"q": "nunez"})
    assert "AC-001" in found.text


@pytest.mark.parametrize(
    ("page", "api", "params"),
    [
        ("/console/programme/attendance.csv", "/reports/attendance", COFFEE),
        (
            "/console/programme/attendance.csv",
            "/reports/attendance",
            {"from": "2019-01-01", "group_by": "community"},
        ),
        ("/console/programme/agreements.csv", "/reports/agreements", {"group_by": "sector"}),
        ("/console/sessions.csv", "/training-sessions", {"program": "coffee_production"}),
        ("/console/attendance.csv", "/attendance", {"from": "2020-01-01"}),
        ("/console/agreements.csv", "/agreements", {"q": "nunez"}),
        ("/console/agreements.csv", "/agreements", {"renewal_due_within": "30"}),
        ("/console/people.csv", "/people", {"q": "nunez", "pii": "false"}),
        ("/console/people.csv", "/people", {"q": "nunez", "pii": "true"}),
    ],
)
def test_each_download_is_the_apis_csv_for_the_same_filters(
    programme: dict[str, Any], office: Browser, page: str, api: str, params: dict[str, str]
) -> None:
    downloaded = office.get(page, params=params)

    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.headers["content-type"] == "text/csv; charset=utf-8"
    assert downloaded.headers["cache-control"] == "no-store"
    assert downloaded.content == api_csv(programme["coordinator"], api, params)


def test_a_session_s_attendance_downloads_as_the_api_gives_it(
    programme: dict[str, Any], office: Browser
) -> None:
    params = {"session_id": programme["sessions"]["c2019"]}
    page = office.get(f"/console/sessions/{params['session_id']}").text
    assert f'href="/console/attendance.csv?session_id={params["session_id"]}"' in page

    downloaded = office.get("/console/attendance.csv", params=params)

    assert downloaded.content == api_csv(programme["coordinator"], "/attendance", params)
    assert downloaded.content.count(b"\n") == 5  # the header and four people


@pytest.mark.parametrize("role", ["ranger_lead", "ranger", "extension_worker"])
def test_other_roles_get_the_403_page(world: World, programme: dict[str, Any], role: str) -> None:
    caller = world.user(
        role, sector_ids=[programme["sector"]], community_ids=list(programme["communities"])
    )
    browser = signed_in(world, caller)
    conflict_page = f"/console/conflicts/{programme['homes'][0]}"

    for path in (*PAGES, conflict_page, f"/console/sessions/{programme['sessions']['c2019']}"):
        answer = browser.get(path)
        assert answer.status_code == 403, path
        assert "Esta página es para otro rol." in answer.text, path
    people = programme["people"]
    form = {"keep_id": people["jose"], "merge_id": programme["double"]}
    merged = browser.post("/console/people/merge", form, token_from="/console/account")
    assert merged.status_code == 403


def test_an_admin_reads_the_programme_too(world: World, programme: dict[str, Any]) -> None:
    browser = signed_in(world, world.admin)

    assert browser.get("/console/programme").status_code == 200
    assert browser.get("/console/conflicts").status_code == 200


def test_a_stranger_is_sent_to_sign_in(browser: Browser) -> None:
    for path in PAGES:
        answer = browser.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/sign-in?next="), path


def test_the_figures_follow_a_tablets_next_sync(programme: dict[str, Any], office: Browser) -> None:
    year = {"from": "2019-01-01", "to": "2019-12-31"}
    assert figures(office.get("/console/programme", params=year).text)[0] == "4"
    tablet = programme["tablet"]
    tablet.attend(programme["sessions"]["c2019"], programme["people"]["luis"])
    assert [r["status"] for r in tablet.sync()] == ["applied"]

    assert figures(office.get("/console/programme", params=year).text)[0] == "5"
