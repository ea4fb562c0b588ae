"""People in the coordinator's console, over plain HTTP on both databases: search that
ignores accents, personal data only when asked and then logged as the API logs it, and
duplicates merged through a confirmation page and a form with its token."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Caller, World
from tests.console.conftest import Browser, signed_in
from tests.console.coordinator_support import DNI, PHONE, build, figures, text


@pytest.fixture
def programme(world: World) -> dict[str, Any]:
    return build(world)


@pytest.fixture
def office(world: World, programme: dict[str, Any]) -> Browser:
    return signed_in(world, programme["coordinator"])


def log(world: World) -> list[dict[str, Any]]:
    answer = world.admin.get("/personal-data-log")
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_search_ignores_accents_and_capitals(office: Browser) -> None:
    found = text(office.get("/console/people", params={"q": "Nunez"}).text)

    assert "José Núñez Tafur" in found
    assert "JOSE NUNEZ tafur" in found
    assert "2 personas" in found
    assert "Ana Tapia" not in found
    assert "1 personas" in text(office.get("/console/people", params={"q": "ÁNA tápia"}).text)
    assert "0 personas" in text(office.get("/console/people", params={"q": "100%_"}).text)


def test_people_page_through_the_list(office: Browser) -> None:
    first = office.get("/console/people", params={"limit": "2"})
    words = text(first.text)

    assert "1\N{EN DASH}2 de 6" in words
    assert "offset=2" in first.text
    assert "3\N{EN DASH}4 de 6" in text(office.get("/console/people?limit=2&offset=2").text)


def test_personal_data_only_when_asked_and_logged_as_the_api_logs_it(
    world: World, programme: dict[str, Any], office: Browser
) -> None:
    coordinator: Caller = programme["coordinator"]

    hidden = office.get("/console/people", params={"q": "nunez"})
    assert DNI not in hidden.text
    assert PHONE not in hidden.text
    assert log(world) == []

    shown = office.get("/console/people", params={"q": "nunez", "pii": "true"})
    assert DNI in shown.text
    assert PHONE in shown.text
    office.get("/console/people.csv", params={"q": "nunez", "pii": "true"})
    coordinator.get("/people", params={"q": "nunez"})  # the API, for the same question

    api, csv, page = log(world)  # newest first
    assert api["path"] == "/api/v1/people"
    assert (page["path"], page["format"]) == ("/console/people", "html")
    assert (csv["path"], csv["format"]) == ("/console/people.csv", "csv")
    for entry in (page, csv):
        assert entry["user_id"] == api["user_id"] == str(coordinator.user_id)
        assert entry["filters"] == api["filters"] == {"q": "nunez"}


def test_a_duplicate_is_merged_after_confirmation(
    world: World, programme: dict[str, Any], office: Browser
) -> None:
    coordinator: Caller = programme["coordinator"]
    jose, double = programme["people"]["jose"], programme["double"]
    listed = office.get("/console/people/duplicates")
    assert listed.status_code == 200
    words = text(listed.text)
    assert "Mismo documento" in words
    assert "Mismo nombre, año de nacimiento y comunidad" in words
    assert DNI not in listed.text  # the list shows no personal data
    first, second = sorted([jose, double])
    assert f"/console/people/merge?keep_id={first}&amp;merge_id={second}" in listed.text

    year = {"from": "2019-01-01", "to": "2019-12-31"}
    assert figures(office.get("/console/programme", params=year).text)[0] == "4"  # José twice

    confirm = office.get("/console/people/merge", params={"keep_id": jose, "merge_id": double})
    assert confirm.status_code == 200
    assert DNI in confirm.text  # both whole, to decide which to keep
    [entry] = log(world)
    assert entry["path"] == "/console/people/merge"
    assert entry["filters"] == {"keep_id": jose, "merge_id": double}
    assert coordinator.get(f"/people/{double}").json()["person"]["merged_into"] is None

    forged = office.http.post("/console/people/merge", data={"keep_id": jose, "merge_id": double})
    assert forged.status_code == 403
    assert coordinator.get(f"/people/{double}").json()["person"]["merged_into"] is None

    merged = office.post(
        "/console/people/merge",
        {"keep_id": jose, "merge_id": double},
        token_from=f"/console/people/merge?keep_id={jose}&merge_id={double}",
    )

    assert merged.status_code == 303
    assert merged.headers["location"] == "/console/people/duplicates?done=merged"
    after = office.get(merged.headers["location"])
    assert "Los dos registros ya son una sola persona." in text(after.text)
    assert "No hay posibles duplicados." in text(after.text)
    assert coordinator.get(f"/people/{double}").json()["person"]["merged_into"] == jose
    report = coordinator.get(
        "/reports/attendance", params={"from": "2019-01-01", "to": "2019-12-31"}
    ).json()
    assert report["participants"] == 3  # José once, at last
    assert figures(office.get("/console/programme", params=year).text)[0] == "3"  # read again


def test_merging_a_merged_person_again_is_refused_on_a_page(
    programme: dict[str, Any], office: Browser
) -> None:
    form = {"keep_id": programme["people"]["jose"], "merge_id": programme["double"]}
    assert (
        office.post("/console/people/merge", form, token_from="/console/people").status_code == 303
    )

    again = office.post("/console/people/merge", form, token_from="/console/people")

    assert again.status_code == 409
    assert "already_merged" in again.text
    confirm = office.get("/console/people/merge", params=form)
    assert "ya fue fusionado" in text(confirm.text)
    assert 'action="/console/people/merge"' not in confirm.text
