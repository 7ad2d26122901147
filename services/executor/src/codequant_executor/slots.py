"""Sandbox slots claimed host-wide, so that executor processes on one host never share a slot's uid.

A slot is the uid one program (or one compile server) runs under; after a program the sandbox kills every
process of that uid, and RLIMIT_NPROC counts processes per uid. Two executor processes (several
`codequant worker execute` processes, or a worker beside the CLI) using the same uid would kill each other's
programs, so each pool claims its slots with an exclusive lock on one file per slot. The kernel drops the
locks when the process dies, so a crashed worker's slots are free again at once. Written by hand: no library
manages uid pools for sandboxes.

The lock folder is private to the user running the executor (root: ``/run/codequant-executor/slots``,
mode 0700): in a world-writable folder another local user could plant symlinks (making root create files
elsewhere) or hold every lock. The folder is checked (a real folder, owned by us, no access for others) and
lock files are opened relative to it with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from pathlib import Path

from codequant.errors import ServiceError

MAX_SLOTS = 1024
SLOT_DIR_ENV = "CODEQUANT_SLOT_DIR"


class SlotsUnavailable(ServiceError):
    """The slot folder is unsafe or every slot is held (one line for the user, exit code 3)."""


def default_slot_dir() -> Path:
    """``$CODEQUANT_SLOT_DIR``, else a folder private to this user: /run for root, the temp folder otherwise."""
    if os.environ.get(SLOT_DIR_ENV):
        return Path(os.environ[SLOT_DIR_ENV])
    if os.geteuid() == 0 and Path("/run").is_dir():
        return Path("/run/codequant-executor/slots")
    return Path(tempfile.gettempdir()) / f"codequant-executor-slots-{os.geteuid()}"


def _private_dir(directory: Path) -> int:
    """Create ``directory`` (0700) if needed and return an O_DIRECTORY descriptor of it once it is safe."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SlotsUnavailable(f"sandbox slot folder {directory}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        os.close(fd)
        raise SlotsUnavailable(
            f"sandbox slot folder {directory} must be owned by uid {os.geteuid()} with no access for others "
            f"(it is uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}); remove it or set {SLOT_DIR_ENV}"
        )
    return fd


class SlotClaim:
    """``count`` slot numbers no other live claim holds, until ``release``."""

    def __init__(self, count: int, directory: Path | None = None) -> None:
        directory = directory or default_slot_dir()
        folder = _private_dir(directory)
        self.directory = directory
        self.slots: list[int] = []
        self._fds: list[int] = []
        try:
            for slot in range(MAX_SLOTS):
                flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                try:
                    fd = os.open(f"{slot}.lock", flags, 0o600, dir_fd=folder)
                except OSError as exc:
                    raise SlotsUnavailable(f"sandbox slot lock {directory / f'{slot}.lock'}: {exc.strerror}") from None
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise SlotsUnavailable(f"sandbox slot lock {directory / f'{slot}.lock'} is not a regular file")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self.slots.append(slot)
                self._fds.append(fd)
                if len(self.slots) == count:
                    return
        except BaseException:
            self.release()
            raise
        finally:
            os.close(folder)
        self.release()
        raise SlotsUnavailable(
            f"no {count} free sandbox slots among {MAX_SLOTS} in {directory}: other executors hold them"
        )

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)  # closing the file drops its lock
        self._fds.clear()
        self.slots.clear()
