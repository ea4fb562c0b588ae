"""The admin's pages: users made, given a role and a scope, and deactivated (their
console session ends); forms refused in Spanish with what was typed kept; sectors,
communities and observation categories made through the pages and pulled by a tablet;
the rejected and waiting changes; the personal data access log; admins only, and no
form without its token; on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import World, login
from tests.console.conftest import Browser, signed_in
from tests.sync_support import Tablet, change, pull_all, push

ADMIN_PAGES = [
    "/console/admin/users",
    "/console/admin/users/new",
    "/console/admin/sectors",
    "/console/admin/communities",
    "/console/admin/categories",
    "/console/admin/held",
    "/console/admin/held?kind=deferred",
    "/console/admin/personal-data-log",
]


def user_named(world: World, username: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = world.admin.get("/users").json()
    [user] = [u for u in found if u["username"] == username]
    return user


def test_an_admin_makes_a_user_changes_their_role_and_scope_and_deactivates_them(
    world: World,
) -> None:
    north, south = world.sector("AM-01"), world.sector("AM-02")
    village = world.community(north["id"], "Nuevo Edén")
    admin = signed_in(world, world.admin)

    made = admin.post(
        "/console/admin/users/new",
        {
            "username": "Lucia-Tapia",
            "full_name": "Lucía Tapia",
            "password": "una clave larga",
            "role": "ranger",
            "sector_ids": [north["id"]],
        },
    )

    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/console/admin/users?done=created"
    listed = admin.get(made.headers["location"]).text
    assert "El usuario fue creado" in listed
    assert "lucia-tapia" in listed
    assert "AM-01" in listed
    lucia = user_named(world, "lucia-tapia")
    assert (lucia["role"], lucia["sector_ids"]) == ("ranger", [north["id"]])
    her_browser = Browser(world.client)
    assert her_browser.sign_in("lucia-tapia", "una clave larga").status_code == 303
    assert her_browser.get("/console/").headers["location"] == "/console/account"

    edit = f"/console/admin/users/{lucia['id']}"
    assert "Lucía Tapia" in admin.get(edit).text
    promoted = admin.post(
        edit, {"full_name": "Lucía Tapia Ríos", "role": "ranger_lead", "sector_ids": [south["id"]]}
    )
    assert promoted.status_code == 303, promoted.text
    lucia = user_named(world, "lucia-tapia")
    assert (lucia["role"], lucia["sector_ids"]) == ("ranger_lead", [south["id"]])
    assert lucia["full_name"] == "Lucía Tapia Ríos"
    assert her_browser.get("/console/").headers["location"] == "/console/patrols"  # at once
    moved = admin.post(
        edit,
        {
            "full_name": "Lucía Tapia Ríos",
            "role": "extension_worker",
            "community_ids": [village["id"]],
        },
    )
    assert moved.status_code == 303, moved.text
    lucia = user_named(world, "lucia-tapia")
    assert (lucia["role"], lucia["sector_ids"], lucia["community_ids"]) == (
        "extension_worker",
        [],
        [village["id"]],
    )

    deactivated = admin.post(f"{edit}/deactivate", {}, token_from=edit)

    assert deactivated.status_code == 303
    assert "El usuario fue desactivado" in admin.get(deactivated.headers["location"]).text
    assert her_browser.get("/console/account").status_code == 303  # to the sign-in page
    assert login(world.client, "lucia-tapia", "una clave larga").status_code == 401
    assert "Desactivado" in admin.get("/console/admin/users").text
    assert admin.post(f"{edit}/activate", {}, token_from=edit).status_code == 303
    assert login(world.client, "lucia-tapia", "una clave larga").status_code == 200


def test_a_taken_username_shows_the_form_again_with_the_spanish_message(world: World) -> None:
    world.user("ranger", username="rosa-q")
    admin = signed_in(world, world.admin)

    answer = admin.post(
        "/console/admin/users/new",
        {
            "username": "rosa-q",
            "full_name": "Rosa Quispe Segunda",
            "password": "otra clave larga",
            "role": "coordinator",
        },
    )

    assert answer.status_code == 409
    assert "Ese nombre de usuario ya está en uso" in answer.text
    assert 'value="Rosa Quispe Segunda"' in answer.text  # what was typed is kept
    assert 'aria-invalid="true"' in answer.text
    assert [u["full_name"] for u in world.admin.get("/users").json()].count(
        "Rosa Quispe Segunda"
    ) == 0


def test_bad_user_forms_say_what_is_wrong_in_spanish(world: World) -> None:
    sector = world.sector("AM-01")
    admin = signed_in(world, world.admin)

    short = admin.post(
        "/console/admin/users/new",
        {"username": "ab", "full_name": "", "password": "corta", "role": "ranger"},
    )
    misfit = admin.post(
        "/console/admin/users/new",
        {
            "username": "carla",
            "full_name": "Carla",
            "password": "una clave larga",
            "role": "coordinator",
            "sector_ids": [sector["id"]],
        },
    )

    assert short.status_code == 422
    assert "Un nombre de usuario tiene de 3 a 64 caracteres" in short.text
    assert "La contraseña tiene de 10 a 256 caracteres" in short.text
    assert "Escriba el nombre completo" in short.text
    assert misfit.status_code == 422
    assert "Los guardaparques y sus jefes tienen sectores" in misfit.text
    assert {u["username"] for u in world.admin.get("/users").json()} == {"admin"}


def test_the_last_admin_can_be_neither_deactivated_nor_given_another_role(world: World) -> None:
    admin = signed_in(world, world.admin)
    mine = f"/console/admin/users/{world.admin.user_id}"

    deactivated = admin.post(f"{mine}/deactivate", {}, token_from=mine)
    demoted = admin.post(mine, {"full_name": "Office Admin", "role": "coordinator"})

    for answer in (deactivated, demoted):
        assert answer.status_code == 409
        assert "Es el último administrador activo" in answer.text
    me = user_named(world, "admin")
    assert (me["role"], me["active"]) == ("admin", True)
    assert admin.get("/console/admin/users").status_code == 200


@pytest.mark.parametrize("role", ["coordinator", "ranger_lead"])
def test_coordinators_and_ranger_leads_get_the_403_page_for_the_admin_pages(
    world: World, role: str
) -> None:
    browser = signed_in(world, world.user(role, sector_ids=[world.sector()["id"]]))

    for page in ADMIN_PAGES:
        answer = browser.get(page)
        assert answer.status_code == 403, page
        assert "Esta página es para otro rol." in answer.text
    posted = browser.post(
        "/console/admin/sectors",
        {"code": "AM-99", "name": "Intruso"},
        token_from="/console/account",
    )
    assert posted.status_code == 403
    assert "AM-99" not in str(world.admin.get("/sectors").json())


def test_admin_forms_without_the_token_are_refused_and_change_nothing(world: World) -> None:
    admin = signed_in(world, world.admin)
    admin.get("/console/admin/users")
    bodies = {
        "/console/admin/users/new": {
            "username": "forged",
            "full_name": "Forged",
            "password": "una clave larga",
            "role": "admin",
        },
        "/console/admin/sectors": {"code": "AM-66", "name": "Forjado"},
        f"/console/admin/users/{world.admin.user_id}/deactivate": {},
    }

    for path, body in bodies.items():
        for token in ({}, {"csrf_token": "guess"}):
            answer = admin.http.post(path, data={**body, **token})
            assert answer.status_code == 403, path
            assert "formulario está vencido" in answer.text

    assert {u["username"] for u in world.admin.get("/users").json()} == {"admin"}
    assert world.admin.get("/sectors").json() == []


def test_reference_data_made_through_the_pages_is_pulled_by_a_tablet(world: World) -> None:
    admin = signed_in(world, world.admin)
    sector = admin.post(
        "/console/admin/sectors",
        {
            "code": "AM-09",
            "name": "Venceremos",
            "zone": "amortiguamiento",
            "boundary": '{"type": "Polygon", "coordinates": '
            "[[[-77.4, -5.7], [-77.3, -5.7], [-77.3, -5.8], [-77.4, -5.7]]]}",
        },
    )
    assert sector.status_code == 303, sector.text
    [made] = world.admin.get("/sectors").json()
    community = admin.post(
        "/console/admin/communities",
        {
            "name": "Paz y Esperanza",
            "sector_id": made["id"],
            "kind": "native_community",
            "inside_protected_area": "true",
        },
    )
    assert community.status_code == 303, community.text
    category = admin.post(
        "/console/admin/categories",
        {
            "key": "threat.logging.timber",
            "name_es": "Tala de madera",
            "name_en": "Timber logging",
            "active": "true",
            "attribute_key": ["species", "volume_m3", ""],
            "attribute_type": ["list", "number", "text"],
            "attribute_options": ["cedro, caoba", "", ""],
            "attribute_required": ["yes", "no", "no"],
        },
    )
    assert category.status_code == 303, category.text
    assert "Tala de madera" in admin.get("/console/admin/categories").text

    ranger = world.user("ranger", sector_ids=[made["id"]])
    tablet = world.device(ranger)
    changes, cursor = pull_all(tablet)

    pulled = {(c["entity"], c["version"]): c["fields"] for c in changes}
    assert pulled[("sector", 1)]["name"] == "Venceremos"
    assert pulled[("sector", 1)]["boundary"]["type"] == "Polygon"
    assert pulled[("community", 1)]["kind"] == "native_community"
    assert pulled[("community", 1)]["inside_protected_area"] is True
    assert pulled[("observation_category", 1)]["attributes"] == [
        {"key": "species", "type": "list", "options": ["cedro", "caoba"], "required": True},
        {"key": "volume_m3", "type": "number", "options": None, "required": False},
    ]

    edit = f"/console/admin/sectors/{made['id']}"
    assert "Venceremos" in admin.get(edit).text
    renamed = admin.post(edit, {"name": "Venceremos Alto", "zone": "", "boundary": ""})
    assert renamed.status_code == 303, renamed.text
    [category_read] = world.admin.get("/observation-categories").json()
    retired = admin.post(
        f"/console/admin/categories/{category_read['id']}",
        {
            "name_es": "Tala de madera",
            "name_en": "Timber logging",
            "attribute_key": ["species"],
            "attribute_type": ["list"],
            "attribute_options": ["cedro, caoba, tornillo"],
            "attribute_required": ["yes"],
        },
    )
    assert retired.status_code == 303, retired.text
    later, _ = pull_all(tablet, cursor)
    latest = {c["entity"]: c for c in later}
    assert latest["sector"]["version"] == 2
    assert (latest["sector"]["fields"]["name"], latest["sector"]["fields"]["zone"]) == (
        "Venceremos Alto",
        None,
    )
    assert latest["sector"]["fields"]["boundary"] is None
    assert latest["observation_category"]["fields"]["active"] is False
    assert latest["observation_category"]["fields"]["attributes"][0]["options"] == [
        "cedro",
        "caoba",
        "tornillo",
    ]


def test_bad_reference_forms_say_what_is_wrong_in_spanish(world: World) -> None:
    sector = world.sector("AM-01")
    world.community(sector["id"], "Nuevo Edén")
    admin = signed_in(world, world.admin)

    taken = admin.post("/console/admin/sectors", {"code": "AM-01", "name": "Otra vez"})
    not_json = admin.post(
        "/console/admin/sectors", {"code": "AM-02", "name": "Dos", "boundary": "{oops"}
    )
    open_ring = admin.post(
        "/console/admin/sectors",
        {
            "code": "AM-03",
            "name": "Tres",
            "boundary": '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}',
        },
    )
    twice = admin.post(
        "/console/admin/communities",
        {"name": "Nuevo Edén", "sector_id": sector["id"], "kind": "settlement"},
    )
    bad_key = admin.post(
        "/console/admin/categories",
        {"key": "Tala de Madera", "name_es": "Tala", "name_en": "Logging"},
    )
    no_options = admin.post(
        "/console/admin/categories",
        {
            "key": "threat.trap",
            "name_es": "Trampa",
            "name_en": "Trap",
            "attribute_key": ["kind"],
            "attribute_type": ["list"],
            "attribute_options": [""],
            "attribute_required": ["no"],
        },
    )

    assert taken.status_code == 409
    assert "Ya existe un sector con este código" in taken.text
    assert 'value="Otra vez"' in taken.text
    for answer in (not_json, open_ring):
        assert answer.status_code == 422
        assert "El límite es un polígono GeoJSON" in answer.text
    assert twice.status_code == 409
    assert "Este sector ya tiene una comunidad con ese nombre" in twice.text
    assert bad_key.status_code == 422
    assert "La clave lleva minúsculas sin tildes" in bad_key.text
    assert no_options.status_code == 422
    assert "Cada atributo tiene una clave" in no_options.text
    assert 'value="kind"' in no_options.text  # the row typed is kept
    assert [s["code"] for s in world.admin.get("/sectors").json()] == ["AM-01"]
    assert world.admin.get("/observation-categories").json() == []


def test_rejected_and_waiting_changes_are_listed_for_the_admin(world: World) -> None:
    sector = world.sector("AM-01")
    ranger = world.user("ranger", username="ana-quispe", sector_ids=[sector["id"]])
    tablet = Tablet(world.device(ranger, label="Tableta 07"))
    rejected = tablet.send("patrol", str(uuid.uuid4()), "create", {"sector_id": "nowhere"})
    assert rejected["status"] == "rejected", rejected
    waiting_for = str(uuid.uuid4())
    tablet.defer_one(waiting_for)
    admin = signed_in(world, world.admin)

    refused = admin.get("/console/admin/held")
    held = admin.get("/console/admin/held?kind=deferred&offset=0")

    assert refused.status_code == 200
    assert "Cambios rechazados (1)" in refused.text
    assert "Cambios en espera (1)" in refused.text
    assert "Tableta 07" in refused.text
    assert "ana-quispe" in refused.text
    assert "<code>patrol</code>" in refused.text
    assert "<code>fields.sector_id</code>" in refused.text
    assert "track_segment" not in refused.text
    assert held.status_code == 200
    assert "<code>track_segment</code>" in held.text
    assert waiting_for in held.text
    assert admin.get("/console/admin/held?kind=other").status_code == 422


def test_the_personal_data_log_says_who_took_personal_data_out(world: World) -> None:
    coordinator = world.user("coordinator", username="carmen-office")
    other = world.user("coordinator", username="otro-office")
    assert coordinator.get("/people", params={"q": "tafur"}).status_code == 200
    assert other.get("/people", params={"pii": "false"}).status_code == 200  # not logged
    admin = signed_in(world, world.admin)

    page = admin.get("/console/admin/personal-data-log")
    only_other = admin.get(f"/console/admin/personal-data-log?user_id={other.user_id}")

    assert page.status_code == 200
    assert "carmen-office" in page.text
    assert "/api/v1/people" in page.text
    assert "q=tafur" in page.text
    assert "Nadie ha sacado datos personales" in only_other.text
    assert admin.get("/console/admin/personal-data-log?user_id=nope").status_code == 422


def test_the_rejected_changes_come_in_pages(world: World) -> None:
    ranger = world.user("ranger", sector_ids=[world.sector()["id"]])
    tablet = world.device(ranger)
    bad = [
        change("patrol", str(uuid.uuid4()), "create", seq, {"sector_id": "nowhere"})
        for seq in range(1, 52)
    ]
    assert {r["status"] for r in push(tablet, *bad)["results"]} == {"rejected"}
    admin = signed_in(world, world.admin)

    first = admin.get("/console/admin/held")
    second = admin.get("/console/admin/held?kind=rejected&offset=50")

    assert "1\u201350 de 51" in first.text  # the pager, with its en dash
    assert first.text.count("<code>uuid_parsing</code>") == 50
    assert 'href="?offset=50"' in first.text
    assert "51\u201351 de 51" in second.text
    assert second.text.count("<code>uuid_parsing</code>") == 1
