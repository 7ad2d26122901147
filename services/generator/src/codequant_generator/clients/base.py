"""What every endpoint client shares: the sample it returns, retries (``codequant_generator.retry``) with a time
limit per request and a concurrency cap per endpoint, and the registry from protocol name to client class."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from codequant.errors import InputError
from codequant.protocols import GenerationApi, api_names, register_api, unregister_api
from codequant.study.methods import EndpointSpec
from codequant_generator.retry import RequestWatch, Retry

T = TypeVar("T")
C = TypeVar("C", bound="type[Client]")
_CLIENTS: dict[str, type[Client]] = {}

#: Called once per HTTP request a client sent: (latency in seconds, completion tokens of all the samples it
#: generated, None when the server does not say).
OnRequest = Callable[[float, int | None], None]


@dataclass(frozen=True)
class Sample:
    """One generated text as the server returned it."""

    text: str
    finish_reason: str | None
    completion_tokens: int | None
    prompt_tokens: int | None
    latency_s: float


_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def endpoint_slots(endpoint: EndpointSpec) -> threading.BoundedSemaphore | None:
    """The process-wide semaphore capping requests in flight to ``endpoint`` (None when uncapped)."""
    if not endpoint.max_concurrency:
        return None
    key = (endpoint.url.rstrip("/"), endpoint.max_concurrency)
    with _slots_lock:
        return _slots.setdefault(key, threading.BoundedSemaphore(endpoint.max_concurrency))


class Client(ABC):
    """A client of one endpoint; ``sample`` draws samples of one prompt, ``check`` fails early when unreachable."""

    #: One request per sample (the API has no n): samples are spread over concurrent requests.
    per_sample: ClassVar[bool] = False

    def __init__(self, endpoint: EndpointSpec, retry: Retry, watch: RequestWatch | None = None) -> None:
        self.endpoint = endpoint
        self.retry = retry
        self.watch = watch
        self.slots = endpoint_slots(endpoint)

    @abstractmethod
    def check(self) -> None:
        """Raise (ServiceError, InputError) when the endpoint cannot serve requests."""

    @abstractmethod
    def sample(
        self,
        prompt: str | list[dict[str, str]],
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[str],
        seed: int,
        on_request: OnRequest | None = None,
    ) -> list[Sample]:
        """``n`` samples of ``prompt`` (text, or chat messages for a protocol that takes them) drawn with ``seed``."""

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` with retries, each attempt holding one of the endpoint's slots."""
        limited = fn
        if self.slots is not None:
            slots = self.slots

            def limited() -> T:
                with slots:
                    return fn()

        return self.retry.call(
            what,
            limited,
            timeout_s=self.endpoint.request_timeout_s,
            auth_hint=self.endpoint.auth_hint(),
            watch=self.watch,
        )


def register_client(*apis: GenerationApi) -> Callable[[C], C]:
    """Class decorator: ``cls`` is the client of each protocol in ``apis`` (registered in ``codequant.protocols``,
    so studies accept their names)."""

    def register(cls: C) -> C:
        for api in apis:
            register_api(api)
            _CLIENTS[api.name] = cls
        return cls

    return register


def unregister_client(name: str) -> None:
    """Remove a protocol and its client (for tests that register a throwaway one)."""
    _CLIENTS.pop(name, None)
    unregister_api(name)


def client_for(endpoint: EndpointSpec, retry: Retry | None = None, watch: RequestWatch | None = None) -> Client:
    """The client of ``endpoint``'s protocol; ``watch`` sees its requests in flight."""
    cls = _CLIENTS.get(endpoint.api) if endpoint.api in api_names() else None  # api_names loads the protocols
    if cls is None:
        raise InputError(f"--api must be one of {', '.join(api_names())}, got {endpoint.api!r}")
    return cls(endpoint, retry or Retry(), watch)
