"""Generation protocols: the APIs an endpoint can speak (a study's ``endpoint.api``).

Each protocol is one module of a package named by the ``codequant.protocols`` entry point group (the generator's
``codequant_generator.clients``); the module registers its ``GenerationApi`` here together with its client, so the
names a study accepts are exactly the protocols a client exists for. The group is loaded on the first look-up.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import entry_points

GROUP = "codequant.protocols"
_APIS: dict[str, GenerationApi] = {}
_loaded = False
_load_lock = threading.RLock()


@dataclass(frozen=True)
class GenerationApi:
    """What the rest of codequant needs to know about one protocol."""

    name: str  # ``endpoint.api``: "tgi"
    #: The environment variable the API's own clients read the key from, used when the endpoint names none.
    key_env: str
    #: Whether it takes chat messages (instruct mode needs it).
    chat: bool = False
    #: Whether a plain prompt goes as the user's message (the answer is then kept whole, not cut at stop tokens).
    prompts_as_chat: bool = False


def register_api(api: GenerationApi) -> GenerationApi:
    """Register a protocol (a new name, or the same description again); returns it."""
    known = _APIS.get(api.name)
    if known is not None and known != api:
        raise ValueError(f"protocol {api.name!r} is registered already as {known}")
    _APIS[api.name] = api
    return api


def unregister_api(name: str) -> None:
    """Remove a registered protocol (for tests that register a throwaway one)."""
    _APIS.pop(name, None)


def _load() -> None:
    global _loaded
    with _load_lock:
        if not _loaded:
            _loaded = True
            for entry in entry_points(group=GROUP):
                entry.load()


def api_names() -> tuple[str, ...]:
    """Every registered protocol's name, in registration order."""
    _load()
    return tuple(_APIS)


def chat_api_names() -> tuple[str, ...]:
    """The protocols that take chat messages (instruct mode needs one)."""
    return tuple(name for name in api_names() if _APIS[name].chat)


def get_api(name: str) -> GenerationApi:
    """A protocol's description; KeyError naming the known ones otherwise."""
    _load()
    if name not in _APIS:
        known = ", ".join(_APIS) or "none: install codequant-generator"
        raise KeyError(f"unknown endpoint api {name!r}; known: {known}")
    return _APIS[name]
