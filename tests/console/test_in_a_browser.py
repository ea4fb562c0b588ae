"""The console in a real browser (headless Chromium), against a real server process:
each person's journey, with screenshots for docs/console.md."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import PASSWORD
from tests.console.chrome import chrome, screenshot
from tests.servers import Deployment, deployment_fixture

pytestmark = pytest.mark.slow

deployment = deployment_fixture
__all__ = ["chrome"]


def sign_in(driver: WebDriver, base: str, username: str) -> None:
    driver.get(f"{base}/console/sign-in")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()


def test_an_admin_signs_in_in_spanish_and_out_again(
    deployment: Deployment, chrome: WebDriver
) -> None:
    deployment.env["FIELDSYNC_CONSOLE_COOKIE_SECURE"] = "false"
    server = deployment.start()
    base = server.base_url

    chrome.get(f"{base}/console/sign-in")
    assert chrome.find_element(By.TAG_NAME, "h1").text == "Ingresar"
    screenshot(chrome, "sign-in")
    sign_in(chrome, base, "boss")

    assert chrome.current_url.startswith(f"{base}/console/admin/users")
    chrome.find_element(By.CSS_SELECTOR, "form[action='/console/sign-out'] button").click()
    assert chrome.current_url == f"{base}/console/sign-in"
    chrome.get(f"{base}/console/account")
    assert "/console/sign-in" in chrome.current_url
