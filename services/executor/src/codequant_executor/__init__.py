"""codequant executor service."""
