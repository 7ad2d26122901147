"""Building a sandboxed command line: bubblewrap's namespaces and mounts, the seccomp filter on a pipe, ``prlimit``
and ``setpriv`` around the program's own argv, and the scrubbed environment it starts with."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from codequant_executor.sandbox.limits import SCRATCH_INODES, SCRATCH_MB, SHM_MB, common_rlimits

#: What setpriv needs to switch to the slot's uid and empty the bounding set (it then drops them all).
SETPRIV_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
#: What a Python fork server keeps: switching its children to the slot's uid, emptying /tmp after each.
ZYGOTE_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL")
ZYGOTE_BWRAP_CAPS = (*ZYGOTE_CAPS, "CAP_SETPCAP")  # setpriv needs CAP_SETPCAP to empty the bounding set
#: setpriv before the fork server: it keeps ZYGOTE_CAPS (inheritable, hence permitted after executing as root),
#: nothing ambient, and an empty bounding set that its children inherit.
ZYGOTE_SETPRIV = (
    "--inh-caps=-all," + ",".join("+" + cap.removeprefix("CAP_").lower() for cap in ZYGOTE_CAPS),
    "--ambient-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
)
#: Remounts /tmp and /dev/shm with an inode bound (bubblewrap's --tmpfs takes a size only; a remount keeps the
#: folders bound below it), then runs the command. The capability it needs (CAP_SYS_ADMIN) goes with setpriv's
#: empty bounding set before any program runs.
BOUNDED_TMP = 'mount -o "$1" /tmp && mount -o "$2" /dev/shm && shift 2 && exec "$@"'
TMP_OPTIONS = f"remount,nosuid,nodev,size={SCRATCH_MB}m,nr_inodes={SCRATCH_INODES}"
SHM_OPTIONS = f"remount,nosuid,nodev,noexec,size={SHM_MB}m,nr_inodes={SCRATCH_INODES}"


@dataclass(frozen=True)
class Mount:
    """A host folder shown read-only to the program, at ``inside``."""

    host: Path
    inside: str


@dataclass(frozen=True)
class CommandBuilder:
    """The tools found on this host (None: absent or unusable) and how they wrap a command."""

    bwrap: str | None
    prlimit: str | None
    setpriv: str | None
    seccomp: bytes | None
    root: bool
    mount: str | None = None  # found only where it is used: as root with bubblewrap and setpriv

    def wrap(
        self,
        argv: Sequence[str],
        *,
        workdir: Path | None,
        mounts: Sequence[Mount],
        uid: int | None,
        nproc: int,
        rlimits: list[str],
        proc: bool,
        keep_fds: list[int],
        writable: Sequence[Path],
    ) -> tuple[list[str], dict[str, str], str | None]:
        """The full command line (bubblewrap, prlimit, setpriv to ``uid`` unless None, around ``argv``), its
        environment and folder."""
        environment = _environment("/tmp" if self.bwrap else str(workdir or tempfile.gettempdir()))
        command = list(argv)
        if uid is not None:
            assert self.setpriv
            command = [
                self.setpriv,
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
                *command,
            ]
            if not self.bwrap and workdir is not None:
                os.chown(workdir, uid, uid)
        if self.prlimit:
            command = [self.prlimit, *rlimits, *common_rlimits(nproc), "--", *command]
        if not self.bwrap:
            return command, environment, str(workdir) if workdir is not None else None
        prefix = self._bwrap_prefix(workdir, mounts, environment, proc=proc, writable=writable)
        return self._sealed(prefix, self._bounded_tmp(command) if uid is not None else command, keep_fds), {}, None

    def zygote(
        self, argv: Sequence[str], *, workdir: Path, mounts: Sequence[Mount], keep_fds: list[int], proc: str
    ) -> list[str]:
        """The command of a slot's Python fork server (``forkserver.py``): the run namespaces, mounts and seccomp
        filter, ``workdir`` read-only at /work, /proc at ``proc`` (not /proc: below a folder only root may enter),
        and setpriv keeping only ZYGOTE_CAPS, with an empty bounding set (the server's children drop them all
        with their uid)."""
        assert self.setpriv
        environment = _environment("/tmp")
        prefix = self._bwrap_prefix(workdir, mounts, environment, proc=False, writable=(), caps=ZYGOTE_BWRAP_CAPS)
        if proc != "/proc":  # below a folder for the server only
            prefix += ["--perms", "0700", "--dir", str(Path(proc).parent)]
        prefix += ["--proc", proc]
        return self._sealed(prefix, self._bounded_tmp([self.setpriv, *ZYGOTE_SETPRIV, "--", *argv]), keep_fds)

    def _bounded_tmp(self, command: list[str]) -> list[str]:
        """``command`` (which starts with setpriv) once /tmp and /dev/shm are remounted with ``SCRATCH_INODES``, where
        ``mount`` is available (as root); ``command`` alone otherwise."""
        if self.mount is None:
            return command
        script = BOUNDED_TMP.replace("mount ", f"{self.mount} ")
        return ["/bin/sh", "-c", script, "cq-tmp", TMP_OPTIONS, SHM_OPTIONS, *command]

    def _sealed(self, prefix: list[str], command: list[str], keep_fds: list[int]) -> list[str]:
        """``prefix -- command`` with the seccomp filter handed to bubblewrap on a pipe kept in ``keep_fds``."""
        if self.seccomp:
            read_end, write_end = os.pipe()
            os.write(write_end, self.seccomp)  # a few hundred bytes: fits the pipe
            os.close(write_end)
            keep_fds.append(read_end)
            prefix += ["--seccomp", str(read_end)]
        return [*prefix, "--", *command]

    def _bwrap_prefix(
        self,
        workdir: Path | None,
        mounts: Sequence[Mount],
        env: dict[str, str],
        *,
        proc: bool,
        writable: Sequence[Path],
        caps: Sequence[str] | None = None,
    ) -> list[str]:
        assert self.bwrap
        prefix = [self.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        prefix += ["--unshare-cgroup-try", "--new-session", "--ro-bind", "/usr", "/usr"]
        prefix += ["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin"]
        prefix += ["--dev", "/dev", "--perms", "1777", "--size", str(SCRATCH_MB * 1024 * 1024), "--tmpfs", "/tmp"]
        prefix += ["--perms", "1777", "--size", str(SHM_MB * 1024 * 1024), "--tmpfs", "/dev/shm"]  # its own, emptied
        prefix += ["--perms", "0755", "--dir", "/opt/cq"]
        # Everything dies with the thread that started it: a run with the worker thread waiting for it, a
        # long-lived server with the spawner thread, which lives as long as the executor (process.py).
        prefix.append("--die-with-parent")
        if proc:
            prefix += ["--proc", "/proc"]
        if workdir is not None:
            prefix += ["--ro-bind", str(workdir), "/work"]
        made = {"/", "/usr", "/opt", "/opt/cq", "/tmp"}

        def parents(inside: str) -> list[str]:
            """The folders above ``inside`` made traversable (bwrap would make them 0700: no slot uid gets in)."""
            folders = [str(f) for f in reversed(Path(inside).parents) if str(f) not in made]
            made.update(folders)
            return [arg for folder in folders for arg in ("--perms", "0755", "--dir", folder)]

        for mount in mounts:
            if mount.inside != str(mount.host) or not mount.host.is_relative_to("/usr"):
                prefix += [*parents(mount.inside), "--ro-bind", str(mount.host), mount.inside]
        for folder in writable:  # at their own path, wherever $TMPDIR puts them
            prefix += [*parents(str(folder)), "--bind", str(folder), str(folder)]
        # As root, setpriv needs CAP_SETUID/SETGID to switch to the slot's uid and CAP_SETPCAP to empty the
        # bounding set; it then drops every capability. Otherwise nothing is kept.
        prefix += ["--cap-drop", "ALL"]
        if caps is None:
            caps = SETPRIV_CAPS if self.root and self.setpriv else ()
        if caps and self.mount is not None:
            caps = (*caps, "CAP_SYS_ADMIN")  # for BOUNDED_TMP's mount only: setpriv's empty bounding set drops it
        for cap in caps:
            prefix += ["--cap-add", cap]
        prefix += ["--chdir", "/tmp", "--clearenv"]
        for key, value in env.items():
            prefix += ["--setenv", key, value]
        return prefix


def _environment(scratch: str) -> dict[str, str]:
    """The scrubbed environment of a sandboxed program whose home and temporary folder is ``scratch``."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": scratch,
        "TMPDIR": scratch,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }
