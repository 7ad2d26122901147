"""The HTTP API and the dashboard, over a real uvicorn server, driven by httpx and headless Chromium.

The server resolves its store and output folder from the environment as `codequant api` does
($CODEQUANT_OUTPUT_ROOT), so `codequant status` run beside it must find the studies it ran."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from codequant.store import Job, Store, StudyVariant, Variant
from codequant.store import Study as StudyRow
from codequant_orchestrator.api import create_app
from codequant_orchestrator.api.auth import Tokens
from tests.cli import codequant
from tests.orchestrator import api_cases
from tests.orchestrator.api_server import TOKEN, Api, serving

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
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The output root, given as `codequant api` and `codequant status` read it (no store URL in the environment)."""
    folder = tmp_path_factory.mktemp("api") / "runs"
    saved = {name: os.environ.pop(name, None) for name in ("CODEQUANT_STORE_URL", "CODEQUANT_OUTPUT_ROOT")}
    os.environ["CODEQUANT_OUTPUT_ROOT"] = str(folder)
    yield folder
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


@pytest.fixture(scope="module")
def server(tiny_model: Path, root: Path) -> Iterator[Api]:
    with serving(create_app(tokens=Tokens(TOKEN))) as api:
        yield api


def settled(read: Callable[[], T]) -> T:
    """``read()`` of elements the dashboard may re-render (every 2 s) between finding and reading them."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.1)
    return read()


def stored_rows(store: Store) -> tuple[int, int, int]:
    """(studies, study-variant links, jobs) in the store."""
    with store.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) for t in (StudyRow, StudyVariant, Job))


@pytest.mark.parametrize("case", api_cases.UNAUTHORIZED, ids=lambda c: c.id)
def test_every_route_but_health_and_the_page_needs_a_token(server: Api, case: api_cases.Unauthorized) -> None:
    response = httpx.request(case.method, f"{server.url}{case.path}", headers=case.headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token" in response.json()["detail"]


def test_health_and_the_dashboard_page_are_open(server: Api) -> None:
    assert all(httpx.get(f"{server.url}{path}").status_code == 200 for path in api_cases.PUBLIC)
    schema = server.client.get("/openapi.json").json()  # with the token: every route, listed
    assert {"/studies", "/studies/{study_id}", "/studies/{study_id}/progress"} <= set(schema["paths"])
    assert "delete" in schema["paths"]["/studies/{study_id}"]


@pytest.mark.parametrize("case", api_cases.BAD_STUDIES, ids=lambda c: c.id)
def test_bad_studies_get_a_json_error_and_nothing_is_stored(server: Api, case: api_cases.BadStudy) -> None:
    before = stored_rows(server.store)
    api_cases.check(case, api_cases.send(server.client, case, TOKEN))
    assert stored_rows(server.store) == before
    assert server.client.get(f"/studies/{case.name}").status_code == 404


def test_a_bad_study_names_its_line(server: Api) -> None:
    response = server.submit("name: x\nmodels: []\nbenchmarks: [nope]\nsurprise: 1\n")
    fields = {p["field"]: p for p in response.json()["detail"]}
    assert fields["surprise"]["line"] == 4 and fields["surprise"]["message"] == "unknown key"
    escaping = server.submit(api_cases.valid("x") + "output_dir: ../elsewhere\n").json()["detail"]
    message = "must not contain '..' (it is a folder under the API's output root)"
    assert escaping == [{"field": "output_dir", "line": 10, "message": message}]


def test_an_oversized_body_without_a_length_is_cut_off(server: Api) -> None:
    def chunks() -> Iterator[bytes]:  # chunked transfer: the server learns the size only by reading
        yield api_cases.valid("bad-chunked").encode()
        for _ in range(40):
            yield b"#" * 65536

    response = server.client.post("/studies", content=chunks(), headers={"Content-Type": "application/yaml"})
    assert response.status_code == 413 and "at most" in response.json()["detail"]
    assert server.client.get("/studies/bad-chunked").status_code == 404


def test_a_benchmark_without_data_is_refused_at_submission(tmp_path: Path) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    app = create_app(store_url=f"sqlite:///{tmp_path / 'store.db'}", output_root=tmp_path / "runs", data_dir=empty)
    text = api_cases.valid("needs-java", **{"name: humaneval": "name: mceval-java"})
    with TestClient(app) as client:
        response = client.post("/studies", content=text, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "benchmarks[0]" and problem["line"] == 8
    assert "'mceval-java'" in problem["message"] and "benchmark file not found" in problem["message"]
    assert stored_rows(app.state.store) == (0, 0, 0)
    assert not (tmp_path / "runs" / "needs-java").exists()


def test_a_submitted_study_runs_under_the_output_root_and_codequant_status_agrees(server: Api, root: Path) -> None:
    text = STUDY.format(name="api-study", out="studies/api-study")
    response = server.submit(text)
    assert response.status_code == 202, response.text
    assert response.json()["links"]["progress"] == "/studies/api-study/progress"
    assert server.submit(text).status_code == 409
    progress = server.wait_status("api-study", ("done", "failed"))
    assert progress["status"] == "done", progress
    assert progress["stages"]["execute"] == {"done": 8, "total": 8, "failed": 0}
    detail = server.client.get("/studies/api-study").json()
    assert {v["variant"]: v["status"] for v in detail["variants"]} == {"fp32": "ready", "rtn-2bit": "ready"}
    assert "api-study" in [s["id"] for s in server.client.get("/studies").json()]
    assert (root / "studies" / "api-study" / "report" / "report.html").is_file()  # under the output root
    report = server.client.get("/studies/api-study/report")
    assert report.status_code == 200 and "Table 3 layout" in report.text
    assert server.client.get("/studies/api-study/report/report.json").status_code == 200
    assert server.client.get("/studies/api-study/report/..%2F..%2Fstore.db").status_code == 404
    # `codequant status` finds the API's store as the API does (from $CODEQUANT_OUTPUT_ROOT), by id or YAML file.
    spec = root.parent / "api-study.yaml"
    spec.write_text(text)
    for target in ("api-study", spec, root / "studies" / "api-study"):
        status = codequant("status", target, "--json", timeout=120)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["stages"] == progress["stages"], target
    unknown = codequant("status", "never-submitted", timeout=120)
    assert unknown.returncode == 2 and "no results store holds study 'never-submitted'" in unknown.stderr


def test_cancelling_a_study_stops_it_and_keeps_its_work(server: Api) -> None:
    # Its own seed, so that none of its work is stored already; enough of it to be cancelled mid-generation.
    text = STUDY.format(name="cancel-me", out="cancel-me").replace("limit: 2", "limit: 10")
    text = text.replace("{n: 2}", "{n: 4, seed: 5}")
    total = 2 * 10 * 4
    assert server.submit(text).status_code == 202
    queued = STUDY.format(name="queued", out="queued")
    assert server.submit(queued).status_code == 202
    # A study waiting behind another is cancelled at once and never runs.
    response = server.client.delete("/studies/queued")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    deadline = time.monotonic() + 600
    while not 0 < len(server.completions("cancel-me")) < total:
        status = server.client.get("/studies/cancel-me").json()["status"]
        assert time.monotonic() < deadline and status in ("pending", "running"), status
        time.sleep(0.2)
    response = server.client.delete("/studies/cancel-me")
    assert response.status_code == 202 and response.json()["status"] == "cancelling"
    assert server.wait_status("cancel-me", ("cancelled",), timeout=120)["status"] == "cancelled"
    kept = server.completions("cancel-me")
    executed = server.executed("cancel-me")
    assert 0 < len(kept) < total
    time.sleep(3)  # the runner has stopped: nothing more is stored
    assert server.completions("cancel-me") == kept and server.executed("cancel-me") == executed
    with server.store.session() as session:
        states = set(session.scalars(select(Job.status).where(Job.study_id == "cancel-me")))
        assert not session.scalars(select(Job).where(Job.study_id == "queued")).first()
    assert "running" not in states  # a job it stopped in is "cancelled", one it did not reach "pending"
    assert server.client.delete("/studies/cancel-me").status_code == 200  # cancelled already
    assert server.client.get("/studies/queued").json()["status"] == "cancelled"
    # Submitted again, it resumes: what was stored is kept, and only what was missing is generated.
    sampled = server.sampled("cancel-me")
    assert server.submit(text).status_code == 202
    assert server.wait_status("cancel-me", ("done", "failed"))["status"] == "done"
    finished = server.completions("cancel-me")
    assert len(finished) == total and all(finished[key] == created for key, created in kept.items())
    assert server.sampled("cancel-me") - sampled == total - len(kept)
    with server.store.session() as session:
        keys = select(StudyVariant.variant_key).where(StudyVariant.study_id == "cancel-me")
        assert set(session.scalars(select(Variant.status).where(Variant.key.in_(keys)))) == {"ready"}
    conflict = server.client.delete("/studies/cancel-me")
    assert conflict.status_code == 409 and "nothing to cancel" in conflict.json()["detail"]


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs chromium-driver")
def test_the_dashboard_in_headless_chromium(server: Api, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

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
        driver.get(server.url)
        assert driver.title == "codequant"
        # The page asks for a token, refuses a wrong one, and keeps a right one for this tab.
        wait = WebDriverWait(driver, 30, poll_frequency=0.2)
        wait.until(ec.visibility_of_element_located((By.ID, "login")))
        driver.find_element(By.ID, "token").send_keys("cq_wrong")
        driver.find_element(By.ID, "login-button").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "login-error"), "refused"))
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "login-button").click()
        wait.until(ec.invisibility_of_element_located((By.ID, "login")))
        assert driver.execute_script("return sessionStorage.getItem('codequant-api-token')") == TOKEN
        driver.find_element(By.TAG_NAME, "summary").click()
        # Its own seed and more problems than the API test, so its work is not already stored and the
        # page has time to show it in progress.
        text = STUDY.format(name="ui-study", out="ui-study")
        text = text.replace("limit: 2", "limit: 6").replace("{n: 2}", "{n: 4, seed: 11}")
        driver.find_element(By.ID, "yaml").send_keys(text)
        driver.find_element(By.ID, "send").click()
        wait = WebDriverWait(driver, 600, poll_frequency=0.5)
        wait.until(ec.text_to_be_present_in_element((By.ID, "submit-result"), "submitted ui-study"))
        wait.until(ec.presence_of_element_located((By.ID, "study-ui-study")))
        # A study waiting behind it is cancelled with its card's button.
        assert server.submit(STUDY.format(name="ui-queued", out="ui-queued")).status_code == 202
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#study-ui-queued button.cancel"))).click()
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#study-ui-queued .status"), "cancelled"))
        assert not driver.find_elements(By.CSS_SELECTOR, "#study-ui-queued button.cancel")
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
