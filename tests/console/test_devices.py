"""The tablets' pages: a new tablet's enrollment code shown once as a QR code and as
text (the code that enrolls it through the API), the list with each tablet's last
contact, revocation after a confirmation (then the API refuses the tablet), and a
ranger lead held to their sectors' rangers' tablets; on both databases."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import segno
from sqlmodel import Session

from schemas import Device
from tests.conftest import Caller, World
from tests.console.conftest import Browser, signed_in
from tests.sync_support import Tablet, pull_all

CODE = re.compile(r'<p class="code" id="enrollment-code">([^<]+)</p>')
SVG_PATH = re.compile(
    r'<svg viewBox="0 0 (\d+) (\d+)" class="segno"><path [^>]*d="([^"]+)"/></svg>'
)
STEP = re.compile(r"([Mmh])\s*(-?[\d.]+)(?:\s+(-?[\d.]+))?")


def modules_of(svg_path: str, size: int) -> list[list[bool]]:
    """The dark modules a segno SVG path draws: ``M``/``m`` move, ``h`` draws a run."""
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for step, first, second in STEP.findall(svg_path):
        if step == "M":
            x, y = float(first), float(second)
        elif step == "m":
            x, y = x + float(first), y + float(second)
        else:
            for column in range(int(x), int(x + float(first))):
                grid[int(y)][column] = True
            x += float(first)
    return grid


def new_code(browser: Browser, owner: Caller, label: str = "Tableta 07") -> Any:
    return browser.post("/console/devices/new", {"label": label, "user_id": str(owner.user_id)})


def test_an_admin_makes_an_enrollment_code_shown_once_as_a_qr_that_enrolls_the_tablet(
    world: World,
) -> None:
    sector = world.sector("AM-01")
    ranger = world.user("ranger", username="rosa-huaman", sector_ids=[sector["id"]])
    admin = signed_in(world, world.admin)
    form = admin.get("/console/devices/new")
    assert "rosa-huaman" in form.text

    page = new_code(admin, ranger)

    assert page.status_code == 200, page.text  # answered to the post: the code is in no URL
    assert page.headers["cache-control"] == "no-store"
    [code] = CODE.findall(page.text)
    width, height, path = SVG_PATH.search(page.text).groups()  # type: ignore[union-attr]
    qr = segno.make_qr(code, error="m")
    assert (int(width), int(height)) == (qr.symbol_size(scale=1, border=4))
    drawn = modules_of(path, int(width))
    expected = [[bool(m) for m in row] for row in qr.matrix_iter(scale=1, border=4)]
    assert drawn == expected  # the QR code holds the code's text, as the help says
    assert "Código de inscripción" in page.text
    assert "Tableta 07" in page.text
    enrolled = world.client.post("/devices/enroll", json={"enrollment_code": code})
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.json()["user_id"] == str(ranger.user_id)

    listed = admin.get("/console/devices")
    assert "Tableta 07" in listed.text
    assert "Inscrita" in listed.text  # enrolled, with its last contact
    assert "<td>nunca</td>" not in listed.text  # its last contact; it never pushed nor pulled


def test_a_tablet_is_revoked_after_a_confirmation_and_the_api_then_refuses_it(
    world: World,
) -> None:
    sector = world.sector("AM-01")
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    tablet = world.device(ranger, label="Tableta 12")
    device_id = tablet.tokens["device_id"]
    admin = signed_in(world, world.admin)
    confirm = f"/console/devices/{device_id}/revoke"

    asked = admin.get(confirm)

    assert asked.status_code == 200
    assert "¿Revocar la tableta Tableta 12?" in asked.text
    assert tablet.get("/sync/pull").status_code == 200  # asking changes nothing
    done = admin.post(confirm, {})
    assert done.status_code == 303
    assert done.headers["location"] == "/console/devices?done=revoked"
    assert "La tableta está revocada" in admin.get(done.headers["location"]).text
    assert tablet.get("/sync/pull").status_code == 401
    refreshed = world.client.post(
        "/auth/refresh", json={"refresh_token": tablet.tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert "fue revocada el" in admin.get(confirm).text


def test_a_revocation_without_the_form_token_is_refused_and_changes_nothing(
    world: World,
) -> None:
    ranger = world.user("ranger", sector_ids=[world.sector()["id"]])
    tablet = world.device(ranger)
    admin = signed_in(world, world.admin)

    forged = admin.http.post(f"/console/devices/{tablet.tokens['device_id']}/revoke", data={})

    assert forged.status_code == 403
    assert "formulario está vencido" in forged.text
    assert tablet.get("/sync/pull").status_code == 200


def test_a_ranger_lead_sees_and_manages_only_their_sectors_rangers_tablets(
    world: World,
) -> None:
    mine, other = world.sector("AM-01"), world.sector("AM-02")
    lead = world.user("ranger_lead", sector_ids=[mine["id"]])
    ours = world.user("ranger", username="ana-ours", sector_ids=[mine["id"]])
    theirs = world.user("ranger", username="beto-theirs", sector_ids=[other["id"]])
    our_tablet = world.device(ours, label="Tableta nuestra")
    their_tablet = world.device(theirs, label="Tableta ajena")
    browser = signed_in(world, lead)

    listed = browser.get("/console/devices")
    assert listed.status_code == 200
    assert "Tableta nuestra" in listed.text
    assert "Tableta ajena" not in listed.text
    form = browser.get("/console/devices/new")
    assert "ana-ours" in form.text
    assert "beto-theirs" not in form.text

    theirs_page = f"/console/devices/{their_tablet.tokens['device_id']}/revoke"
    assert browser.get(theirs_page).status_code == 404
    refused = browser.post(theirs_page, {}, token_from="/console/devices")
    assert refused.status_code == 404
    assert "No se encontró" in refused.text
    assert their_tablet.get("/sync/pull").status_code == 200
    made = browser.post("/console/devices/new", {"label": "Otra", "user_id": str(theirs.user_id)})
    assert made.status_code == 404

    ours_page = f"/console/devices/{our_tablet.tokens['device_id']}/revoke"
    assert browser.post(ours_page, {}).status_code == 303
    assert our_tablet.get("/sync/pull").status_code == 401
    page = new_code(browser, ours, "Tableta nueva")
    assert CODE.search(page.text), page.text


def test_field_roles_get_the_403_page_for_the_tablets(world: World) -> None:
    ranger = world.user("ranger", sector_ids=[world.sector()["id"]])
    browser = signed_in(world, ranger)

    answer = browser.get("/console/devices")

    assert answer.status_code == 403
    assert "Esta página es para otro rol." in answer.text


def test_a_bad_form_is_shown_again_with_what_was_wrong_in_spanish(world: World) -> None:
    ranger = world.user("ranger", sector_ids=[world.sector()["id"]])
    admin = signed_in(world, world.admin)

    unnamed = admin.post("/console/devices/new", {"label": "  ", "user_id": str(ranger.user_id)})
    nobody = admin.post("/console/devices/new", {"label": "Tableta 3", "user_id": ""})
    world.admin.patch(f"/users/{ranger.user_id}", json={"active": False})
    inactive = admin.post(
        "/console/devices/new", {"label": "Tableta 3", "user_id": str(ranger.user_id)}
    )

    assert unnamed.status_code == 422
    assert "Ponga un nombre a la tableta" in unnamed.text
    assert nobody.status_code == 422
    assert "Elija quién llevará la tableta" in nobody.text
    assert 'value="Tableta 3"' in nobody.text  # what was typed is kept
    assert inactive.status_code == 409
    assert "Este usuario está desactivado" in inactive.text
    assert world.admin.get("/devices").json() == []


def test_the_list_says_which_tablets_are_silent(world: World) -> None:
    sector = world.sector()
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    admin = signed_in(world, world.admin)
    new_code(admin, ranger, "Tableta sin usar")

    listed = admin.get("/console/devices?silent_days=7")
    also = admin.get("/console/devices?silent_days=&offset=0")

    assert "Tableta sin usar" in listed.text
    assert "Esperando inscripción" in listed.text
    assert "nunca" in listed.text
    assert also.status_code == 200


def test_the_list_shows_each_tablets_app_and_since_when_it_misses_changes(world: World) -> None:
    from tests.api.test_fleet_health import Fleet

    fleet = Fleet(world)
    lead = world.user("ranger_lead", sector_ids=[fleet.sector["id"]])
    office = signed_in(world, world.admin)

    listed = office.get("/console/devices")
    outdated = office.get(
        "/console/devices", params={"app_version_below": "2.4", "sector_id": "", "role": ""}
    )
    theirs = signed_in(world, lead).get("/console/devices", params={"role": "ranger"})
    wrong = office.get("/console/devices", params={"app_version_below": "nueva"})

    assert listed.status_code == 200, listed.text
    assert "2.3.9" in listed.text
    assert "41 sin enviar · 95 MB libres" in listed.text
    assert "nunca descargó" in listed.text  # none of them has pulled
    assert ">old<" in outdated.text
    assert ">well<" not in outdated.text
    assert ">old<" in theirs.text
    assert ">well<" not in theirs.text  # another sector's ranger
    assert wrong.status_code == 422


def test_the_list_downloads_as_the_apis_csv_file_with_its_filters(world: World) -> None:
    from tests.api.test_fleet_health import Fleet

    fleet = Fleet(world)
    office = signed_in(world, world.admin)

    every = office.get("/console/devices.csv")
    theirs = office.get("/console/devices.csv", params={"sector_id": fleet.other["id"]})

    assert every.status_code == 200, every.text
    assert every.headers["content-type"].startswith("text/csv")
    assert every.headers["cache-control"] == "no-store"
    assert every.text.startswith("\ufeffdevice_id,label,")
    assert len(every.text.strip().splitlines()) == 1 + 5
    assert len(theirs.text.strip().splitlines()) == 1 + 1
    assert ",well," in theirs.text


def test_the_list_says_which_tablet_is_up_to_date_and_which_misses_changes(world: World) -> None:
    sector = world.sector()
    ranger, other = (world.user("ranger", sector_ids=[sector["id"]]) for _ in range(2))
    behind = Tablet(world.device(ranger, label="T-atrasada"))
    current = Tablet(world.device(other, label="T-corriente"))
    pull_all(behind.device)
    current.send("patrol", str(uuid.uuid4()), "create", {"sector_id": sector["id"]})
    pull_all(current.device)

    listed = signed_in(world, world.admin).get("/console/devices").text

    rows = {
        label: listed.split(f"<td>{label}<br>")[1].split("</tr>")[0]
        for label in ("T-atrasada", "T-corriente")
    }
    assert '<span class="warn">' in rows["T-atrasada"]
    assert ">al día</td>" in rows["T-corriente"]
    assert '<span class="warn">' not in rows["T-corriente"]


def test_the_list_says_which_tablets_app_is_too_old_to_sync(world: World) -> None:
    """A push refused ``426 app_too_old`` (tests/api/test_schema_versions.py) leaves
    its time on the device; the list says it until a push is taken again."""
    sector = world.sector()
    old, new = (world.user("ranger", sector_ids=[sector["id"]]) for _ in range(2))
    refused = world.device(old, label="T-vieja")
    world.device(new, label="T-nueva")
    with Session(world.engine) as session:
        device = session.get(Device, uuid.UUID(refused.tokens["device_id"]))
        assert device is not None
        device.app_too_old_at = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
        session.add(device)
        session.commit()

    office = signed_in(world, world.admin)
    spanish = office.get("/console/devices").text
    english = office.get("/console/devices", params={"lang": "en"}).text

    rows = {
        label: spanish.split(f"<td>{label}<br>")[1].split("</tr>")[0]
        for label in ("T-vieja", "T-nueva")
    }
    assert "Demasiado antigua: su sincronización fue rechazada el" in rows["T-vieja"]
    assert "Actualice la aplicación." in rows["T-vieja"]
    assert "Demasiado antigua" not in rows["T-nueva"]
    assert "Too old: its sync was refused on" in english
