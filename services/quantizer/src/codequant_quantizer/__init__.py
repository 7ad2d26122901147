"""codequant quantizer service."""
