"""The language registry: one ``Language`` per language a benchmark can be written in, registered by its module.

Every language's program is composed as MultiPL-E composes it, ``prompt + completion + "\\n" + tests``, and its
tests start on the line after the completion (``Problem.program``); what differs, such as whether those tests
first close the completion's block, is described here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

_LANGUAGES: dict[str, Language] = {}


class Extraction(ABC):
    """How the code of a chat answer becomes the head of a program (``codequant.extraction``)."""

    @abstractmethod
    def declared_functions(self, prompt: str) -> list[str]:
        """The functions a prompt declares, in order (the last is the one asked for, without an entry point)."""

    @abstractmethod
    def sanitize(self, code: str, name: str, known: str) -> list[str] | None:
        """The parts of ``code`` to keep around the function ``name`` (None when it does not define it); ``known``
        is the benchmark's own text (prompt and tests), whose members need not be repeated."""

    @abstractmethod
    def head(self, prompt: str, name: str, parts: list[str]) -> str:
        """The program head: the prompt up to the function's declaration, then the kept ``parts``."""


@dataclass(frozen=True)
class Language:
    """One language: its names, its source files, its tests' layout, how its completions stop and how its code is
    extracted."""

    name: str  # ours, in records and studies: "python"
    label: str  # for people (reports, instructions): "Python"
    suffix: str  # of a source file: ".py"
    multiple_name: str  # MultiPL-E's ``language`` field: "py"
    #: Test layout. True: the completion is a function's body left open, and the tests start by closing it (the
    #: problem's stop token is that closing brace; MultiPL-E's Java and C++). False: the completion is whole and the
    #: tests follow it (Python, JavaScript).
    tests_close_block: bool = False
    #: Stop tokens of a completion prompt that ends inside a top-level function (at most 4: TGI's limit).
    stop_tokens: tuple[str, ...] = ()
    #: Markdown fence tags of its code blocks, besides ``name``.
    fence_tags: tuple[str, ...] = ()
    #: How code is extracted from a chat answer; None: instruct mode is not available in this language.
    extraction: Extraction | None = None


class UnknownLanguage(KeyError):
    """A language no module describes."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_language(language: Language) -> Language:
    """Register a language (its name and MultiPL-E name must be new); returns it."""
    for name in {language.name, language.multiple_name}:
        owner = _aliases().get(name)
        if owner is not None and owner != language.name:
            raise ValueError(f"language name {name!r} is taken by {owner!r}")
    _LANGUAGES[language.name] = language
    return language


def unregister_language(name: str) -> None:
    """Remove a registered language (for tests that register a throwaway one)."""
    _LANGUAGES.pop(name, None)


def _aliases() -> dict[str, str]:
    return {alias: name for name, lang in _LANGUAGES.items() for alias in (lang.multiple_name, name)}


def language_names() -> tuple[str, ...]:
    """Every registered language's name, in registration order."""
    return tuple(_LANGUAGES)


def accepted_names() -> tuple[str, ...]:
    """Every name a record may give a language by: ours and MultiPL-E's."""
    return tuple(_aliases())


def canonical_name(name: str) -> str | None:
    """Our name of a language given by ours or MultiPL-E's (``py`` -> ``python``); None when unknown."""
    return _aliases().get(name)


def get_language(name: str) -> Language:
    """The description of a language (ours or MultiPL-E's name); UnknownLanguage naming the known ones otherwise."""
    canonical = canonical_name(name)
    if canonical is None:
        raise UnknownLanguage(f"unknown language {name!r}; known: {', '.join(_LANGUAGES)}")
    return _LANGUAGES[canonical]
