"""The paragraph at the top of a report that tells a newcomer how to read it, and the notes that flag figures which
are artefacts of a fixture model rather than findings."""

from __future__ import annotations

from codequant_reporter.study_data import StudyData


def reading_guide(data: StudyData) -> list[str]:
    """Paragraphs for the top of the report: how to read it, and a warning when it is a fixture's."""
    margin = data.study.statistics.margin_pp
    guide = [
        "How to read this report. Each quantized variant is compared with its own model's unquantized baseline on "
        "the same problems, sample by sample. pass@1 is the share of sampled completions that pass all of a "
        "problem's tests (%, averaged over problems). Every change is variant − baseline, so a negative number is "
        "a loss: in percentage points (pp) for differences of pass@1 and their bounds, in % for relative changes. "
        "Significance marks (• * ** ***) come from McNemar's test on paired samples, adjusted for multiple testing; "
        "the problem-level Wilcoxon test and bootstrap interval do not treat a problem's samples as independent and "
        f'are to be trusted when they disagree. "Is the loss negligible?" gives each variant a verdict against a '
        f"margin of {margin:g} pp — non-inferior, drop shown, inconclusive, or uninformative where the baseline "
        "passes nothing — with the smallest drop the study "
        'could have detected; "What broke" lists the problems each variant lost and how their samples failed. '
        "The methods at the end say how everything was run.",
    ]
    fixtures = fixture_models(data)
    if fixtures:
        guide.append(
            f"Fixture model ({', '.join(fixtures)}): codequant's tiny model memorised the solutions of the problems "
            "it was trained on, so it passes those and fails the others. Its numbers show the machinery working, "
            "not a finding about code LLMs."
        )
    return guide


def fixture_models(data: StudyData) -> list[str]:
    """Names of the study's models that are codequant's builtin fixtures."""
    specs = {m.name: m for m in data.study.models}
    return [m.name for m in data.models if specs[m.name].builtin is not None]


def perplexity_note(data: StudyData) -> str | None:
    """The cost table's note on a fixture's held-out perplexity; None for a study without fixture models."""
    if not fixture_models(data):
        return None
    return (
        "Fixture artefact: a model that memorised its training problems has a held-out perplexity in the thousands, "
        "and quantization noise can lower it, so perplexity may fall as quantization gets harsher. On a real model "
        "it rises."
    )
