"""codequant's tiny offline code model (a pipeline fixture, not a code model to draw conclusions from)."""
