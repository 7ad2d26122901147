"""API tokens: ``Authorization: Bearer <token>``, checked against SHA-256 hashes.

Tokens come from $CODEQUANT_API_TOKEN (one token in plain text, hashed as soon as it is read) and from the file
named by $CODEQUANT_API_TOKENS_FILE (``NAME sha256:HEX`` per line, written by `codequant api-token`; re-read
when it changes, so a line deleted revokes its token without a restart). Tokens are random 32-byte secrets, so
one SHA-256 is enough: a leaked tokens file gives nothing to guess with, and a slow password hash would only
slow every request. A presented token is compared with every known hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import threading
from pathlib import Path

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from codequant import settings
from codequant.errors import InputError

log = logging.getLogger(__name__)
TOKEN_PREFIX = "cq_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_LINE = re.compile(r"^(?P<name>\S+)\s+sha256:(?P<hex>[0-9a-f]{64})$")


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe, with a prefix that secret scanners can match."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def read_token_file(path: Path) -> dict[str, bytes]:
    """{name: SHA-256 digest} of a tokens file; InputError naming the file and line of a bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the API tokens file ({exc.__class__.__name__})") from None
    found: dict[str, bytes] = {}
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise InputError(f"{path}:{number}: expected 'NAME sha256:<64 hex digits>'")
        if match["name"] in found:
            raise InputError(f"{path}:{number}: token name {match['name']!r} is used twice")
        found[match["name"]] = bytes.fromhex(match["hex"])
    return found


def add_token(path: Path, name: str) -> str:
    """Make a token named ``name``, append its hash to the tokens file (created readable by its owner only) and
    return the token itself, which is stored nowhere."""
    if not NAME_PATTERN.match(name):
        raise InputError(f"token name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
    if path.exists() and name in read_token_file(path):
        raise InputError(f"{path}: a token named {name!r} exists already (delete its line to revoke it)")
    token = new_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(f"{name} sha256:{token_digest(token).hex()}\n")
    return token


class Tokens:
    """The tokens the API accepts: the environment's one and the tokens file's."""

    def __init__(self, token: str | None = None, file: Path | None = None) -> None:
        self._env = {settings.API_TOKEN_ENV: token_digest(token)} if token else {}
        self.file = file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._from_file: dict[str, bytes] = read_token_file(file) if file is not None else {}
        if file is not None:
            self._stamp = _stamp(file)

    @classmethod
    def from_environment(cls) -> Tokens:
        file = os.environ.get(settings.API_TOKENS_FILE_ENV)
        return cls(os.environ.get(settings.API_TOKEN_ENV) or None, Path(file) if file else None)

    @property
    def configured(self) -> bool:
        return bool(self._env) or self.file is not None

    def describe(self) -> str:
        sources = [f"${settings.API_TOKEN_ENV}"] if self._env else []
        if self.file is not None:
            sources.append(f"{len(self._from_file)} in {self.file}")
        return ", ".join(sources)

    def match(self, token: str) -> str | None:
        """The name of the token ``token`` is, or None; every known hash is compared, in constant time."""
        digest = token_digest(token)
        found = None
        for name, known in [*self._current_file().items(), *self._env.items()]:
            if hmac.compare_digest(digest, known):
                found = name
        return found

    def _current_file(self) -> dict[str, bytes]:
        """The file's tokens, re-read when it changed; none while it is unreadable or malformed (logged)."""
        if self.file is None:
            return {}
        with self._lock:
            stamp = _stamp(self.file)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._from_file = read_token_file(self.file)
                except InputError as exc:
                    log.error("%s; no token from this file is accepted until it is fixed", exc)
                    self._from_file = {}
            return self._from_file


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_line(host: str, tokens: Tokens, *, no_auth: bool) -> str:
    """What `codequant api` says about authentication as it starts; InputError when it must not start: no token
    on an address other hosts can reach, unless --no-auth says so."""
    if no_auth:
        return f"authentication is OFF (--no-auth): anyone who can reach {host} can submit and cancel studies"
    if tokens.configured:
        return f"API tokens required (Authorization: Bearer): {tokens.describe()}"
    if is_loopback(host):
        return (
            f"no API token configured: the API on {host} is open to every user of this machine; "
            f"set ${settings.API_TOKEN_ENV} or ${settings.API_TOKENS_FILE_ENV} to require one"
        )
    raise InputError(
        f"refusing to serve {host} without API tokens: set ${settings.API_TOKEN_ENV} or "
        f"${settings.API_TOKENS_FILE_ENV} (see `codequant api-token`), or pass --no-auth"
    )


def guard(tokens: Tokens | None):
    """A FastAPI dependency that lets a request through only with a known bearer token (any request when
    ``tokens`` is None: authentication off)."""
    scheme = HTTPBearer(auto_error=False, description="an API token (`codequant api-token`)")

    def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:
        if tokens is None:
            return
        if credentials is None:
            missing = "missing API token: send 'Authorization: Bearer <token>'"
            raise HTTPException(401, detail=missing, headers={"WWW-Authenticate": "Bearer"})
        if tokens.match(credentials.credentials) is None:
            raise HTTPException(
                401, detail="invalid API token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )

    return require_token
