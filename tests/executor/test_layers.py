"""Each sandbox layer, observed from inside a program, and the fallback without bubblewrap."""

from __future__ import annotations

import json

import pytest

from codequant_executor.pool import ExecutorPool
from codequant_executor.sandbox import UID_BASE, Sandbox
from tests.executor.conftest import FAST

PROBE = r"""
import json, os, resource, socket
def can(action):
    try:
        action()
        return True
    except OSError:
        return False
def bigfile():
    with open("/tmp/big", "wb") as f:
        f.write(b"x" * (100 * 1024 * 1024))
print(json.dumps({
    "uid": os.getuid(),
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
    "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
    "env": sorted(os.environ),
    "root_visible": os.path.exists("/root"),
    "host_tmp_entries": len(os.listdir("/tmp")),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "interfaces": [name for _, name in socket.if_nameindex()],
    "write_usr": can(lambda: open("/usr/cq-probe", "w")),
    "write_work": can(lambda: open("/work/x", "w")),
    "big_tmp_file": can(bigfile),
}))
"""


def probe(engine: ExecutorPool) -> dict:
    verdict = engine.run_one(PROBE, "python", FAST)
    assert verdict.status == "OK", verdict.stderr
    return json.loads(verdict.stdout)


@pytest.mark.skipif(not Sandbox().bwrap, reason="needs bubblewrap")
def test_layers_seen_from_inside(engine: ExecutorPool) -> None:
    seen = probe(engine)
    assert UID_BASE <= seen["uid"] < UID_BASE + engine.workers  # own unprivileged uid per slot
    assert seen["nproc"] == 64 and seen["cpu"] == 4 and seen["nofile"] == 512  # rlimits
    assert seen["address_space"] == FAST.memory_mb * 1024 * 1024
    assert set(seen["env"]) <= {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PWD"}
    assert not seen["root_visible"] and seen["host_tmp_entries"] == 0  # private /tmp, no host home
    assert max(seen["pids"]) < 10  # its own PID namespace
    assert seen["interfaces"] == ["lo"]  # its own network namespace, nothing configured
    assert not seen["write_usr"] and not seen["write_work"]  # read-only system and program folder
    assert not seen["big_tmp_file"]  # the writable /tmp is size-limited


def test_without_bubblewrap_the_other_layers_still_hold(capfd: pytest.CaptureFixture[str]) -> None:
    import codequant_executor.sandbox as sandbox_module

    sandbox_module._warned.clear()
    fallback = ExecutorPool(Sandbox(use_bwrap=False), workers=1)
    Sandbox(use_bwrap=False)  # a second sandbox does not warn again
    warnings = capfd.readouterr().err
    assert warnings.count("bubblewrap (bwrap) is not installed") == 1
    verdict = fallback.run_one("print(sum(range(10)))\n", "python", FAST)
    assert verdict.status == "OK" and verdict.stdout == "45\n"
    assert fallback.run_one("while True:\n    pass\n", "python", FAST).status == "Timeout"
    assert fallback.run_one("print('x' * 10 ** 6)\n", "python", FAST).status == "OutputLimit"
    assert fallback.run_one("x = bytearray(8 * 1024 ** 3)\n", "python", FAST).status == "MemoryLimit"
