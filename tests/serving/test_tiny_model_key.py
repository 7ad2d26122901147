"""The tiny model's build key, pinned: a built model in the cache is reused while its key matches, so a key that
changed silently would rebuild (minutes), and one that lost an input would reuse a model built from other data.
A change to a literal here must be deliberate and come with a migration note (docs/architecture.md, "Keys")."""

from __future__ import annotations

from codequant_tiny.build import build_fingerprint


def test_the_tiny_model_build_keys_are_pinned() -> None:
    # A pinned literal below changes only deliberately, with a migration note (docs/architecture.md, "Keys").
    assert build_fingerprint("test", 0) == "5000a11597c07b9a"
    assert build_fingerprint("full", 0) == "a35f18cd7b2c60f9"
    assert build_fingerprint("full", 1) != build_fingerprint("full", 0)
