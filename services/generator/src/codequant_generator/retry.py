"""Retrying requests to an endpoint: exponential backoff for connection errors, timeouts and 5xx, Retry-After for
429, and what each failure means for the user (a 4xx is bad input, exit 2; no answer is a service error, exit 3).
``RequestWatch`` keeps what is in flight, so a progress display can show a run waiting on its endpoint."""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from codequant.errors import CodequantError, InputError, ServiceError

log = logging.getLogger(__name__)
T = TypeVar("T")
AUTH_STATUSES = (401, 403)


class RejectedRequest(InputError):
    """The endpoint answered the request with a 4xx: the request (or its credentials) is at fault. Exit code 2."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def refused_credentials(self) -> bool:
        return self.status in AUTH_STATUSES


@dataclass
class RequestWatch:
    """Requests in flight (when each started) and the last retry, for a progress display; thread-safe."""

    _started: dict[int, float] = field(default_factory=dict)
    _next: int = 0
    last_retry: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> int:
        with self._lock:
            self._next += 1
            self._started[self._next] = time.monotonic()
            return self._next

    def finish(self, token: int) -> None:
        with self._lock:
            self._started.pop(token, None)

    def retrying(self, note: str) -> None:
        with self._lock:
            self.last_retry = note

    def waiting(self, after_s: float = 5.0) -> str:
        """ "waiting N s for K request(s)" once the oldest request in flight has waited ``after_s``, with the last
        retry; else the empty string."""
        with self._lock:
            oldest = min(self._started.values(), default=None)
            count, note = len(self._started), self.last_retry
        parts = []
        if oldest is not None and time.monotonic() - oldest >= after_s:
            parts.append(f"waiting {time.monotonic() - oldest:.0f} s for {count} request(s)")
        if note:
            parts.append(note)
        return "; ".join(parts)


@dataclass(frozen=True)
class Retry:
    """Exponential backoff for connection errors, timeouts and 5xx answers; a 429 waits what its Retry-After says."""

    attempts: int = 6
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0  # a longer Retry-After fails at once rather than stall the study

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        timeout_s: float | None = None,
        auth_hint: str = "",
        watch: RequestWatch | None = None,
    ) -> T:
        """``fn()``, retried; a CodequantError once retrying cannot help. ``timeout_s`` (the client's) and
        ``auth_hint`` (what to set on a 401/403) only word the errors."""
        delay = self.first_delay_s
        for attempt in range(1, self.attempts + 1):
            token = watch.start() if watch is not None else 0
            try:
                return fn()
            except Exception as exc:
                if watch is not None:
                    watch.finish(token)  # a pause before the next attempt is not a request in flight
                status = _status(exc)
                if status == 429:
                    wait = retry_after(exc)
                    if wait is not None and wait > self.max_retry_after_s:
                        raise ServiceError(
                            f"{what}: rate limited (HTTP 429) and asked to retry after {wait:.0f} s, longer than "
                            f"the {self.max_retry_after_s:.0f} s this client waits"
                        ) from None
                    if attempt == self.attempts:
                        raise ServiceError(f"{what}: still rate limited (HTTP 429) after {attempt} attempts") from None
                    pause = delay if wait is None else wait
                elif _transient(exc) and attempt < self.attempts:
                    pause = delay
                else:
                    raise failure(what, exc, attempt, timeout_s=timeout_s, auth_hint=auth_hint) from None
                note = f"retry {attempt}/{self.attempts - 1} in {pause:.1f} s after {describe(exc, timeout_s)}"
                log.warning("%s: %s", what, note)
                if watch is not None:
                    watch.retrying(note)
                time.sleep(pause)
                delay = min(self.max_delay_s, delay * 2)
            finally:
                if watch is not None:
                    watch.finish(token)
        raise AssertionError("unreachable")


def retry_after(exc: Exception) -> float | None:
    """Seconds to wait from a 429's ``retry-after-ms`` or ``Retry-After`` header (seconds or an HTTP date)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) or getattr(exc, "status_code", None)


def _timed_out(exc: Exception) -> bool:
    import openai

    return isinstance(exc, httpx.TimeoutException | openai.APITimeoutError | TimeoutError)


def _transient(exc: Exception) -> bool:
    """Worth another attempt: no connection, no answer in time, a 5xx, or a 408."""
    import openai

    if _timed_out(exc) or isinstance(exc, httpx.TransportError | openai.APIConnectionError | ConnectionError):
        return True
    status = _status(exc)
    return status is not None and (status >= 500 or status == 408)


def describe(exc: Exception, timeout_s: float | None = None) -> str:
    """The failure in a few words: its HTTP status and first line, or that no answer came in time."""
    if _timed_out(exc):
        return f"no answer within {timeout_s:g} s" if timeout_s else "timed out"
    status = _status(exc)
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return f"HTTP {status}: {text}" if status else text


def failure(
    what: str, exc: Exception, attempts: int, *, timeout_s: float | None = None, auth_hint: str = ""
) -> CodequantError:
    """The error a failed request ends with: a 4xx answer is the request's fault (InputError; on 401/403 with
    ``auth_hint``), anything else an unreachable or failing service (ServiceError)."""
    status = _status(exc)
    if status is not None and 400 <= status < 500:
        hint = f"; {auth_hint}" if status in AUTH_STATUSES and auth_hint else ""
        return RejectedRequest(f"{what}: the endpoint rejected the request ({describe(exc)}){hint}", status)
    if _timed_out(exc):
        return ServiceError(
            f"{what}: no answer within {timeout_s:g} s, {attempts} attempt(s) (raise --request-timeout, "
            "study: endpoint.request_timeout_s, if the endpoint is only slow)"
            if timeout_s
            else f"{what}: timed out after {attempts} attempt(s)"
        )
    return ServiceError(f"{what}: endpoint unreachable after {attempts} attempt(s) ({describe(exc)})")
