"""Cleanup of what programs leave behind never recurses, never raises and ends in bounded time: a deep chain of
folders (RecursionError in a recursive walk) or a flood of files can no longer turn a verdict into SandboxError."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from codequant.limits import Limits
from codequant_executor.harness.tree import copy_tree, empty_folder, remove_tree
from codequant_executor.pool import ExecutorPool
from codequant_executor.sandbox import Sandbox
from codequant_executor.status import Status


def deep_chain(root: Path, depth: int, name: str = "d") -> None:
    """``depth`` nested folders below ``root`` (made relative to each other: deeper than PATH_MAX allows)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as handle:
                handle.write("x")
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def test_remove_tree_handles_any_depth_and_never_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    victim = tmp_path / "victim"
    victim.mkdir()
    deep_chain(victim, 5000)  # far past the recursion limit and PATH_MAX
    for i in range(300):
        (victim / f"file{i}").write_text("x")
    (victim / "link").symlink_to(outside)
    (victim / "d" / "link").symlink_to(outside / "keep")
    os.mkfifo(victim / "fifo")
    (victim / "locked").mkdir(mode=0o000)
    assert remove_tree(victim)
    assert not victim.exists() and (outside / "keep").read_text() == "keep"
    assert remove_tree(victim)  # nothing there: done
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert remove_tree(plain) and not plain.exists()


def test_emptying_stops_at_its_deadline_without_raising(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3000):
        (folder / str(i)).touch()
    deep_chain(folder, 50)
    assert empty_folder(folder, deadline=time.monotonic() - 1) is False  # out of time: says so
    assert empty_folder(folder) and list(folder.iterdir()) == []  # the folder itself stays


def test_copy_tree_copies_deep_trees_without_recursion(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    deep_chain(source, 1500)  # as deep as javac's output for a program with a 1500-part package
    (source / "link").symlink_to("/etc/passwd")
    copy_tree(str(source), str(tmp_path / "copy"))
    path = tmp_path / "copy"
    for _ in range(1500):
        assert (path / "f").read_text() == "x"
        path = path / "d"
    assert not (tmp_path / "copy" / "link").exists()
    assert remove_tree(source) and remove_tree(tmp_path / "copy")  # pytest's own cleanup would recurse


DEEP = "import os\nfor _ in range(6000):\n    os.mkdir('d')\n    os.chdir('d')\nprint('deep')\n"


@pytest.mark.slow
def test_a_program_leaving_a_deep_chain_gets_its_own_verdict_and_so_do_the_next(pool: ExecutorPool) -> None:
    """A Python program leaving 6000 nested folders in its /tmp (the fork server empties it afterwards) is OK
    (it is a correct bare program), as are the programs after it in the same slots: no SandboxError."""
    jobs = [(DEEP, "python"), (DEEP, "python")] + [("print('next')", "python")] * 4
    verdicts = pool.run_many(jobs, Limits(timeout_s=20.0, memory_mb=512))
    assert [v.status for v in verdicts] == [Status.OK] * 6, [(v.status, v.stderr[-300:]) for v in verdicts]
    assert verdicts[0].stdout == "deep\n" and verdicts[-1].stdout == "next\n"


@pytest.mark.slow
def test_a_deep_chain_in_a_run_folder_is_removed_by_the_executor(tmp_path: Path) -> None:
    """Without bubblewrap (--insecure) a program's folder is on the host: the executor removes a deep chain in
    it, and the verdict is the program's."""
    pool = ExecutorPool(Sandbox(use_bwrap=False), workers=1, insecure=True)
    try:
        verdicts = pool.run_many([(DEEP, "python"), ("print(1)", "python")], Limits(timeout_s=60.0, memory_mb=512))
    finally:
        pool.close()
    assert [v.status for v in verdicts] == [Status.OK, Status.OK], [v.stderr[-300:] for v in verdicts]


FILES = {
    "python": (
        "import os\nn = 0\ntry:\n    for i in range(400000):\n        open(f'/tmp/f{i}', 'w').close()\n"
        "        n += 1\nexcept OSError as e:\n    print(n, e.errno)\n"
        "flags = os.statvfs('/tmp').f_flag\nprint(bool(flags & os.ST_NOSUID), bool(flags & os.ST_NODEV))\n"
    ),
    "cpp": (
        "#include <cstdio>\nint main() { int n = 0; char name[64];\n"
        '  for (int i = 0; i < 400000; i++) { snprintf(name, 64, "/tmp/f%d", i); FILE *f = fopen(name, "w");\n'
        '    if (!f) break; fclose(f); n++; }\n  printf("%d\\n", n); }\n'
    ),
    "javascript": (
        "const fs = require('fs'); let n = 0;\n"
        "try { for (let i = 0; i < 400000; i++) { fs.writeFileSync('/tmp/f' + i, ''); n++; } }\n"
        "catch (e) { console.log(n, e.code); }\n"
    ),
}


@pytest.mark.slow
def test_scratch_folders_bound_files_not_just_bytes(pool: ExecutorPool) -> None:
    """A program making empty files in its /tmp (bytes: none; kernel memory and cleanup time: ~1 kB and
    ~10 us each) stops at SCRATCH_INODES with ENOSPC, in Python's fork server and in fresh sandboxes alike;
    /tmp stays nosuid and nodev; cleanup is quick and the next programs of the slots are unaffected."""
    from codequant_executor.sandbox.limits import SCRATCH_INODES

    jobs = [(FILES[language], language) for language in FILES] + [("print('next')", "python")] * 2
    started = time.monotonic()
    verdicts = pool.run_many(jobs, Limits(timeout_s=30.0, memory_mb=512))
    assert [v.status for v in verdicts] == [Status.OK] * 5, [(v.status, v.stderr[-300:]) for v in verdicts]
    made = [int(v.stdout.split()[0]) for v in verdicts[:3]]
    assert all(SCRATCH_INODES - 10 <= n < SCRATCH_INODES for n in made), made
    assert verdicts[0].stdout.splitlines() == [f"{made[0]} 28", "True True"]  # ENOSPC
    assert time.monotonic() - started < 60


SHM = {
    "pool": (
        "import multiprocessing\ndef square(x):\n    return x * x\n"
        "with multiprocessing.Pool(2) as pool:\n    print(sum(pool.map(square, range(10))))\n"
    ),
    "executor": (
        "from concurrent.futures import ProcessPoolExecutor\ndef square(x):\n    return x * x\n"
        "with ProcessPoolExecutor(2) as pool:\n    print(sum(pool.map(square, range(10))))\n"
    ),
    "leaves": "import os\nopen('/dev/shm/left', 'w').write('x')\nprint(os.listdir('/dev/shm'))\n",
    "looks": "import os\nprint(os.listdir('/dev/shm'))\n",
}


@pytest.mark.slow
def test_multiprocessing_works_with_a_private_dev_shm_emptied_after_each_program() -> None:
    """multiprocessing's locks need POSIX semaphores in /dev/shm: each program has its own (bounded, emptied
    with /tmp by the fork server), so Pool and ProcessPoolExecutor work and nothing reaches the next program."""
    pool = ExecutorPool(workers=1)  # one slot: the programs follow one another in the same fork server
    try:
        verdicts = pool.run_many(
            [(program, "python") for program in SHM.values()], Limits(timeout_s=30.0, memory_mb=512)
        )
    finally:
        pool.close()
    assert [v.status for v in verdicts] == [Status.OK] * 4, [v.stderr[-300:] for v in verdicts]
    assert [v.stdout for v in verdicts] == ["285\n", "285\n", "['left']\n", "[]\n"]
