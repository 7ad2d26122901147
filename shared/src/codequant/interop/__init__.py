"""Interoperability with other evaluation tools: MultiPL-E's completion and result folders, EvalPlus's samples,
and the benchmark look-up that gives generated records the tests they need to run."""
