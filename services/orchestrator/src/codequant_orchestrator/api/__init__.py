"""The orchestrator's HTTP API and dashboard."""

from codequant_orchestrator.api.app import create_app

__all__ = ["create_app"]
