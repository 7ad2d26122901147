"""The HTTP API and the dashboard, over a real uvicorn server, driven by httpx and headless Chromium."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import uvicorn

from codequant_generator.launch import free_port
from codequant_orchestrator.api import create_app

T = TypeVar("T")
STUDY = """\
name: {name}
output_dir: {out}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: fp32, method: baseline}}
      - {{name: rtn-2bit, method: rtn, bits: 2, group_size: 64}}
benchmarks:
  - {{name: humaneval, limit: 2, max_new_tokens: 160}}
sampling: {{n: 2}}
statistics: {{bootstrap_samples: 200}}
"""


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("api")
    app = create_app(store_url=f"sqlite:///{root / 'api.db'}")
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline
        time.sleep(0.1)
    yield url, root
    instance.should_exit = True
    thread.join(timeout=10)


def settled(read: Callable[[], T]) -> T:
    """``read()`` of elements the dashboard may re-render (every 2 s) between finding and reading them."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.1)
    return read()


def wait_done(url: str, study: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        progress = httpx.get(f"{url}/studies/{study}/progress").json()
        if progress["status"] in ("done", "failed"):
            return progress
        assert time.monotonic() < deadline, progress
        time.sleep(1)


def test_invalid_studies_are_422_with_field_names(server: tuple[str, Path]) -> None:
    url, _ = server
    response = httpx.post(
        f"{url}/studies",
        content="name: x\nmodels: []\nbenchmarks: [nope]\nsurprise: 1\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 422
    fields = {p["field"]: p for p in response.json()["detail"]}
    assert {"models", "benchmarks[0].name", "surprise"} <= fields.keys()
    assert fields["surprise"]["line"] == 4 and fields["surprise"]["message"] == "unknown key"
    broken = httpx.post(f"{url}/studies", content="name: [x\n", headers={"Content-Type": "text/plain"})
    assert broken.status_code == 422 and "invalid YAML" in broken.json()["detail"][0]["message"]
    wrong_type = httpx.post(f"{url}/studies", json={"name": "x"})
    assert wrong_type.status_code == 415
    assert httpx.get(f"{url}/studies/none").status_code == 404


def test_a_submitted_study_runs_and_its_report_is_served(server: tuple[str, Path]) -> None:
    url, root = server
    text = STUDY.format(name="api-study", out=root / "api-study")
    response = httpx.post(f"{url}/studies", content=text, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 202, response.text
    assert response.json()["links"]["progress"] == "/studies/api-study/progress"
    again = httpx.post(f"{url}/studies", content=text, headers={"Content-Type": "application/yaml"})
    assert again.status_code == 409
    progress = wait_done(url, "api-study")
    assert progress["status"] == "done", progress
    assert progress["stages"]["execute"] == {"done": 8, "total": 8, "failed": 0}
    detail = httpx.get(f"{url}/studies/api-study").json()
    assert {v["variant"]: v["status"] for v in detail["variants"]} == {"fp32": "ready", "rtn-2bit": "ready"}
    assert [s["id"] for s in httpx.get(f"{url}/studies").json()] == ["api-study"]
    report = httpx.get(f"{url}/studies/api-study/report")
    assert report.status_code == 200 and "Table 3 layout" in report.text
    assert httpx.get(f"{url}/studies/api-study/report/report.json").status_code == 200
    assert httpx.get(f"{url}/studies/api-study/report/..%2F..%2Fstore.db").status_code == 404


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs chromium-driver")
def test_the_dashboard_in_headless_chromium(server: tuple[str, Path], tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, root = server
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")), options=options
    )
    try:
        driver.get(url)
        assert driver.title == "codequant"
        driver.find_element(By.TAG_NAME, "summary").click()
        # Its own seed and more problems than the API test, so its work is not already stored and the
        # page has time to show it in progress.
        text = STUDY.format(name="ui-study", out=root / "ui-study")
        text = text.replace("limit: 2", "limit: 6").replace("{n: 2}", "{n: 4, seed: 11}")
        driver.find_element(By.ID, "yaml").send_keys(text)
        driver.find_element(By.ID, "send").click()
        wait = WebDriverWait(driver, 600, poll_frequency=0.5)
        wait.until(ec.text_to_be_present_in_element((By.ID, "submit-result"), "submitted ui-study"))
        wait.until(ec.presence_of_element_located((By.ID, "study-ui-study")))
        seen_partial = False

        def finished(driver) -> bool:
            # The page re-renders its cards on every refresh: look the card up again each time.
            nonlocal seen_partial
            card = driver.find_element(By.ID, "study-ui-study")
            counts = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".stage .count")]
            seen_partial |= any(c.split(" / ")[0] not in ("0", c.split(" / ")[-1]) for c in counts if " / " in c)
            return bool(card.find_elements(By.CSS_SELECTOR, "iframe.report"))

        wait = WebDriverWait(driver, 600, poll_frequency=0.5, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(finished)
        card = driver.find_element(By.ID, "study-ui-study")
        assert seen_partial, "the page never showed a stage in progress"
        assert settled(lambda: card.find_element(By.CSS_SELECTOR, ".status").text) == "done"
        statuses = settled(lambda: [e.text for e in card.find_elements(By.CSS_SELECTOR, ".variant-status")])
        assert statuses == ["ready", "ready"]
        driver.switch_to.frame(card.find_element(By.CSS_SELECTOR, "iframe.report"))
        assert "Table 3 layout" in driver.find_element(By.TAG_NAME, "body").text
        driver.switch_to.default_content()
        driver.find_element(By.ID, "yaml").clear()
        driver.find_element(By.ID, "yaml").send_keys("name: bad\nsurprise: 1\n")
        driver.find_element(By.ID, "send").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "submit-result"), "unknown key"))
    finally:
        driver.quit()
