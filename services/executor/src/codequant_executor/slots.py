"""Sandbox slots claimed host-wide, so that executor processes on one host never share a slot's uid.

A slot is the uid one program runs under; after the program the sandbox kills every process of that uid,
and RLIMIT_NPROC counts processes per uid. Two executor processes (several `codequant worker execute`
processes, or a worker beside the CLI) using the same uid would kill each other's programs, so each
engine claims its slots with an exclusive lock on one file per slot. The kernel drops the locks when the
process dies, so a crashed worker's slots are free again at once. Written by hand: no library manages
uid pools for sandboxes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

from codequant_executor.sandbox import SandboxFailure

#: Host-wide: every process on the machine sees the same folder.
SLOT_DIR = Path(os.environ.get("CODEQUANT_SLOT_DIR", Path(tempfile.gettempdir()) / "codequant-executor-slots"))
MAX_SLOTS = 1024


class SlotClaim:
    """``count`` slot numbers no other live claim holds, until ``release``."""

    def __init__(self, count: int, directory: Path = SLOT_DIR) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            directory.chmod(0o1777)  # shared by every user's executor, like /tmp
        self.slots: list[int] = []
        self._handles: list[IO[str]] = []
        for slot in range(MAX_SLOTS):
            handle = (directory / f"{slot}.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.slots.append(slot)
            self._handles.append(handle)
            if len(self.slots) == count:
                return
        self.release()
        raise SandboxFailure(f"no {count} free sandbox slots among {MAX_SLOTS} in {directory}")

    def release(self) -> None:
        for handle in self._handles:
            handle.close()  # closing the file drops its lock
        self._handles.clear()
        self.slots.clear()
