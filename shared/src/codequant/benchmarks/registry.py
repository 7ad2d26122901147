"""The benchmarks codequant knows, with where their data comes from."""

from __future__ import annotations

from dataclasses import dataclass

#: MultiPL-E on the hub, pinned to the revision bigcode-evaluation-harness evaluates.
MULTIPLE_HUB = ("nuprl/MultiPL-E", "d23b094346c5dbda1080a74bb2a24c18adbf7409")
#: McEval on the hub, pinned to the revision whose generation files match GitHub MCEVAL/McEval data/.
MCEVAL_HUB = ("Multilingual-Multimodal-NLP/McEval", "a285c42ee9e0076f2d2a3636b9ad58cff1da26a4")


@dataclass(frozen=True)
class BenchmarkInfo:
    """Static facts about one benchmark."""

    name: str
    suite: str  # the table a benchmark belongs to in reports (one column group per language)
    language: str
    kind: str  # loader: humaneval | multiple | mceval
    upstream_name: str  # MultiPL-E config or McEval file stem
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
        BenchmarkInfo("mceval-python", "McEval", "python", "mceval", "Python", 50, "CC BY-SA 4.0"),
        BenchmarkInfo("mceval-java", "McEval", "java", "mceval", "Java", 53, "CC BY-SA 4.0"),
    )
}
