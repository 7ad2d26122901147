"""Benchmark problems as MultiPL-E-style records, from local JSONL files or the Hugging Face hub."""

from codequant.benchmarks.load import BenchmarkSet, load_benchmark
from codequant.benchmarks.problem import Problem
from codequant.benchmarks.registry import BENCHMARKS, BenchmarkInfo, benchmark_info

__all__ = ["BENCHMARKS", "BenchmarkInfo", "BenchmarkSet", "Problem", "benchmark_info", "load_benchmark"]
