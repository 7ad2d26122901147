"""Libraries' own output, off unless ``codequant --verbose``: the progress bars transformers and huggingface_hub draw
while loading and saving weights, their advisory warnings (e.g. a calibration document longer than the tokenizer's
nominal length), Python warnings and library logs below ERROR. codequant's own progress, summary and errors stay.

Set before the libraries load (they read the environment once), and inherited by the processes a command starts
(model servers, workers).
"""

from __future__ import annotations

import logging
import os
import warnings

VERBOSE_ENV = "CODEQUANT_VERBOSE"
ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # else a warning each time a process that tokenized forks
    "PYTHONWARNINGS": "ignore",
}
LOGGERS = (
    "transformers",
    "huggingface_hub",
    "accelerate",
    "datasets",
    "torch",
    "numba",
    "matplotlib",
    "httpx",
    "urllib3",
)


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def configure(*, verbose_output: bool) -> None:
    """Quiet the libraries in this process and the ones it starts, or (``verbose_output``) leave them be."""
    if verbose_output:
        os.environ[VERBOSE_ENV] = "1"
        return
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.simplefilter("ignore")
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
