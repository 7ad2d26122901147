"""Endpoint clients, one module per generation protocol (like EvalPlus's providers): each registers its client
class with ``@register_client`` for the protocol names it speaks, which ``codequant.protocols`` then offers to
studies (this package is the ``codequant.protocols`` entry point). Every module of this package is imported, so a
new file is a new protocol (docs/architecture.md, "Extensions")."""

from __future__ import annotations

import importlib
import pkgutil

from codequant_generator.clients.base import (
    Client,
    OnRequest,
    Sample,
    client_for,
    endpoint_slots,
    register_client,
    unregister_client,
)

__all__ = ["Client", "OnRequest", "Sample", "client_for", "endpoint_slots", "register_client", "unregister_client"]

_FIRST = ("tgi", "openai_api")  # the order protocols are listed in messages
for _name in [*_FIRST, *sorted({m.name for m in pkgutil.iter_modules(__path__)} - {*_FIRST, "base"})]:
    importlib.import_module(f"{__name__}.{_name}")
