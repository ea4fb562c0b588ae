"""A real browser for the console's journeys: Debian's headless Chromium, driven by
Selenium through Debian's chromedriver (never a driver or browser fetched at run
time). With ``CI=true`` a missing browser fails the run; elsewhere the tests that
need it say they were skipped, and why."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _found() -> tuple[str, str] | None:
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def chrome() -> Iterator[object]:
    """A headless Chromium, 1280 by 900 pixels (a phone-sized window is a test's own choice)."""
    found = _found()
    if found is None:
        message = (
            "no chromium and chromedriver on the PATH: apt-get install chromium chromium-driver"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--lang=es-PE",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    session.set_page_load_timeout(30)
    try:
        yield session
    finally:
        session.quit()


def screenshot(driver: object, name: str) -> Path:
    """Save what the browser shows as ``docs/console/<name>.png`` (docs/console.md
    shows them); the whole page's height."""
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(driver, WebDriver)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, min(max(int(height) + 120, 600), 4000))
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(width, 900)
    return path
