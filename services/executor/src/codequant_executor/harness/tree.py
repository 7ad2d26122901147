"""Removing and copying folder trees of any depth and size: no recursion, no exception, a time limit.

What a program leaves behind (its /tmp, a run folder, javac's output for a program with a deep package) is
untrusted: a chain of thousands of nested folders makes a recursive walk (``shutil.rmtree``, ``os.walk`` and
``shutil.copytree`` in Python 3.11) raise RecursionError, and paths that deep exceed PATH_MAX. Removal here walks
with one folder descriptor at a time (down by name, up through ``..``), never follows a symbolic link, and gives
up (returns False) at the deadline or on an error instead of raising. Used by the fork server (``zygote.py``) and
the executor (``codequant_executor.sandbox``); only the standard library, as every harness file.
"""

import contextlib
import os
import stat
import time

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Entries removed between two looks at the clock.
_CHECK_EVERY = 512


def remove_tree(path, deadline=None):
    """Remove ``path`` (a folder and everything in it, or a file or link); whether it is gone. ``deadline``
    (``time.monotonic``) bounds the time taken."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return True
        if empty_folder(path, deadline):
            os.rmdir(path)
            return True
        return False
    except FileNotFoundError:
        return True
    except OSError:
        return False


def empty_folder(path, deadline=None):
    """Remove everything inside the folder ``path``; whether it is empty now."""
    try:
        fd = os.open(path, _FOLDER)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    below = []  # the names of the folders from ``path`` down to the one ``fd`` holds
    try:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return False
            folder = _clear_files(fd, deadline)
            if folder is not None:
                child = os.open(folder, _FOLDER, dir_fd=fd)
                os.close(fd)
                fd = child
                below.append(folder)
                continue
            if not below:
                return True
            parent = os.open("..", _FOLDER, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(below.pop(), dir_fd=fd)
    except (OSError, ValueError):  # ValueError: a name with a NUL cannot come from the kernel, but never raise
        return False
    finally:
        os.close(fd)


def _clear_files(fd, deadline):
    """Unlink every entry of the folder ``fd`` but folders; the name of one folder left in it, or None."""
    folder = None
    with os.scandir(fd) as entries:
        for count, entry in enumerate(entries, 1):
            if entry.is_dir(follow_symlinks=False):
                folder = folder or entry.name
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=fd)
            if count % _CHECK_EVERY == 0 and deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("out of time")
    return folder


def copy_tree(source, target):
    """Copy the folder ``source`` to a new folder ``target`` (files, folders and modes; links are skipped),
    without recursion; raises OSError as ``shutil.copytree`` does."""
    pending = [(source, target)]
    while pending:
        here, there = pending.pop()
        os.mkdir(there, stat.S_IMODE(os.lstat(here).st_mode) | 0o700)
        with os.scandir(here) as entries:
            for entry in entries:
                destination = os.path.join(there, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, destination))
                elif entry.is_file(follow_symlinks=False):
                    _copy_file(entry.path, destination)


def _copy_file(source, target):
    with open(source, "rb") as reading, open(target, "xb") as writing:
        while chunk := reading.read(1 << 20):
            writing.write(chunk)
    os.chmod(target, stat.S_IMODE(os.stat(source).st_mode))
