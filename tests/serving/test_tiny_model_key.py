"""The tiny model's build key, pinned: a built model in the cache is reused while its key matches, so a key that
changed silently would rebuild (minutes), and one that lost an input would reuse a model built from other data.
A change to a literal here must be deliberate and come with a migration note (docs/architecture.md, "Keys")."""

from __future__ import annotations

from codequant_tiny.build import build_fingerprint


def test_the_tiny_model_build_keys_are_pinned() -> None:
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert build_fingerprint("test", 0) == "dce5072a5f507a08"
    assert build_fingerprint("full", 0) == "34c9f1e06efea547"
    assert build_fingerprint("full", 1) != build_fingerprint("full", 0)
