"""codequant orchestrator service."""
