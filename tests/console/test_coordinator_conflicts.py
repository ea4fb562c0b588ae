"""Conflicts in the coordinator's console, over plain HTTP on both databases: both sides
field by field, resolved by keeping the server's, taking the tablet's or editing,
always through a confirmation page and a form with its token; what the service
refuses is said on the page, and nothing changes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.conftest import Caller, World
from tests.console.conftest import Browser, signed_in
from tests.console.coordinator_support import text
from tests.sync_support import Tablet


@pytest.fixture
def clash(world: World) -> dict[str, Any]:
    """Two tablets changed one person's phone and birth year, the second a conflict."""
    sector = world.sector()
    community = world.community(sector["id"], "Aguas Verdes")
    first, second = (
        Tablet(world.device(world.user("extension_worker", community_ids=[community["id"]])))
        for _ in range(2)
    )
    person_id = str(uuid.uuid4())
    fields = {
        "given_names": "Rosa",
        "paternal_surname": "Huamán",
        "community_id": community["id"],
        "birth_year": 1980,
        "phone": "900000000",
    }
    assert first.send("person", person_id, "create", fields)["status"] == "applied"
    changed = {"phone": "911111111", "birth_year": 1981}
    assert first.send("person", person_id, "update", changed, base_version=1)["status"] == "applied"
    sent = second.send(
        "person", person_id, "update", {"phone": "922222222", "birth_year": 1982}, base_version=1
    )
    assert sent["status"] == "conflict", sent
    coordinator = world.user("coordinator")
    return {
        "conflict_id": sent["conflict_id"],
        "person_id": person_id,
        "coordinator": coordinator,
        "office": signed_in(world, coordinator),
    }


def person(clash: dict[str, Any]) -> dict[str, Any]:
    caller: Caller = clash["coordinator"]
    found: dict[str, Any] = caller.get(f"/people/{clash['person_id']}").json()["person"]
    return found


def conflict(clash: dict[str, Any]) -> dict[str, Any]:
    caller: Caller = clash["coordinator"]
    found: dict[str, Any] = caller.get(f"/conflicts/{clash['conflict_id']}").json()
    return found


def test_the_queue_lists_the_conflict_and_its_fields(clash: dict[str, Any]) -> None:
    office: Browser = clash["office"]

    page = office.get("/console/conflicts")

    assert page.status_code == 200
    words = text(page.text)
    assert "1 conflictos" in words
    assert "Persona" in words
    assert "Teléfono" in words
    assert "Año de nacimiento" in words
    assert "911111111" not in page.text  # values only on the conflict's own page
    assert f"/console/conflicts/{clash['conflict_id']}" in page.text


def test_both_sides_field_by_field_and_the_page_is_logged(
    world: World, clash: dict[str, Any]
) -> None:
    office: Browser = clash["office"]

    page = office.get(f"/console/conflicts/{clash['conflict_id']}")

    assert page.status_code == 200
    words = text(page.text)
    assert "Persona Rosa Huamán" in words  # whose record
    assert "Teléfono 911111111 922222222" in words
    assert "Año de nacimiento 1981 1982" in words
    assert "Conservar el del servidor" in words
    assert "Tomar el de la tableta" in words
    [entry] = world.admin.get("/personal-data-log").json()["items"]
    assert entry["path"] == f"/console/conflicts/{clash['conflict_id']}"
    assert entry["filters"] == {"conflict_id": clash["conflict_id"]}


def confirm(office: Browser, conflict_id: str, form: dict[str, str]) -> Any:
    return office.post(
        f"/console/conflicts/{conflict_id}/confirm",
        form,
        token_from=f"/console/conflicts/{conflict_id}",
    )


def resolve_confirmed(office: Browser, conflict_id: str, page: str) -> Any:
    """Post the confirmation page's form as a browser would: its hidden fields."""
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return office.http.post(f"/console/conflicts/{conflict_id}/resolve", data=form)


