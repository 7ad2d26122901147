"""One ``Quantizer`` per method, found by the study's ``method:`` string (like transformers' HfQuantizer classes).

A quantizer turns a model into a quantized Hugging Face folder and ends with the shared ``save_and_record``
step (``codequant_quantizer.record``); what the method *is* (fields, bits, label, footprint) lives in its variant
model in ``codequant.study.methods``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from codequant.study.methods import VariantModel

_QUANTIZERS: dict[str, type[Quantizer]] = {}
Q = TypeVar("Q", bound="type[Quantizer]")


@dataclass(frozen=True)
class QuantizeJob:
    """Everything a quantizer needs: the source model, the validated variant and where to write."""

    model: str  # folder or hub id of the full-precision model
    variant: VariantModel
    out_dir: Path
    dtype: str  # dtype of unquantized tensors in the output (auto: the model's)
    device: str
    calibration_dir: Path | None
    progress: bool
    fingerprint: str  # identifies model + variant + dtype; recorded so a finished folder is recognised
    # AQLM only (see codequant_quantizer.aqlm.planner): dtype and place of the calibration activations, GPU memory to
    # plan for
    activation_dtype: str = "auto"
    offload: str = "auto"
    gpu_memory_gb: float | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The variant's method config, as recorded in quantization.json."""
        return self.variant.method_config()


class Quantizer(ABC):
    """A quantization method's implementation."""

    #: The ``method:`` strings this class quantizes.
    methods: ClassVar[tuple[str, ...]]
    #: Refuse nondeterministic kernels (AQLM: same seed, same codes); library methods only warn about them.
    strict_determinism: ClassVar[bool] = False

    @abstractmethod
    def quantize(self, job: QuantizeJob) -> dict[str, Any]:
        """Write the quantized folder into ``job.out_dir`` (ending with ``save_and_record``); return its record."""


def register_quantizer(cls: Q) -> Q:
    """Register a quantizer class for each of its ``methods``; returns the class."""
    for method in cls.methods:
        if method in _QUANTIZERS and _QUANTIZERS[method] is not cls:
            raise TypeError(f"method {method!r} is quantized by {_QUANTIZERS[method].__name__} already")
        _QUANTIZERS[method] = cls
    return cls


def unregister_quantizer(cls: type[Quantizer]) -> None:
    """Remove a registered class (for tests that register a throwaway method)."""
    for method in [m for m, c in _QUANTIZERS.items() if c is cls]:
        del _QUANTIZERS[method]


def quantizer_for(method: str) -> Quantizer:
    """The quantizer of ``method``; KeyError when no installed module implements it."""
    try:
        return _QUANTIZERS[method]()
    except KeyError:
        raise KeyError(f"no quantizer implements method {method!r} (implemented: {', '.join(_QUANTIZERS)})") from None
