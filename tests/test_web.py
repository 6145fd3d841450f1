"""The web page in a real headless Chromium (selenium), against a live uvicorn server on tiny models.
Skipped when Chromium, its driver or selenium is missing (.ci/run installs them)."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import serve_models

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)
pytestmark = [pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no chromium/chromedriver installed"),
              pytest.mark.timeout(300)]
selenium = pytest.importorskip("selenium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    import uvicorn

    from simpair.serve import create_app

    app = create_app(**serve_models(tiny_bert, tmp_path_factory.mktemp("web"), steps=2), bf16="no")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def _wait_text(browser, css: str, timeout: float = 30.0) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    el = WebDriverWait(browser, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    return el.text


def test_page_match_search_and_sentiment(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    assert "matcher" in _wait_text(browser, "#info")
    browser.find_element(By.ID, "match-go").click()
    assert _wait_text(browser, "#match-label") in ("same", "different")
    prob = float(_wait_text(browser, "#match-prob"))
    assert 0.0 <= prob <= 1.0

    browser.find_element(By.ID, "search-q").send_keys("怎么开初婚未育证明")
    browser.find_element(By.ID, "search-rerank").click()
    browser.find_element(By.ID, "search-go").click()
    _wait_text(browser, "#search-table")
    rows = browser.find_elements(By.CSS_SELECTOR, "#search-table tr.hit")
    assert len(rows) == 5 and all(len(r.find_elements(By.TAG_NAME, "td")) == 5 for r in rows)

    browser.find_element(By.ID, "sentiment-go").click()
    assert _wait_text(browser, "#sentiment-label") in ("negative", "positive")


def test_page_shows_server_errors(server: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    _wait_text(browser, "#info")
    box = browser.find_element(By.ID, "match-a")
    box.clear()
    browser.find_element(By.ID, "match-go").click()
    assert "422" in _wait_text(browser, "#match-out .error")
