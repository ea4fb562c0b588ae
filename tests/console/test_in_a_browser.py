"""The console in a real browser (headless Chromium) against a real server process, on
the demo's programme (``fieldsync demo --scale 0.02`` built through the API): each
person's week, in Spanish, with screenshots for docs/console.md.

- a ranger lead approves a patrol and returns another with a comment;
- a coordinator reads the coffee figures, merges a duplicate, resolves a conflict;
- an admin enrolls a tablet from the QR page (the code enrolls it through the API)
  and revokes it after a confirmation.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import PASSWORD
from tests.console.chrome import chrome, screenshot
from tests.servers import Deployment, Server, module_deployment_fixture

pytestmark = pytest.mark.slow

module_deployment = module_deployment_fixture
__all__ = ["chrome"]

DEMO_USER = re.compile(r"^\s+\S[^\n]*?\s(demo-[a-z-]+)\s+(\S+)\s*$", re.MULTILINE)


@dataclass
class Office:
    """A server holding the demo programme, and the demo staff's passwords."""

    server: Server
    passwords: dict[str, str]

    @property
    def base(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module")
def office(module_deployment: Deployment) -> Office:
    module_deployment.env["FIELDSYNC_CONSOLE_COOKIE_SECURE"] = "false"
    server = module_deployment.start()
    built = module_deployment.run(
        "demo",
        "--scale",
        "0.02",
        "--today",
        "2026-11-24",
        "--url",
        server.base_url,
        "--admin",
        "boss",
        "--password-stdin",
        "--force",
        stdin=PASSWORD + "\n",
    )
    passwords = dict(DEMO_USER.findall(built))
    assert {"demo-coordinadora", "demo-jefe"} <= passwords.keys(), built
    passwords["boss"] = PASSWORD
    with httpx.Client(base_url=server.api, timeout=30) as http:
        submit_two_patrols(http)
    return Office(server, passwords)


def submit_two_patrols(http: httpx.Client) -> None:
    """Two patrols of this week, walked and submitted by a tablet: the lead's queue."""
    token = http.post("/auth/token", data={"username": "boss", "password": PASSWORD})
    boss = {"Authorization": f"Bearer {token.json()['access_token']}"}
    first = http.get("/sectors", headers=boss).json()[0]
    sector = first["id"]
    ring = first["boundary"]["coordinates"][0]
    west, east = min(p[0] for p in ring), max(p[0] for p in ring)
    south, north = min(p[1] for p in ring), max(p[1] for p in ring)
    ranger = http.post(
        "/users",
        headers=boss,
        json={
            "username": "elmer-vela",
            "password": PASSWORD,
            "full_name": "Elmer Vela Tuesta",
            "role": "ranger",
            "sector_ids": [sector],
        },
    ).json()["id"]
    code = http.post("/devices", headers=boss, json={"label": "Tableta 09", "user_id": ranger})
    tablet = http.post("/devices/enroll", json={"enrollment_code": code.json()["enrollment_code"]})
    device = tablet.json()
    changes: list[dict[str, Any]] = []
    for day, objective in ((2, "Control de tala, quebrada Shimpiyacu"), (3, "Ronda río Mayo")):
        patrol = str(uuid.uuid4())
        # A loop through the middle of the sector, a point every four minutes.
        points = []
        for step in range(60):
            turn = 2 * math.pi * step / 60
            points.append(
                {
                    "t": f"2026-11-{day:02d}T{7 + step // 15:02d}:{step % 15 * 4:02d}:00-05:00",
                    "lat": (south + north) / 2 + (north - south) / 6 * math.sin(turn),
                    "lon": (west + east) / 2 + (east - west) / 6 * math.sin(2 * turn) / 2,
                }
            )
        changes += [
            {
                "entity": "patrol",
                "id": patrol,
                "op": "create",
                "fields": {
                    "sector_id": sector,
                    "patrol_type": "ground",
                    "objective": objective,
                    "leader_id": ranger,
                    "started_at": f"2026-11-{day:02d}T07:00:00-05:00",
                    "ended_at": f"2026-11-{day:02d}T11:00:00-05:00",
                    "status": "submitted",
                },
            },
            {
                "entity": "track_segment",
                "id": str(uuid.uuid4()),
                "op": "create",
                "fields": {"patrol_id": patrol, "points": points},
            },
            {
                "entity": "observation",
                "id": str(uuid.uuid4()),
                "op": "create",
                "fields": {
                    "patrol_id": patrol,
                    "category_key": "threat.logging.timber",
                    "attributes": {"species": "cedro", "trees_count": 3, "fresh": True},
                    "observed_at": points[20]["t"],
                    "lat": points[20]["lat"],
                    "lon": points[20]["lon"],
                    "notes": "Tocones frescos junto a la trocha",
                    "action_taken": "reported",
                },
            },
        ]
    batch = {
        "protocol": 1,
        "device_id": device["device_id"],
        "changes": [
            {**change, "change_id": str(uuid.uuid4()), "seq": seq, "base_version": None}
            for seq, change in enumerate(changes, start=1)
        ],
    }
    auth = {"Authorization": f"Bearer {device['access_token']}"}
    pushed = http.post("/sync/push", headers=auth, json=batch).json()
    assert {r["status"] for r in pushed["results"]} == {"applied"}, pushed


def sign_in(driver: WebDriver, office: Office, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{office.base}/console/sign-in")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(office.passwords[username])
    driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait_for(driver, "form[action='/console/sign-out']")


def sign_out(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, "form[action='/console/sign-out'] button").click()
    wait_for(driver, "form[action='/console/sign-in']")


def wait_for(driver: WebDriver, css: str) -> None:
    """Until the page the last click loads shows ``css`` (a form's answer is a new page)."""
    WebDriverWait(driver, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)),
        message=f"no {css} on {driver.current_url}",
    )


