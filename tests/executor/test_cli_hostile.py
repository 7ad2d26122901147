"""`codequant execute` against hostile programs and hostile use: what a program prints is stored whatever its
bytes, ``--out`` never replaces what is not a regular file, Ctrl-C keeps what finished, bad input is one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from codequant.store import Execution, Store
from tests.cli import CLI as CODEQUANT
from tests.cli import codequant

CLI = [*CODEQUANT, "execute"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return codequant("execute", *args, timeout=timeout)


def write_records(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# Every byte a program can print: NUL, bytes that are not UTF-8, control characters, on both streams.
PRINTS_BYTES = (
    "import os\nos.write(1, b'a\\x00b' + bytes(range(256)))\nos.write(2, b'\\x00\\xff\\xfe err')\nprint(flush=True)\n"
)


def test_any_bytes_a_program_prints_are_stored_and_written(tmp_path: Path, store_url: str) -> None:
    """A result holding NUL or bytes that are not UTF-8 is stored on every store (PostgreSQL's text holds no
    NUL), written to --out, and read back from the store as written; no result of the run is lost."""
    records = [
        {"name": "bytes", "language": "python", "program": PRINTS_BYTES},
        {"name": "plain", "language": "python", "program": "print('ok')"},
        {"name": "cpp", "language": "cpp", "program": '#include <cstdio>\nint main(){fwrite("x\\0y",1,3,stdout);}'},
    ]
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    result = run(str(source), "--out", str(out), "--workers", "2", "--timeout", "20", "--store", store_url)
    assert result.returncode == 0, result.stderr
    written = rows(out)
    assert [r["name"] for r in written] == ["bytes", "plain", "cpp"]
    assert all(r["status"] == "OK" for r in written), written
    assert "\0" not in out.read_text().replace("\\u0000", "")  # no escaped NUL either
    assert written[0]["stdout"].startswith("a\ufffdb\ufffd\x01") and "\ufffd\ufffd\ufffd err" in written[0]["stderr"]
    assert written[2]["stdout"] == "x\ufffdy"
    with Store(store_url).session() as session:
        stored = {row.key: row for row in session.scalars(select(Execution))}
    assert len(stored) == 3
    for record in written:
        assert stored[record["execution_key"]].stdout == record["stdout"]
        assert stored[record["execution_key"]].stderr == record["stderr"]
    again = tmp_path / "again.jsonl"
    assert run(str(source), "--out", str(again), "--timeout", "20", "--store", store_url).returncode == 0
    assert rows(again) == written  # the stored results, read back, are what was written


@pytest.mark.parametrize("text", ["a\0b", "\0", "plain"])
def test_every_store_keeps_text_with_nul(store_url: str, text: str) -> None:
    """Any writer (the orchestrator's, the CLI's) stores text with NUL: as U+FFFD, the same on every back-end."""
    from codequant.executions import store_executions, stored_executions

    result = {"execution_key": "k" * 64, "language": "python", "status": "OK", "passed": True, "exit_code": 0}
    result |= {"stdout": text, "stderr": text + "\0", "duration_s": 0.1}
    store = Store(store_url)
    assert store_executions(store, [result]) == 1
    kept = stored_executions(store, ["k" * 64])["k" * 64]
    assert kept["stdout"] == text.replace("\0", "\ufffd") and kept["stderr"] == (text + "\0").replace("\0", "\ufffd")


def _not_regular_outs(tmp_path: Path) -> dict[str, Path]:
    """A symbolic link (to a file the user owns), a character device (/dev/null's numbers) and a named pipe."""
    import os

    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    (tmp_path / "link.jsonl").symlink_to(target)
    os.mknod(tmp_path / "null", 0o666 | 0o020000, os.makedev(1, 3))  # as root, like /dev/null
    os.mkfifo(tmp_path / "fifo")
    return {"link": tmp_path / "link.jsonl", "device": tmp_path / "null", "fifo": tmp_path / "fifo"}


def test_an_out_that_exists_and_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    """--out naming a link, a device or a pipe: one line naming it, exit 2, before anything runs; the thing
    itself (and what a link points to) is unchanged and no temporary file is left beside it."""
    import os
    import stat

    source = write_records(tmp_path / "in.jsonl", [{"name": "a", "language": "python", "program": "print(1)"}])
    outs = _not_regular_outs(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for kind, out in outs.items():
        result = run(str(source), "--out", str(out), "--timeout", "5")
        assert result.returncode == 2, (kind, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(out) in lines[0] and "regular file" in lines[0], (kind, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "link.jsonl").is_symlink() and (tmp_path / "precious.txt").read_text() == "keep me\n"
    assert stat.S_ISCHR(os.lstat(outs["device"]).st_mode) and stat.S_ISFIFO(os.lstat(outs["fifo"]).st_mode)


def test_no_writer_replaces_what_became_a_link_while_it_wrote(tmp_path: Path) -> None:
    """The atomic writer checks again just before it renames: a regular --out swapped for a link meanwhile
    is refused (InputError), the link and its target stay, the temporary file is removed."""
    from codequant.errors import InputError
    from codequant.jsonl import atomic_writer

    out, target = tmp_path / "out.jsonl", tmp_path / "target"
    target.write_text("keep\n")
    out.write_text("old\n")
    with pytest.raises(InputError, match="symbolic link"), atomic_writer(out) as handle:
        handle.write("new\n")
        out.unlink()
        out.symlink_to(target)
    assert out.is_symlink() and target.read_text() == "keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "target"]


def _started(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_lines(folder: Path, count: int, process: subprocess.Popen[str], limit: float = 180) -> Path:
    """The temporary output file beside --out once it holds ``count`` whole lines."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for path in folder.glob(".out.jsonl.*.tmp"):
            if path.read_text().count("\n") >= count:
                return path
        time.sleep(0.05)
    raise AssertionError(f"no {count} results streamed within {limit} s")


def _private_env(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment with its own slot folder, so what it leaves there is its own."""
    import os

    slots = tmp_path / "slots"
    slots.mkdir(mode=0o700)
    return {**os.environ, "CODEQUANT_SLOT_DIR": str(slots)}


SLEEPS = "import time\ntime.sleep(120)\n"


@pytest.mark.slow
def test_ctrl_c_stops_promptly_writes_what_finished_and_exits_130(tmp_path: Path) -> None:
    """Ctrl-C while programs run and more are queued: the command stops within seconds (not after the queue
    or the programs' 120 s timeout), writes the results that finished, in order, exits 130 with one line, and
    leaves no sandboxed process, no temporary file and nothing in its slot folder but the slot locks."""
    import os
    import signal
    import time

    from tests.executor.conftest import sandbox_processes

    records = [{"name": f"quick-{i}", "language": "python", "program": f"print({i})"} for i in range(2)]
    records += [{"name": f"slow-{i}", "language": "python", "program": SLEEPS} for i in range(6)]
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    env = _private_env(tmp_path)
    command = [*CLI, str(source), "--out", str(out), "--workers", "2", "--timeout", "120"]
    process = _started(command, env)
    _wait_for_lines(tmp_path, 2, process)
    time.sleep(1.0)  # the sleepers are running
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert time.monotonic() - sent < 15, "Ctrl-C did not stop the run promptly"
    assert "Traceback" not in stderr and "interrupted: 2 of 8 results written" in stderr
    assert [r["name"] for r in rows(out)] == ["quick-0", "quick-1"]
    assert [r["stdout"] for r in rows(out)] == ["0\n", "1\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "slots"]
    assert all(p.name.endswith(".lock") for p in (tmp_path / "slots").iterdir()), os.listdir(tmp_path / "slots")
    assert sandbox_processes() == []


@pytest.mark.slow
def test_results_are_streamed_in_input_order_as_they_finish(tmp_path: Path) -> None:
    """The first record's result is on disk while a later program still runs, and the output keeps input
    order whatever order programs finish in (a slow first record holds back only the results after it)."""
    records = [{"name": "first", "language": "python", "program": "print('first')"}]
    records += [{"name": "slow", "language": "python", "program": "import time\ntime.sleep(4)\nprint('slow')"}]
    records += [{"name": f"after-{i}", "language": "python", "program": f"print({i})"} for i in range(6)]
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    process = _started([*CLI, str(source), "--out", str(out), "--workers", "2", "--timeout", "60"])
    partial = _wait_for_lines(tmp_path, 1, process)
    assert [json.loads(line)["name"] for line in partial.read_text().splitlines()] == ["first"]  # 'slow' runs
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert [r["name"] for r in rows(out)] == [r["name"] for r in records]
    assert all(r["status"] == "OK" for r in rows(out))


def test_the_sink_writes_in_input_order_and_holds_only_what_finished_early() -> None:
    """Results arriving out of order are held only until every earlier one is there; a stopped run's held
    results are written in input order after the last complete prefix."""
    import io

    from codequant_executor.results_out import ResultSink

    handle = io.StringIO()
    sink = ResultSink(handle)

    def result(i: int) -> dict:
        return {"name": str(i), "language": "python", "status": "OK"}

    sink.add(2, result(2))
    sink.add(1, result(1))
    assert handle.getvalue() == "" and len(sink._held) == 2
    sink.add(0, result(0))
    assert [json.loads(line)["name"] for line in handle.getvalue().splitlines()] == ["0", "1", "2"]
    assert not sink._held
    sink.add(5, result(5))
    sink.add(4, result(4))
    sink.finish()  # 3 never finished
    assert [json.loads(line)["name"] for line in handle.getvalue().splitlines()] == ["0", "1", "2", "4", "5"]
    assert sink.written == 5 and sink.counts["OK"] == 5


GOOD = '{"name": "ok", "language": "python", "program": "pass"}'
BAD_LINES = {
    "5000-digit integer": '{"name": "a", "language": "python", "program": "pass", "n": ' + "7" * 5000 + "}",
    "name that is a list": '{"name": ["a"], "language": "python", "program": "pass"}',
    "name that is a list, benchmark record": '{"name": ["a"], "benchmark": "humaneval", "completion": "  pass"}',
    "name that is an object": '{"name": {"a": 1}, "language": "python", "prompt": "", "completion": "", "tests": ""}',
    "NaN": '{"name": "a", "language": "python", "program": "pass", "score": NaN}',
    "Infinity": '{"name": "a", "language": "python", "program": "pass", "score": Infinity}',
    "-Infinity": '{"name": "a", "language": "python", "program": "pass", "score": [-Infinity]}',
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_bad_input_is_one_line_naming_file_and_line(tmp_path: Path, kind: str) -> None:
    """Each kind of bad record, after good ones: one line naming FILE:LINE, exit 2, no traceback, nothing
    written (NaN and Infinity are not JSON: our output would not be JSON either)."""
    source = tmp_path / "in.jsonl"
    source.write_text(f"{GOOD}\n\n{BAD_LINES[kind]}\n{GOOD}\n")
    out = tmp_path / "out.jsonl"
    result = run(str(source), "--out", str(out), "--timeout", "5")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}:3: "), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_line_numbers_are_the_files_own_with_bare_carriage_returns(tmp_path: Path) -> None:
    """A bare CR (whitespace to JSON) does not start a line: the error names the line as the file counts it
    (LF only, like wc -l and every editor's JSON Lines); CRLF files read as before."""
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"name": "a",\r "language": "python",\r "program": "pass"}\n'
        b'{"name": "b", "language": "rust", "program": "fn main() {}"}\n'
    )
    result = run(str(source), "--out", str(tmp_path / "out.jsonl"), "--timeout", "5")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {source}:2: field 'language'") and "'rust'" in lines[0]
    source.write_bytes(f"{GOOD}\r\n{GOOD}\r\n".encode())
    crlf = tmp_path / "crlf.jsonl"
    assert run(str(source), "--out", str(crlf), "--timeout", "10").returncode == 0
    assert [r["status"] for r in rows(crlf)] == ["OK", "OK"]


@pytest.mark.slow
def test_any_temp_folder_works_and_nothing_is_left_in_it(tmp_path: Path) -> None:
    """With TMPDIR a folder other than /tmp, below folders only root may enter, programs of every language
    pass (the sandbox makes the folders above a run's folder traversable for the slot's uid); once the command
    ends, the pool is closed: nothing is left in TMPDIR (Java's spool of class files, run folders) nor in the
    slot folder (fork servers' folders with the last program) but the slot locks."""
    import os

    temp = tmp_path / "private" / "temp dir"
    temp.mkdir(parents=True)
    (tmp_path / "private").chmod(0o700)
    records = [
        {"name": "cpp", "language": "cpp", "program": '#include <cstdio>\nint main(){puts("c");}'},
        {
            "name": "java",
            "language": "java",
            "program": 'class P { public static void main(String[] a) { System.out.println("j"); } }',
        },
        {"name": "js", "language": "javascript", "program": "console.log('js')"},
        {"name": "py", "language": "python", "program": "print('py')"},
    ]
    cpp_with_tests = {
        "prompt": "int f() {\n",
        "completion": "  return 1;\n}\n",
        "tests": "int main() { return f() - 1; }\n",
    }
    records.append({"name": "cpp-tests", "language": "cpp", **cpp_with_tests})
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    env = {**_private_env(tmp_path), "TMPDIR": str(temp)}
    result = subprocess.run(
        [*CLI, str(source), "--out", str(out), "--workers", "2", "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert [(r["name"], r["status"]) for r in rows(out)] == [(r["name"], "OK") for r in records], rows(out)
    assert [r["stdout"] for r in rows(out)][:4] == ["c\n", "j\n", "js\n", "py\n"]
    assert os.listdir(temp) == []
    assert all(p.name.endswith(".lock") for p in (tmp_path / "slots").iterdir()), os.listdir(tmp_path / "slots")
