"""codequant generator service."""
