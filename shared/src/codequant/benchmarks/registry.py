"""The benchmarks codequant knows, with where their data comes from."""

from __future__ import annotations

from dataclasses import dataclass

#: MultiPL-E on the hub, pinned to the revision bigcode-evaluation-harness evaluates.
MULTIPLE_HUB = ("nuprl/MultiPL-E", "d23b094346c5dbda1080a74bb2a24c18adbf7409")
#: McEval on the hub, pinned to the revision whose generation files match GitHub MCEVAL/McEval data/.
MCEVAL_HUB = ("Multilingual-Multimodal-NLP/McEval", "a285c42ee9e0076f2d2a3636b9ad58cff1da26a4")
#: Hub datasets of the EvalPlus and MBPP loaders (dataset id, config, split). Unpinned: no revision could be
#: checked from the machines this was written on (no hub access); the loader reads the current revision,
#: loads exactly that one and names it in the provenance.
OTHER_HUB = {
    "humaneval-plus": ("evalplus/humanevalplus", None, "test"),
    "mbpp-plus": ("evalplus/mbppplus", None, "test"),
    "mbpp": ("google-research-datasets/mbpp", "full", "test"),
}


@dataclass(frozen=True)
class BenchmarkInfo:
    """Static facts about one benchmark."""

    name: str
    suite: str  # the table a benchmark belongs to in reports (one column group per language)
    language: str
    kind: str  # loader: humaneval | multiple | mceval | humaneval-plus | mbpp-plus | mbpp | user
    upstream_name: str  # MultiPL-E config, McEval file stem, or the user's file
    expected_count: int
    license: str


BENCHMARKS: dict[str, BenchmarkInfo] = {
    info.name: info
    for info in (
        BenchmarkInfo("humaneval", "HumanEval", "python", "humaneval", "HumanEval", 164, "MIT"),
        BenchmarkInfo(
            "multiple-humaneval-py",
            "MultiPL-E HumanEval",
            "python",
            "multiple",
            "humaneval-py",
            161,
            "BSD-3-Clause, no ML training",
        ),
        BenchmarkInfo(
            "multiple-humaneval-java",
            "MultiPL-E HumanEval",
            "java",
            "multiple",
            "humaneval-java",
            158,
            "BSD-3-Clause, no ML training",
        ),
        BenchmarkInfo(
            "multiple-humaneval-cpp",
            "MultiPL-E HumanEval",
            "cpp",
            "multiple",
            "humaneval-cpp",
            161,
            "BSD-3-Clause, no ML training",
        ),
        BenchmarkInfo(
            "multiple-humaneval-js",
            "MultiPL-E HumanEval",
            "javascript",
            "multiple",
            "humaneval-js",
            161,
            "BSD-3-Clause, no ML training",
        ),
        BenchmarkInfo("mceval-python", "McEval", "python", "mceval", "Python", 50, "CC BY-SA 4.0"),
        BenchmarkInfo("mceval-java", "McEval", "java", "mceval", "Java", 53, "CC BY-SA 4.0"),
        BenchmarkInfo("humaneval-plus", "HumanEval+", "python", "humaneval-plus", "humanevalplus", 164, "Apache-2.0"),
        BenchmarkInfo("mbpp-plus", "MBPP+", "python", "mbpp-plus", "mbppplus", 378, "Apache-2.0"),
        BenchmarkInfo("mbpp", "MBPP", "python", "mbpp", "mbpp", 500, "CC BY 4.0"),
    )
}

#: Benchmarks read from a user's JSONL file in this process (``load_user_benchmark`` adds them).
USER_BENCHMARKS: dict[str, BenchmarkInfo] = {}


def benchmark_info(name: str) -> BenchmarkInfo:
    """Facts about a built-in benchmark, or a user benchmark loaded in this process; KeyError otherwise."""
    return BENCHMARKS[name] if name in BENCHMARKS else USER_BENCHMARKS[name]
