"""Fork server: one per sandbox slot and language, living inside that slot's bubblewrap namespaces.

Usage: python -I -S zygote.py CONTROL_FD PROC (started by the executor as root with only CAP_SETUID,
CAP_SETGID, CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_KILL, an empty bounding set, under bubblewrap's seccomp filter
and no-new-privileges; PROC is where the namespace's /proc is mounted).

Imports the Python harness and the modules benchmark programs use once, then waits on the control socket.
Each request (fields separated by NUL) is ``UID CPU_SOFT CPU_HARD MEMORY_BYTES ADDRESS_SPACE FSIZE NOFILE NPROC python
PROGRAM TESTS_LINE`` or ``UID ... NPROC exec ARGV...`` and carries four descriptors (standard input, output,
error, proof pipe). For each request it forks a child that starts a new session, takes those descriptors as
0-3 and closes every other one, sets fresh rlimits, drops to the slot's uid (groups, then gid, then uid: the
kernel clears its capabilities), and either executes ARGV (the JVM) or runs the Python harness
(``run_python.main``) and ends as a fresh interpreter ends (exit status from SystemExit, non-daemon threads
joined, atexit handlers, streams flushed), without tearing down the modules. When the child has ended, every
other process of the namespace but bubblewrap's init (whatever the program left behind) is killed, the
private /tmp is emptied, and the child's status (exit code, or minus the signal, and whether every leftover
is gone) goes back on the control socket. Nothing else in the namespace outlives a program: System V and
POSIX message queues are refused by the seccomp filter, /work is read-only and /dev/shm (POSIX semaphores and
shared memory) is emptied with /tmp.
"""

import atexit
import contextlib
import fcntl
import gc
import os
import resource
import signal
import socket
import sys
import time

HARNESS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HARNESS)
import run_python  # noqa: E402
import tree  # noqa: E402

sys.path.remove(HARNESS)
del sys.modules["run_python"], sys.modules["tree"]  # the program cannot import the harness by name
#: Imported once here instead of once per program (what HumanEval-style programs and their tests use).
PRELOAD = ("typing", "collections", "math", "re", "itertools", "functools", "heapq", "string", "unittest.main")
for _name in PRELOAD:
    __import__(_name)
gc.freeze()  # the children's collections then leave the server's objects (and so its pages) untouched
FDS = 4
#: The numbers that start a request: UID CPU_SOFT CPU_HARD MEMORY_BYTES ADDRESS_SPACE FSIZE NOFILE NPROC.
FIELDS = 8
#: How long emptying /tmp after a program may take (then the executor replaces this server).
CLEANUP_S = 5.0
#: The namespace's /proc (for Python, below a folder only root may enter: programs run without /proc).
PROC = sys.argv[2]


def child(fields, fds):
    """Become the program; never returns."""
    uid, cpu_soft, cpu_hard, memory, address_space, fsize, nofile, nproc = (int(f) for f in fields[:FIELDS])
    mode, rest = fields[FIELDS], fields[FIELDS + 1 :]
    os.setsid()
    fds = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in fds]  # above 0-3, whatever numbers they arrived as
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(FDS, 65536)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, cpu_hard))  # SIGXCPU (Timeout) before SIGKILL
    limits = [(resource.RLIMIT_DATA, memory), (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NOFILE, nofile)]
    limits += [(resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_CORE, 0)]
    if address_space:
        limits.append((resource.RLIMIT_AS, memory))
    for which, value in limits:
        resource.setrlimit(which, (value, value))
    drop_to(uid)
    os.chdir("/tmp")
    if mode == "exec":
        try:
            os.execv(rest[0], rest)
        finally:
            os.write(2, f"codequant fork server: cannot execute {rest[0]}\n".encode())
            os._exit(127)
    try:
        run_python.main(rest[0], int(rest[1]), 3)
        code = 0
    except SystemExit as exc:
        code = exit_status(exc.code)
    finish(code)


def exit_status(code):
    """The status a fresh interpreter ends with when SystemExit(code) reaches its top level."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{code}\n")
    return 1


def finish(code):
    """End the child as a fresh interpreter ends (non-daemon threads joined, atexit handlers run, standard
    streams flushed), without the rest of finalization: tearing down every module the server imported would
    write to each of their pages, copying them all from the server (most of a program's time)."""
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120  # what Py_FinalizeEx reports when flushing fails
    os._exit(code)


def drop_to(uid):
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
        os._exit(125)


def kill_leftovers():
    """SIGKILL every process of the namespace but bubblewrap's init and this server (what the program left
    behind) and wait until they are gone; False if some were still there after ~5 s. Their PIDs come from a
    /proc only root can reach (``PROC``)."""
    me = os.getpid()
    for _ in range(5000):
        others = [int(name) for name in os.listdir(PROC) if name.isdigit() and int(name) not in (1, me)]
        if not others:
            return True
        for pid in others:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001)  # killed processes leave /proc once bubblewrap's init has reaped them
    return False


def empty_tmp():
    """Remove what the program left in /tmp and /dev/shm (any depth, up to their inode bound); whether both are
    empty now."""
    deadline = time.monotonic() + CLEANUP_S
    return tree.empty_folder("/tmp", deadline) and tree.empty_folder("/dev/shm", deadline)


def serve(control):
    while True:
        message, fds, _, _ = socket.recv_fds(control, 65536, FDS)
        if not message:
            return  # the executor closed the socket: it is done with this slot
        fields = message.decode().split("\0")
        if len(fds) != FDS or len(fields) < FIELDS + 2 or fields[FIELDS] not in ("python", "exec"):
            for fd in fds:
                os.close(fd)
            control.sendall(b"error bad request\n")
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            control.sendall(f"error fork: {exc}\n".encode())
            continue
        if pid == 0:
            control.close()
            child(fields, fds)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        gone = kill_leftovers()
        emptied = empty_tmp()
        control.sendall(f"exit {code} {'clean' if gone and emptied else 'leftovers'}\n".encode())


serve(socket.socket(fileno=int(sys.argv[1])))
