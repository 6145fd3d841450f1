"""The web page in a real headless Chromium (selenium), against a live uvicorn server on tiny models.
Skipped when Chromium, its driver or selenium is missing (.ci/run installs them)."""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def running(app):
    """``app`` served by uvicorn in a thread on a free loopback port; yields its URL, stops it after."""
    import uvicorn

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if srv.started:
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    from simpair.server import create_app

    with running(create_app(**serve_models(tiny_bert, tmp_path_factory.mktemp("web"), steps=2), bf16="no")) as url:
        yield url


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


def _until(check, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while not check():
        assert time.time() < end, "the page did not get there in time"
        time.sleep(0.1)


def test_labelling_panel_writes_the_same_files_as_the_terminal(tiny_bert: Path, tmp_path: Path, browser) -> None:
    """`serve --label FILE`: the panel shows each pair, answers by button and key, undoes, and the answers land
    in FILE.labelled.tsv exactly as `simpair label` writes them."""
    from selenium.webdriver.common.by import By

    from simpair.readers import read_pairs
    from simpair.server import create_app

    mined = tmp_path / "mined.tsv"
    mined.write_text("text_a\ttext_b\tlabel\n怎么开证明\t证明怎么开\t\n明天会下雨吗\t昨天下雨了吗\t\n"
                     "信用卡怎么提额\t如何提高信用卡额度\t\n", encoding="utf-8")
    app = create_app(load_sentiment=False, label=str(mined), bf16="no", model=str(tiny_bert))
    with running(app) as url:
        browser.get(url + "/")
        shown = lambda text: _until(lambda: browser.find_element(By.ID, "label-a").text == text)  # noqa: E731
        progress = lambda text: _until(lambda: text in browser.find_element(By.ID, "label-progress").text)  # noqa: E731
        shown("怎么开证明")
        browser.find_element(By.ID, "label-same").click()
        shown("明天会下雨吗")
        browser.find_element(By.ID, "label-different").click()
        shown("信用卡怎么提额")
        browser.find_element(By.ID, "label-undo").click()  # pair 2 asked again
        shown("明天会下雨吗")
        browser.find_element(By.TAG_NAME, "body").send_keys("k")  # skip, by key
        progress("skipped 1")
        browser.find_element(By.ID, "label-different").click()
        assert "all answered" in _wait_text(browser, "#label-done")
    pairs = read_pairs(tmp_path / "mined.labelled.tsv", warn=False).pairs
    assert [(p.text_a, p.label) for p in pairs] == [("怎么开证明", 1.0), ("信用卡怎么提额", 0.0)]


def test_page_asks_for_the_key_once_and_keeps_it_for_the_tab(tiny_bert: Path, browser) -> None:
    """With API keys on, the page shows a key box (every API call is 401 without it), and once the key is given
    it loads the models and matches, sending the key with every call."""
    from selenium.webdriver.common.by import By

    from simpair.server import create_app

    app = create_app(model=str(tiny_bert), load_sentiment=False, bf16="no", keys=["page-key"])
    with running(app) as url:
        browser.get(url + "/")
        _until(lambda: "needs an API key" in browser.find_element(By.ID, "info").text)
        assert browser.find_element(By.ID, "key-section").is_displayed()
        browser.find_element(By.ID, "api-key").send_keys("wrong")
        browser.find_element(By.ID, "api-key-go").click()
        _until(lambda: "not accepted" in browser.find_element(By.ID, "key-out").text)
        box = browser.find_element(By.ID, "api-key")
        box.clear()
        box.send_keys("page-key")
        browser.find_element(By.ID, "api-key-go").click()
        _until(lambda: "matcher" in browser.find_element(By.ID, "info").text)
        assert not browser.find_element(By.ID, "key-section").is_displayed()
        browser.refresh()  # the same tab: the key is kept
        _until(lambda: "matcher" in browser.find_element(By.ID, "info").text)
        browser.find_element(By.ID, "match-go").click()
        assert _wait_text(browser, "#match-label") in ("same", "different")
