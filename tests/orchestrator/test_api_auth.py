"""API tokens: the tokens file, `codequant api-token`, and when `codequant api` starts (and how it says so)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codequant.errors import InputError
from codequant.launch import free_port
from codequant_orchestrator.api.auth import Tokens, add_token, read_token_file, startup_line
from tests.cli import CLI, codequant


def test_a_token_is_shown_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    tokens_file = tmp_path / "secrets" / "api-tokens"
    made = codequant("api-token", "alice", "--file", tokens_file, timeout=60)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("cq_") and len(token) >= 43 and "shown only now" in made.stderr
    text = tokens_file.read_text()
    assert token not in text and text.startswith("alice sha256:")
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    assert Tokens(file=tokens_file).match(token) == "alice"
    again = codequant("api-token", "alice", "--file", tokens_file, timeout=60)
    assert again.returncode == 2 and "exists already" in again.stderr
    no_file = codequant("api-token", "bob", timeout=60)
    assert no_file.returncode == 2 and "CODEQUANT_API_TOKENS_FILE" in no_file.stderr


def test_the_tokens_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    first = add_token(path, "first")
    tokens = Tokens(token="cq_from-the-environment-0123456789", file=path)
    assert tokens.match(first) == "first" and tokens.match("cq_from-the-environment-0123456789")
    second = add_token(path, "second")
    assert tokens.match(second) == "second"
    path.write_text(path.read_text().splitlines()[1] + "\n")  # first revoked: its line deleted
    assert tokens.match(first) is None and tokens.match(second) == "second"
    path.write_text("broken line\n")  # a malformed file accepts none of its tokens until fixed
    assert tokens.match(second) is None
    assert tokens.match("cq_from-the-environment-0123456789") == "CODEQUANT_API_TOKEN"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice sha256:abc\n", ":1: expected 'NAME sha256:<64 hex digits>'"),
        (f"# comment\n\na sha256:{'0' * 64}\na sha256:{'1' * 64}\n", ":4: token name 'a' is used twice"),
    ],
)
def test_a_bad_tokens_file_names_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)):
        read_token_file(path)


def test_without_tokens_only_loopback_is_served_unless_no_auth() -> None:
    none = Tokens()
    assert "open to every user of this machine" in startup_line("127.0.0.1", none, no_auth=False)
    assert "open to every user" in startup_line("::1", none, no_auth=False)
    with pytest.raises(InputError, match=re.escape("refusing to serve 0.0.0.0 without API tokens")):
        startup_line("0.0.0.0", none, no_auth=False)
    assert "OFF" in startup_line("0.0.0.0", none, no_auth=True)
    assert "tokens required" in startup_line("0.0.0.0", Tokens(token="cq_x" * 10), no_auth=False)


@contextlib.contextmanager
def api_process(tmp_path: Path, *args: str, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """`codequant api` on a free port with ``args``, until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "api", "--port", str(port), "--output-root", str(tmp_path / "runs"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            assert time.monotonic() < deadline, "codequant api did not start"
            time.sleep(0.2)
        yield url, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEQUANT_API_TOKEN", "CODEQUANT_STORE_URL"))}
    return {**env, **extra}


def test_codequant_api_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    refused = subprocess.run(
        [*CLI, "api", "--host", "0.0.0.0", "--port", str(free_port())],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: refusing to serve 0.0.0.0 without API tokens: set $CODEQUANT_API_TOKEN or "
        "$CODEQUANT_API_TOKENS_FILE (see `codequant api-token`), or pass --no-auth"
    ]
    with api_process(tmp_path, "--host", "0.0.0.0", "--no-auth", env=clean_env()) as (url, process):
        assert httpx.get(f"{url}/studies").status_code == 200
    assert "authentication is OFF (--no-auth)" in process.stdout.read()


def test_codequant_api_takes_its_token_from_the_environment(tmp_path: Path) -> None:
    token = "cq_compose-env-token-0123456789abcdef"
    with api_process(tmp_path, "--host", "0.0.0.0", env=clean_env(CODEQUANT_API_TOKEN=token)) as (url, process):
        assert httpx.get(f"{url}/studies").status_code == 401
        assert httpx.get(f"{url}/studies", headers={"Authorization": f"Bearer {token}"}).json() == []
    assert "API tokens required (Authorization: Bearer): $CODEQUANT_API_TOKEN" in process.stdout.read()
    assert (tmp_path / "runs" / "api-store.db").is_file()  # the store in the output root
