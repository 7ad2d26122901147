"""How the report writes numbers and names: percentages, signed changes, odds ratios, p-values, sizes, labels."""

from __future__ import annotations

from typing import Any

from codequant.benchmarks import benchmark_info
from codequant.languages import canonical_name, get_language
from codequant_reporter.study_data import VariantData


def language_label(language: str, unknown: str | None = None) -> str:
    """A language's name for people ("C++"); ``unknown`` (default: ``language`` itself) for one not described."""
    known = canonical_name(language)
    return get_language(known).label if known else (language if unknown is None else unknown)


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def signed(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:+.{digits}f}"
    return text if text.strip("+-0.") else f"{0:.{digits}f}"  # no "-0.0" for a change that rounds to zero


def odds(value: float) -> str:
    return f"{value:.2f}"


def pvalue(value: float | None) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def size(variant: VariantData) -> str:
    if variant.size_bytes is None:
        return "–"
    gb = variant.size_bytes / 1e9
    return f"{gb:.2f} GB" if gb >= 0.1 else f"{variant.size_bytes / 1e6:.2f} MB"


def num(value: Any) -> str:
    return "–" if value is None else f"{float(value):.3g}"


def bench_label(name: str) -> str:
    info = benchmark_info(name)
    return f"{info.suite} {language_label(info.language)}"