def text(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "main").text


def test_the_sign_in_page_speaks_spanish_and_english_one_click_away(
    office: Office, chrome: WebDriver
) -> None:
    chrome.delete_all_cookies()
    chrome.get(f"{office.base}/console/sign-in")
    assert chrome.find_element(By.TAG_NAME, "h1").text == "Ingresar"
    screenshot(chrome, "sign-in")

    chrome.find_element(By.LINK_TEXT, "English").click()
    assert chrome.find_element(By.TAG_NAME, "h1").text == "Sign in"
    chrome.find_element(By.LINK_TEXT, "Español").click()
    assert chrome.find_element(By.TAG_NAME, "h1").text == "Ingresar"


def test_a_ranger_lead_approves_a_patrol_and_returns_another(
    office: Office, chrome: WebDriver
) -> None:
    sign_in(chrome, office, "demo-jefe")
    assert "/console/patrols" in chrome.current_url
    screenshot(chrome, "lead-queue")
    queue = [
        link.get_attribute("href")
        for link in chrome.find_elements(By.CSS_SELECTOR, "main table a[href*='/console/patrols/']")
    ]
    waiting = [
        href
        for href in dict.fromkeys(queue)
        if href and re.search(r"/patrols/[0-9a-f-]{36}$", href)
    ]
    assert len(waiting) >= 2, text(chrome)

    chrome.get(waiting[0])
    assert chrome.find_elements(By.CSS_SELECTOR, "svg.map"), "the patrol's page draws its map"
    screenshot(chrome, "lead-patrol")
    chrome.find_element(By.NAME, "comment").send_keys("Conforme, buen registro del recorrido.")
    chrome.find_element(By.CSS_SELECTOR, "button[name=decision][value=approve]").click()
    wait_for(chrome, ".notice")
    assert "Aprobado" in text(chrome) or "aprobado" in text(chrome), text(chrome)

    chrome.get(waiting[1])
    chrome.find_element(By.NAME, "comment").send_keys("Falta el tramo de la tarde; complételo.")
    chrome.find_element(By.CSS_SELECTOR, "button[name=decision][value=return]").click()
    wait_for(chrome, ".notice")
    assert "Falta el tramo de la tarde" in text(chrome)
    assert "Devuelto" in text(chrome) or "devuelto" in text(chrome), text(chrome)

    chrome.get(f"{office.base}/console/threats")
    assert chrome.find_elements(By.CSS_SELECTOR, "svg.chart")
    screenshot(chrome, "lead-threats")
    sign_out(chrome)


