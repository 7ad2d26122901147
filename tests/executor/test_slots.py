"""Executor processes on one host never share a sandbox slot (uid): each sweeps its uid after every
program, so sharing one would kill the other's programs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codequant_executor.slots import MAX_SLOTS, SlotClaim, SlotsUnavailable
from tests.cli import CLI, codequant

EXECUTE = [*CLI, "execute"]
HOLD = "import sys; from codequant_executor.slots import SlotClaim; c = SlotClaim(2); print(c.slots, flush=True); "
HOLD += "sys.stdin.read()"


def test_claims_are_disjoint_and_freed_when_their_process_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    held = json.loads(holder.stdout.readline())
    mine = SlotClaim(3)
    try:
        assert len(set(held) | set(mine.slots)) == 5
        holder.kill()
        holder.wait()
        again = SlotClaim(2)
        assert set(again.slots) == set(held)  # the lowest free slots again
        again.release()
    finally:
        mine.release()
        holder.kill()


def test_two_executor_processes_at_once_do_not_kill_each_others_programs(tmp_path: Path) -> None:
    program = "import time\ntime.sleep(0.15)\nassert sum(range({i})) == {total}\n"
    inputs = []
    for side in ("a", "b"):
        path = tmp_path / f"{side}.jsonl"
        rows = [
            {"name": f"{side}{i}", "language": "python", "program": program.format(i=i, total=i * (i - 1) // 2)}
            for i in range(30)
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        inputs.append(path)
    runs = [
        subprocess.Popen([*EXECUTE, str(path), "--out", str(path.with_suffix(".out")), "--workers", "2"])
        for path in inputs
    ]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    for path in inputs:
        results = [json.loads(line) for line in path.with_suffix(".out").read_text().splitlines()]
        assert [r["status"] for r in results] == ["OK"] * 30


def test_the_slot_folder_must_be_private_and_lock_files_are_never_followed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like the old /tmp/codequant-executor-slots
    with pytest.raises(SlotsUnavailable, match="no access for others"):
        SlotClaim(1, shared)
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    (private / "0.lock").symlink_to(victim)  # planted before the executor starts
    with pytest.raises(SlotsUnavailable, match=r"0\.lock"):
        SlotClaim(1, private)
    assert not victim.exists()


def test_a_cli_without_free_slots_says_so_in_one_line(tmp_path: Path) -> None:
    slots = tmp_path / "slots"
    hold = "import sys; from pathlib import Path; from codequant_executor.slots import SlotClaim; "
    hold += f"c = SlotClaim({MAX_SLOTS}, Path({str(slots)!r})); print('held', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        source = tmp_path / "in.jsonl"
        source.write_text('{"name": "a", "language": "python", "program": "pass"}\n')
        env = {**os.environ, "CODEQUANT_SLOT_DIR": str(slots)}
        result = codequant("execute", str(source), "--out", str(tmp_path / "out.jsonl"), env=env, timeout=120)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 3 and len(lines) == 1 and "free sandbox slots" in lines[0], result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "out.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
