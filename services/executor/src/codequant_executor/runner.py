"""Language runners: one ``Runner`` subclass per language, in a module named ``<something>_runner.py``.

A runner knows how to start its language's programs; this base class owns what every language shares: the run in
the sandbox with a per-run secret on standard input, the check that the harness proved the tests completed, and
the verdict. A subclass that sets ``language`` registers itself; the language must be described in
``codequant.languages``. Every ``*_runner`` module of this package is imported on the first look-up, so a new
file registers itself. An unknown language is an error (``UnknownLanguage``), never another language's runner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import pkgutil
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from codequant.errors import InputError
from codequant.languages import canonical_name, get_language, language_names
from codequant.limits import Limits
from codequant_executor.outcome import Verdict, generic_status, proven
from codequant_executor.sandbox import Mount, Outcome, Sandbox
from codequant_executor.status import Status

#: The harness files of the built-in runners (package data).
HARNESS = Path(__file__).resolve().parent / "harness"
_RUNNERS: dict[str, type[Runner]] = {}
_discovered = False
_discover_lock = threading.Lock()


class UnknownLanguage(InputError):
    """No runner (or no description) for a language."""


@dataclass(frozen=True)
class RunnerSetup:
    """What the pool gives each runner: the sandbox, a private folder for fork servers (None: no fork servers)
    and the slots reserved for compile servers."""

    sandbox: Sandbox
    folder: Path | None = None
    compile_slots: tuple[int, ...] = ()


class Runner(ABC):
    """Runs programs of one language (``language``: its name in ``codequant.languages``)."""

    language: ClassVar[str]
    #: Processes (threads) of one run, at most.
    nproc: ClassVar[int] = 64
    #: The memory rlimits: "address-space" or "data" (runtimes that reserve far more than they use).
    memory: ClassVar[str] = "address-space"
    #: Whether runs see /proc.
    proc: ClassVar[bool] = False
    #: Whether a bare program (no tests) passes on exit 0 without the harness's proof.
    bare_exit_passes: ClassVar[bool] = False
    #: Commands whose versions describe this language's toolchain in a result's environment.
    commands: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "language" in cls.__dict__:
            register_runner(cls)

    def __init__(self, setup: RunnerSetup, mounts: Sequence[Mount]) -> None:
        """``mounts``: the folders the language's programs need to see."""
        self.sandbox = setup.sandbox
        self.mounts = list(mounts)

    @property
    def source_name(self) -> str:
        """The program's file name in its folder."""
        return "program" + get_language(self.language).suffix

    def run(self, program: str, limits: Limits, slot: int, tests_line: int = 0) -> Verdict:
        """Run ``program`` in ``slot``; ``tests_line`` is the 1-based first line of its tests (0: a bare program)."""
        secret = secrets.token_hex(16).encode() + b"\n"
        result = self.execute(program, limits, slot, tests_line, secret)
        if isinstance(result, Verdict):
            return result
        completed, note = self.completed(result, secret, tests_line)
        status = self.status(result, completed)
        return Verdict(status, result.exit_code, result.stdout, result.stderr + note, result.duration_s)

    @abstractmethod
    def execute(self, program: str, limits: Limits, slot: int, tests_line: int, secret: bytes) -> Outcome | Verdict:
        """Run the program, ``secret`` on its standard input for the harness to prove with; a Verdict when it
        could not run (it does not compile)."""

    @abstractmethod
    def classify(self, outcome: Outcome) -> Status:
        """The status of a program that exited non-zero, from its exit code and the errors it printed."""

    def completed(self, outcome: Outcome, secret: bytes, tests_line: int) -> tuple[bool, str]:
        """Whether the tests completed, and a note for stderr when an exit with status 0 came without proof."""
        if not tests_line and self.bare_exit_passes:
            return outcome.exit_code == 0, ""
        return proven(outcome, secret)

    def status(self, outcome: Outcome, completed: bool) -> Status:
        """The status: what the sandbox saw, else what the program's errors say."""
        return generic_status(outcome, completed) or self.classify(outcome)

    @contextlib.contextmanager
    def scratch(self, program: str, parent: Path | None = None) -> Iterator[tuple[Path, str]]:
        """A fresh folder holding ``program`` as ``source_name``, and the source's path as the program sees it."""
        with self.sandbox.scratch(parent) as workdir:
            (workdir / self.source_name).write_text(program, encoding="utf-8")
            yield workdir, f"{self.sandbox.inside_workdir(workdir)}/{self.source_name}"

    def sandboxed(
        self,
        argv: Sequence[str],
        workdir: Path,
        limits: Limits,
        slot: int,
        stdin: bytes = b"",
        *,
        proof: bool = True,
        proc: bool | None = None,
        writable: Sequence[Path] = (),
    ) -> Outcome:
        """``argv`` run in the sandbox with this language's mounts, processes and memory rlimits."""
        return self.sandbox.run(
            argv,
            workdir=workdir,
            mounts=self.mounts,
            limits=limits,
            slot=slot,
            nproc=self.nproc,
            memory=self.memory,
            stdin=stdin,
            proof=proof,
            proc=self.proc if proc is None else proc,
            writable=writable,
        )

    def close(self) -> None:  # noqa: B027 - a hook: most runners start nothing that outlives a run
        """Stop what the runner started (fork servers, compile servers)."""


def after_compiling(limits: Limits, spent_s: float) -> Limits | Verdict:
    """What is left of ``limits`` to run a program whose compilation took ``spent_s`` seconds: compiling counts
    against the program's timeout (a program that compiles for a minute is no cheaper than one that runs for a
    minute); a Timeout verdict when nothing is left."""
    left = limits.timeout_s - spent_s
    if left <= 0:
        return Verdict(
            Status.TIMEOUT, None, "", f"codequant: compiling took the whole timeout ({spent_s:.1f} s)\n", 0.0
        )
    return dataclasses.replace(limits, timeout_s=left)


def register_runner(cls: type[Runner]) -> type[Runner]:
    """Register the runner of ``cls.language`` (done by subclassing ``Runner`` with ``language`` set)."""
    known = _RUNNERS.get(cls.language)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise TypeError(f"language {cls.language!r} has a runner already: {known.__name__}")
    _RUNNERS[cls.language] = cls
    return cls


def unregister_runner(cls: type[Runner]) -> None:
    """Remove a registered runner (for tests that register a throwaway language)."""
    if _RUNNERS.get(cls.language) is cls:
        del _RUNNERS[cls.language]


def _discover() -> None:
    """Import every ``*_runner`` module of this package once (each registers its runner)."""
    global _discovered
    with _discover_lock:
        if _discovered:
            return
        for module in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
            if module.name.endswith("_runner"):
                importlib.import_module(f"{__package__}.{module.name}")
        _discovered = True


def runner_languages() -> tuple[str, ...]:
    """The languages that have both a description and a runner, in the descriptions' order."""
    _discover()
    return tuple(name for name in language_names() if name in _RUNNERS)


def runner_class(language: str) -> type[Runner]:
    """The runner of a language (ours or MultiPL-E's name); UnknownLanguage naming the runnable ones otherwise."""
    _discover()
    name = canonical_name(language)
    if name is None or name not in _RUNNERS:
        raise UnknownLanguage(f"no runner for language {language!r}; known: {', '.join(runner_languages())}")
    return _RUNNERS[name]
