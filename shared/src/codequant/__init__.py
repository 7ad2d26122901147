"""codequant: how much code-generation accuracy does quantization cost, and is the loss real."""

__version__ = "0.1.0"
