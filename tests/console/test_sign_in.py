"""Signing in to the console: a session in the database, a strict cookie, forms that
carry an anti-forgery token, the API's throttling, sign-out, idle expiry, and
deactivation ending every session; on both databases."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlmodel import Session, select, update

from schemas import ConsoleSession
from schemas.types import utcnow
from tests.conftest import World
from tests.console.conftest import Browser, signed_in


def test_a_coordinator_signs_in_with_a_strict_cookie_and_lands_on_the_programme(
    world: World, browser: Browser
) -> None:
    coordinator = world.user("coordinator")

    answer = browser.sign_in(coordinator.username)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert "fieldsync_console=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/console" in cookie
    start = browser.get("/console/")
    assert start.headers["location"] == "/console/programme"


def test_the_page_speaks_spanish_first_and_english_one_click_away(browser: Browser) -> None:
    spanish = browser.get("/console/sign-in")
    assert 'lang="es"' in spanish.text
    assert "Ingresar" in spanish.text
    assert "Contraseña" in spanish.text

    english = browser.get("/console/sign-in?lang=en")
    assert "Password" in english.text
    assert browser.get("/console/sign-in").text.count("Password") >= 1  # the choice is kept


def test_a_wrong_password_is_refused_in_spanish_and_counted_like_the_api(
    world: World, browser: Browser
) -> None:
    lead = world.user("ranger_lead")
    for _ in range(world.settings.login_max_failures):
        refused = browser.sign_in(lead.username, "not the password")
        assert refused.status_code == 401
        assert "Usuario o contraseña incorrectos." in refused.text

    locked = browser.sign_in(lead.username)

    assert locked.status_code == 429
    assert "Demasiados intentos fallidos" in locked.text


def test_a_form_without_its_token_changes_nothing(world: World, browser: Browser) -> None:
    lead = world.user("ranger_lead")

    forged = browser.http.post(
        "/console/sign-in", data={"username": lead.username, "password": "correct horse battery"}
    )

    assert forged.status_code == 403
    assert "fieldsync_console=" not in forged.headers.get("set-cookie", "")
    signed = signed_in(world, lead)
    forged_out = signed.http.post("/console/sign-out", data={"csrf_token": "guess"})
    assert forged_out.status_code == 403
    assert signed.get("/console/account").status_code == 200


def test_signing_out_ends_the_session_for_every_process(world: World) -> None:
    lead = world.user("ranger_lead")
    browser = signed_in(world, lead)
    cookie = browser.http.cookies.get("fieldsync_console")
    token = browser.token("/console/account")

    out = browser.http.post("/console/sign-out", data={"csrf_token": token})

    assert out.status_code == 303
    stolen = Browser(world.client)
    stolen.http.cookies.set("fieldsync_console", cookie or "", path="/console")
    assert stolen.get("/console/account").status_code == 303  # to the sign-in page


def test_an_idle_session_ends(world: World) -> None:
    browser = signed_in(world, world.user("coordinator"))
    with Session(world.engine) as session:
        idle = utcnow() - timedelta(minutes=world.settings.console_idle_minutes + 1)
        session.exec(update(ConsoleSession).values(last_seen_at=idle))
        session.commit()

    answer = browser.get("/console/account")

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in?next=")


def test_deactivating_a_user_ends_their_console_session_at_once(world: World) -> None:
    lead = world.user("ranger_lead")
    browser = signed_in(world, lead)
    assert browser.get("/console/account").status_code == 200

    world.admin.patch(f"/users/{lead.user_id}", json={"active": False})

    assert browser.get("/console/account").status_code == 303


def test_field_roles_see_only_their_account(world: World) -> None:
    ranger = world.user("ranger")
    browser = signed_in(world, ranger)

    assert browser.get("/console/").headers["location"] == "/console/account"
    page = browser.get("/console/account")
    assert page.status_code == 200
    assert "Guardaparque" in page.text
    assert "/console/patrols" not in page.text  # no section of the office in its menu


def test_the_session_is_kept_in_the_database_hashed(world: World) -> None:
    browser = signed_in(world, world.user("coordinator"))
    secret = browser.http.cookies.get("fieldsync_console")

    with Session(world.engine) as session:
        stored = session.exec(select(ConsoleSession)).one()
    assert secret
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored.secret_hash


def test_a_next_page_elsewhere_is_not_followed(world: World, browser: Browser) -> None:
    lead = world.user("ranger_lead")
    token = browser.token("/console/sign-in")

    answer = browser.http.post(
        "/console/sign-in",
        data={
            "csrf_token": token,
            "username": lead.username,
            "password": "correct horse battery",
            "next": "https://evil.example/console/",
        },
    )

    assert answer.headers["location"] == "/console/"


def test_a_form_posted_after_a_minute_idle_answers_at_once(world: World) -> None:
    """The session's last use is noted in the form's own transaction, which on SQLite
    holds the one write lock: a second transaction for it would wait on the first."""
    browser = signed_in(world, world.user("coordinator"))
    token = browser.token("/console/account")
    with Session(world.engine) as session:
        session.exec(update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(minutes=2)))
        session.commit()

    out = browser.http.post("/console/sign-out", data={"csrf_token": token})

    assert out.status_code == 303
