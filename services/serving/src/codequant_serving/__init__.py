"""codequant serving service."""
