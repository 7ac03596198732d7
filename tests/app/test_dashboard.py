"""The live comparison panel of ``/``, driven in a real headless Chromium against a live server.

Debian's ``chromium`` and ``chromium-driver`` (``tests/system-deps.sh``) through Selenium. The
page's bars and counters are checked against the server's ``/stats``; screenshots of the panel
(desktop and phone-sized) are saved under ``tests/artifacts/`` for people to look at.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import REPO, HybridProcess, hybrid_argv, running

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = REPO / "tests" / "artifacts"
#: The sides whose abandoned counters must rise: the two that can cancel a waiting request.
CANCELLING = ("twisted", "asgi")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def server() -> Iterator[HybridProcess]:
    with running(hybrid_argv()) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        try:
            driver.set_window_size(1100, 1500)
            yield driver
        finally:
            driver.quit()


def stats(server: HybridProcess) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{server.url}/stats").json()
    return result


def open_panel(browser: WebDriver, server: HybridProcess) -> list[str]:
    """Load ``/`` and wait for the counters; returns the sides the panel shows."""
    browser.get(f"{server.url}/")
    WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".side-card"))
    return [card.get_attribute("data-side") or "" for card in browser.find_elements(By.CSS_SELECTOR, ".side-card")]


def start_run(browser: WebDriver, requests: int, delay: float, button: str) -> None:
    """Fill the form, press ``button`` and wait (bounded) until the run is over and counters settled."""
    runs = browser.find_element(By.ID, "compare").get_attribute("data-runs") or "0"
    for name, value in (("n", requests), ("delay", delay)):
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))
    browser.find_element(By.CSS_SELECTOR, f'button[value="{button}"]').click()
    WebDriverWait(browser, 60).until(
        lambda b: b.find_element(By.ID, "compare").get_attribute("data-runs") == str(int(runs) + 1)
    )


def bars(browser: WebDriver, side: str) -> list[str]:
    """The outcome of each bar of ``side``, in request order."""
    found = browser.find_elements(By.CSS_SELECTOR, f'svg.timeline rect.bar[data-side="{side}"]')
    ordered = sorted(found, key=lambda bar: int(bar.get_attribute("data-index") or -1))
    return [(bar.get_attribute("class") or "").removeprefix("bar ") for bar in ordered]


def counter(browser: WebDriver, side: str, name: str) -> tuple[int, str]:
    """A counter's value and its "+N this run" note."""
    cell = browser.find_element(By.CSS_SELECTOR, f'.side-card[data-side="{side}"] [data-counter="{name}"]')
    note = cell.find_element(By.TAG_NAME, "small").text
    return int(cell.text.removesuffix(note).strip()), note


def screenshot(browser: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / name))


def test_a_run_draws_a_bar_per_request_and_moves_the_counters(browser: WebDriver, server: HybridProcess) -> None:
    """6 requests per side at once: 6 finished bars per side, and the server saw all 6 in flight together."""
    sides = open_panel(browser, server)
    assert {"twisted", "asgi"} <= set(sides)
    before = stats(server)
    start_run(browser, 6, 0.3, "run")
    after = stats(server)
    for side in sides:
        assert bars(browser, side) == ["done"] * 6
        # The page's warm-up (one ``?delay=0&warmup=1`` per request) is left out of /stats.
        assert after[side]["completed"] - before[side]["completed"] == 6
        assert counter(browser, side, "completed") == (after[side]["completed"], "+6 this run")
        assert counter(browser, side, "peak_in_flight")[0] == after[side]["peak_in_flight"] == 6
        assert counter(browser, side, "in_flight")[0] == 0
    status = browser.find_element(By.CSS_SELECTOR, "#compare .status").text
    assert status.startswith("Run 1 done: 6 requests per side")
    screenshot(browser, "dashboard.png")


def test_abandon_half_is_counted_abandoned_on_both_sides(browser: WebDriver, server: HybridProcess) -> None:
    """Every other request is aborted by the page; Twisted and asyncio both count it abandoned."""
    sides = open_panel(browser, server)
    before = stats(server)
    start_run(browser, 4, 0.5, "abandon")
    after = stats(server)
    for side in sides:
        assert bars(browser, side) == ["done", "abandoned"] * 2
    for side in CANCELLING:
        assert after[side]["abandoned"] - before[side]["abandoned"] == 2
        assert after[side]["completed"] - before[side]["completed"] == 2
        assert counter(browser, side, "abandoned") == (after[side]["abandoned"], "+2 this run")
    screenshot(browser, "dashboard-abandon.png")


def test_readable_on_a_phone(browser: WebDriver, server: HybridProcess) -> None:
    """At a phone's width the page does not scroll sideways and the panel still runs."""
    browser.set_window_size(390, 1400)
    try:
        sides = open_panel(browser, server)
        start_run(browser, 5, 0.2, "run")
        for side in sides:
            assert bars(browser, side) == ["done"] * 5
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        screenshot(browser, "dashboard-phone.png")
    finally:
        browser.set_window_size(1100, 1500)


def test_static_files_are_served(server: HybridProcess) -> None:
    """The panel needs nothing from outside the site: its script and style come from /static."""
    page = httpx.get(f"{server.url}/").text
    assert "http://" not in page and "https://" not in page
    for name, kind in (("dashboard.js", "javascript"), ("dashboard.css", "text/css")):
        response = httpx.get(f"{server.url}/static/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert "https://" not in response.text