@pytest.mark.parametrize(
    ("resolution", "phone", "birth_year"),
    [("keep_server", "911111111", 1981), ("take_device", "922222222", 1982)],
)
def test_a_side_taken_whole_after_confirmation(
    clash: dict[str, Any], resolution: str, phone: str, birth_year: int
) -> None:
    office: Browser = clash["office"]
    conflict_id = clash["conflict_id"]

    shown = confirm(office, conflict_id, {"resolution": resolution})

    assert shown.status_code == 200
    assert f"Teléfono 911111111 {phone}" in text(shown.text)
    assert conflict(clash)["status"] == "open"  # nothing yet
    done = resolve_confirmed(office, conflict_id, shown.text)
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/conflicts/{conflict_id}?done=resolved"
    settled = conflict(clash)
    assert (settled["status"], settled["resolution"]) == ("resolved", resolution)
    assert (person(clash)["phone"], person(clash)["birth_year"]) == (phone, birth_year)
    after = text(office.get(done.headers["location"]).text)
    assert "Resuelto. Las tabletas reciben la nueva versión" in after


def test_an_edit_takes_a_field_from_each_side_or_typed(clash: dict[str, Any]) -> None:
    office: Browser = clash["office"]
    conflict_id = clash["conflict_id"]
    form = {
        "resolution": "custom",
        "side.phone": "edit",
        "value.phone": " 933333333 ",
        "side.birth_year": "device",
    }

    shown = confirm(office, conflict_id, form)

    assert "Teléfono 911111111 933333333" in text(shown.text)
    assert "Año de nacimiento 1981 1982" in text(shown.text)
    done = resolve_confirmed(office, conflict_id, shown.text)
    assert done.status_code == 303
    assert conflict(clash)["resolution"] == "custom"
    assert (person(clash)["phone"], person(clash)["birth_year"]) == ("933333333", 1982)


def test_a_typed_number_is_a_number(clash: dict[str, Any]) -> None:
    office: Browser = clash["office"]
    form = {"resolution": "custom", "side.birth_year": "edit", "value.birth_year": "1979"}

    shown = confirm(office, clash["conflict_id"], form)
    resolve_confirmed(office, clash["conflict_id"], shown.text)

    assert person(clash)["birth_year"] == 1979
    assert person(clash)["phone"] == "911111111"  # the server's, by default


def test_a_resolution_without_the_token_is_refused_and_changes_nothing(
    clash: dict[str, Any],
) -> None:
    office: Browser = clash["office"]
    conflict_id = clash["conflict_id"]

    forged = office.http.post(
        f"/console/conflicts/{conflict_id}/resolve", data={"resolution": "take_device"}
    )
    guessed = office.http.post(
        f"/console/conflicts/{conflict_id}/resolve",
        data={"resolution": "take_device", "csrf_token": "guess"},
    )
    unconfirmed = office.http.post(
        f"/console/conflicts/{conflict_id}/confirm", data={"resolution": "take_device"}
    )

    for answer in (forged, guessed, unconfirmed):
        assert answer.status_code == 403
        assert "Este formulario está vencido" in answer.text
    assert conflict(clash)["status"] == "open"
    assert person(clash)["phone"] == "911111111"


def test_what_the_service_refuses_is_said_and_nothing_changes(clash: dict[str, Any]) -> None:
    office: Browser = clash["office"]
    conflict_id = clash["conflict_id"]
    form = {"resolution": "custom", "side.birth_year": "edit", "value.birth_year": "old"}

    shown = confirm(office, conflict_id, form)
    refused = resolve_confirmed(office, conflict_id, shown.text)

    assert refused.status_code == 422
    words = text(refused.text)
    assert "rompería una regla" in words
    assert "Año de nacimiento" in words
    assert conflict(clash)["status"] == "open"
    assert (person(clash)["phone"], person(clash)["birth_year"]) == ("911111111", 1981)


def test_a_resolved_conflict_offers_no_resolution(clash: dict[str, Any]) -> None:
    office: Browser = clash["office"]
    conflict_id = clash["conflict_id"]
    shown = confirm(office, conflict_id, {"resolution": "keep_server"})
    resolve_confirmed(office, conflict_id, shown.text)

    page = office.get(f"/console/conflicts/{conflict_id}")
    again = resolve_confirmed(office, conflict_id, shown.text)

    assert 'action="/console/conflicts/' not in page.text
    assert "Se conservó el del servidor" in text(page.text)
    assert again.status_code == 409
    assert "0 conflictos" in text(office.get("/console/conflicts").text)
    assert "1 conflictos" in text(office.get("/console/conflicts?status=resolved").text)