def test_an_admin_enrolls_a_tablet_from_the_qr_page_and_revokes_it(
    office: Office, chrome: WebDriver
) -> None:
    sign_in(chrome, office, "boss")
    chrome.get(f"{office.base}/console/devices/new")
    chrome.find_element(By.NAME, "label").send_keys("Tableta 12")
    person = chrome.find_element(
        By.CSS_SELECTOR, "select[name=user_id] option[value]:not([value=''])"
    )
    person.click()
    chrome.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait_for(chrome, "figure.qr svg")

    code = chrome.find_element(By.ID, "enrollment-code").text
    screenshot(chrome, "admin-enrollment")
    with httpx.Client(base_url=office.server.api) as tablet:
        enrolled = tablet.post("/devices/enroll", json={"enrollment_code": code})
        assert enrolled.status_code == 200, enrolled.text
        tokens = enrolled.json()
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert tablet.get("/auth/me", headers=auth).status_code == 200
        report = {"app_version": "2.4.1", "pending_changes": 0, "free_storage_mb": 3120}
        pushed = tablet.post(
            "/sync/push",
            headers=auth,
            json={"protocol": 1, "device_id": tokens["device_id"], "changes": [], "client": report},
        )
        assert pushed.status_code == 200, pushed.text
        assert tablet.get("/sync/pull", headers=auth).status_code == 200
        chrome.get(f"{office.base}/console/devices")
        row = chrome.find_element(
            By.XPATH, "//tr[td[starts-with(normalize-space(), 'Tableta 12')]]"
        )
        assert "2.4.1" in row.text
        assert "3120 MB libres" in row.text.replace(".", "").replace("\u00a0", "")
        screenshot(chrome, "admin-devices")

        chrome.get(f"{office.base}/console/devices/{tokens['device_id']}/revoke")
        screenshot(chrome, "admin-revoke")
        chrome.find_element(By.CSS_SELECTOR, "button.danger").click()
        WebDriverWait(chrome, 20).until(lambda driver: "/revoke" not in driver.current_url)

        refused = tablet.get("/auth/me", headers=auth)
        assert refused.status_code == 401
        assert refused.json()["code"] == "device_revoked"
    chrome.get(f"{office.base}/console/admin/users")
    screenshot(chrome, "admin-users")
    sign_out(chrome)


def test_a_coordinator_reads_the_coffee_figures_merges_a_duplicate_and_resolves_a_conflict(
    office: Office, chrome: WebDriver
) -> None:
    with httpx.Client(base_url=office.server.api, timeout=30) as http:
        token = http.post(
            "/auth/token",
            data={
                "username": "demo-coordinadora",
                "password": office.passwords["demo-coordinadora"],
            },
        ).json()["access_token"]
        coffee = http.get(
            "/reports/attendance",
            params={"from": "2018-01-01", "to": "2020-12-31", "program": "coffee_production"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    sign_in(chrome, office, "demo-coordinadora")

    chrome.get(
        f"{office.base}/console/programme?from=2018-01-01&to=2020-12-31&program=coffee_production"
    )
    first = chrome.find_element(By.CSS_SELECTOR, ".card .figure").text
    assert first == str(coffee["participants"]), text(chrome)
    assert chrome.find_elements(By.CSS_SELECTOR, "svg")
    screenshot(chrome, "coordinator-programme")

    chrome.get(f"{office.base}/console/people/duplicates")
    screenshot(chrome, "coordinator-duplicates")
    chrome.find_element(By.CSS_SELECTOR, "a[href^='/console/people/merge?']").click()
    wait_for(chrome, "form[action='/console/people/merge'] button.danger")
    screenshot(chrome, "coordinator-merge")
    chrome.find_element(
        By.CSS_SELECTOR, "form[action='/console/people/merge'] button.danger"
    ).click()
    wait_for(chrome, ".notice")

    chrome.get(f"{office.base}/console/conflicts")
    chrome.find_element(By.CSS_SELECTOR, "main table a[href^='/console/conflicts/']").click()
    wait_for(chrome, "button[name=resolution][value=take_device]")
    screenshot(chrome, "coordinator-conflict")
    chrome.find_element(By.CSS_SELECTOR, "button[name=resolution][value=take_device]").click()
    wait_for(chrome, "form[action$='/resolve'] button[type=submit]")
    chrome.find_element(By.CSS_SELECTOR, "form[action$='/resolve'] button[type=submit]").click()
    wait_for(chrome, ".notice")
    assert "Resuelto" in text(chrome), text(chrome)
    sign_out(chrome)
