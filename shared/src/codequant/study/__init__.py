"""The study specification: what to quantize, evaluate and compare."""

from codequant.study.load import Problem, StudyError, load_study, parse_study, problem_at
from codequant.study.spec import BenchmarkSpec, ModelSpec, Study

__all__ = [
    "BenchmarkSpec",
    "ModelSpec",
    "Problem",
    "Study",
    "StudyError",
    "load_study",
    "parse_study",
    "problem_at",
]
