"""codequant reporter service."""
