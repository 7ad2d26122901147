"""The seccomp filter every sandboxed process runs under (bubblewrap loads it with ``--seccomp FD``).

Built with libseccomp (through ``pyseccomp``, ctypes bindings of the system's libseccomp2) as a deny list on
top of bubblewrap's namespaces, dropped capabilities and the slot's own uid:

- new namespaces: ``unshare``, ``setns`` and ``clone`` with any namespace flag fail with EPERM, ``clone3``
  with ENOSYS (its flags are in memory a filter cannot read; the C library then falls back to ``clone``), so
  a program cannot ``unshare -Urm`` into a user namespace where it would hold capabilities again;
- memory that rlimits do not count: ``memfd_create`` and System V ``shmget`` fail with ENOMEM (reported as
  MemoryLimit);
- System V and POSIX IPC, whose objects outlive the process that made them (a slot's Python fork server
  keeps one IPC namespace for all its programs): message queues, semaphore sets, shared memory and POSIX
  message queues fail with EPERM;
- ``kill(-1, ...)`` fails with ESRCH, as for a process alone in its PID namespace (a slot's fork server shares
  the namespace with its programs, and nothing else in it is the program's to signal);
- reading or steering other processes of the run: ``ptrace``, ``process_vm_readv``/``writev``,
  ``pidfd_getfd``, ``kcmp``;
- kernel attack surface no test needs: ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``,
  ``keyctl``/``add_key``/``request_key``.

Syscalls of other ABIs (32-bit calls on x86-64) kill the process: the filter only admits the native one.
"""

from __future__ import annotations

import errno
import logging
import tempfile

log = logging.getLogger(__name__)

#: CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
#: System V and POSIX IPC but ``shmget`` (denied with ENOMEM below).
IPC = (
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "shmat",
    "shmdt",
    "shmctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
)
DENIED = {
    errno.EPERM: (
        "unshare",
        "setns",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "pidfd_getfd",
        "kcmp",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "keyctl",
        "add_key",
        "request_key",
        *IPC,
    ),
    errno.ENOMEM: ("memfd_create", "shmget"),
    errno.ENOSYS: ("clone3", "io_uring_setup", "io_uring_enter", "io_uring_register"),
}


def build_filter() -> tuple[bytes | None, str]:
    """The compiled BPF program, or None and why it is unavailable (no libseccomp on this host)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError, RuntimeError) as exc:  # pyseccomp raises when libseccomp.so.2 is missing
        return None, f"libseccomp is unavailable ({exc})"
    try:
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        for code, names in DENIED.items():
            for name in names:
                rules.add_rule(seccomp.ERRNO(code), name)
        # kill(-1, sig): as if the program were alone in its PID namespace (a fork server shares it).
        rules.add_rule(seccomp.ERRNO(errno.ESRCH), "kill", seccomp.Arg(0, seccomp.MASKED_EQ, 0xFFFFFFFF, 0xFFFFFFFF))
        for flag in NAMESPACE_FLAGS:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        with tempfile.TemporaryFile() as handle:
            rules.export_bpf(handle)
            handle.seek(0)
            return handle.read(), ""
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("cannot build the seccomp filter: %s", exc)
        return None, f"cannot build the seccomp filter ({exc})"
