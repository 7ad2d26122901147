"""Each sandbox layer, observed from inside a program, and the fallback without bubblewrap."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from codequant.limits import Limits
from codequant_executor.cgroups import MemoryCgroups
from codequant_executor.pool import ExecutorPool, InsecureSandbox
from codequant_executor.sandbox import UID_BASE, Sandbox
from tests.cli import CLI
from tests.executor.conftest import FAST

needs_bwrap = pytest.mark.skipif(not Sandbox().bwrap, reason="needs working bubblewrap")

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
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
    "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
    "data": resource.getrlimit(resource.RLIMIT_DATA)[0],
    "env": sorted(os.environ),
    "root_visible": os.path.exists("/root"),
    "proc_visible": os.path.exists("/proc/self"),
    "host_tmp_entries": len(os.listdir("/tmp")),
    "interfaces": [name for _, name in socket.if_nameindex()],
    "write_usr": can(lambda: open("/usr/cq-probe", "w")),
    "write_work": can(lambda: open("/work/x", "w")),
    "big_tmp_file": can(bigfile),
}))
"""


def probe(pool: ExecutorPool) -> dict:
    verdict = pool.run_one(PROBE, "python", FAST)
    assert verdict.status == "OK", verdict.stderr
    return json.loads(verdict.stdout)


@needs_bwrap
def test_layers_seen_from_inside(pool: ExecutorPool) -> None:
    seen = probe(pool)
    assert seen["uid"] - UID_BASE in pool.run_slots  # own unprivileged uid per slot
    assert seen["nproc"] == 64 and seen["cpu"] == 4 and seen["nofile"] == 512  # rlimits
    assert seen["address_space"] == seen["data"] == FAST.memory_mb * 1024 * 1024
    assert set(seen["env"]) <= {"PATH", "LANG", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PWD"}
    assert not seen["root_visible"] and seen["host_tmp_entries"] == 0  # private /tmp, no host home
    assert not seen["proc_visible"]  # Python runs without /proc: nothing of the harness to read there
    # Its own PID namespace: its parent (the slot's fork server, or bubblewrap's init) has one of the first
    # PIDs there; its own PID grows with the programs the fork server has run.
    assert seen["ppid"] < 10
    assert seen["interfaces"] == ["lo"]  # its own network namespace, nothing configured
    assert not seen["write_usr"] and not seen["write_work"]  # read-only system and program folder
    assert not seen["big_tmp_file"]  # the writable /tmp is size-limited


def _raw(sandbox: Sandbox, argv: list[str], tmp_path: Path) -> tuple[int | None, str]:
    """Run a system binary directly under the sandbox layers (no harness), with /proc."""
    outcome = sandbox.run(argv, workdir=tmp_path, mounts=[], limits=FAST, slot=900, nproc=64, memory="address-space")
    return outcome.exit_code, outcome.stdout + outcome.stderr


@needs_bwrap
def test_no_capabilities_at_all_and_no_new_namespaces(tmp_path: Path) -> None:
    sandbox = Sandbox()
    assert "seccomp" in sandbox.layers
    code, status = _raw(sandbox, ["/usr/bin/grep", "^Cap\\|^NoNewPrivs\\|^Seccomp:", "/proc/self/status"], tmp_path)
    fields = dict(line.split(":\t") for line in status.splitlines())
    assert code == 0 and fields["NoNewPrivs"] == "1" and fields["Seccomp"] == "2", status
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):  # the bounding set too, not only effective
        assert int(fields[name], 16) == 0, (name, status)
    code, text = _raw(sandbox, ["/usr/bin/unshare", "-Urm", "/usr/bin/true"], tmp_path)
    assert code != 0 and "Operation not permitted" in text  # no user namespace to gain capabilities in
    code, text = _raw(sandbox, ["/usr/bin/unshare", "-n", "/usr/bin/true"], tmp_path)
    assert code != 0


def test_memory_cgroup_layer_reports_why_it_is_off_here() -> None:
    cgroups, reason = MemoryCgroups.detect()
    if cgroups is None:  # this machine: cgroup v1 memory controller, or no delegation
        assert reason and ("memory" in reason or "cgroup" in reason)
        assert "rlimit-memory" in Sandbox().layers
    else:
        assert "cgroup-memory" in Sandbox().layers


@pytest.mark.skipif(MemoryCgroups.detect()[0] is None, reason=MemoryCgroups.detect()[1] or "no cgroup v2 memory")
def test_memory_cgroup_counts_memory_rlimits_miss(pool: ExecutorPool) -> None:
    """Where cgroup v2 is delegated, memory outside the address space (a tmpfs file) is counted too."""
    program = (
        "data = b'x' * (1 << 20)\nwith open('/tmp/f', 'wb') as f:\n    for _ in range(60):\n        f.write(data)\n"
    )
    verdict = pool.run_one(program, "python", Limits(timeout_s=5, memory_mb=64))
    assert verdict.status == "MemoryLimit", verdict.stderr


def test_without_bubblewrap_the_pool_refuses_unless_insecure(capfd: pytest.CaptureFixture[str]) -> None:
    import codequant_executor.sandbox as sandbox_module

    sandbox_module._warned.discard("bwrap")
    with pytest.raises(InsecureSandbox, match="without network isolation"):
        ExecutorPool(Sandbox(use_bwrap=False), workers=1)
    fallback = ExecutorPool(Sandbox(use_bwrap=False), workers=1, insecure=True)
    Sandbox(use_bwrap=False)  # a second sandbox does not warn again
    warnings = capfd.readouterr().err
    assert warnings.count("bubblewrap cannot isolate programs here") == 1
    try:
        verdict = fallback.run_one("print(sum(range(10)))\n", "python", FAST)
        assert verdict.status == "OK" and verdict.stdout == "45\n"
        assert fallback.run_one("while True:\n    pass\n", "python", FAST).status == "Timeout"
        assert fallback.run_one("print('x' * 10 ** 6)\n", "python", FAST).status == "OutputLimit"
        assert fallback.run_one("x = bytearray(8 * 1024 ** 3)\n", "python", FAST).status == "MemoryLimit"
        early = "import os\nos._exit(0)\n"
        assert fallback.run_one(early + "pass\n", "python", FAST, early.count("\n") + 1).status == "Exception"
    finally:
        fallback.close()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another uid")
def test_executor_as_a_non_root_user_without_bubblewrap_refuses() -> None:
    """The container case (non-root uid, bubblewrap unusable): `codequant execute` refuses to run anything."""
    tmp_path = Path(tempfile.mkdtemp(prefix="cq-nonroot-"))  # pytest's folders are private to root
    tmp_path.chmod(0o777)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("prlimit", "setpriv", "java", "javac"):  # everything but bwrap
        if shutil.which(tool):
            (tools / tool).symlink_to(shutil.which(tool))
    source = tmp_path / "in.jsonl"
    source.write_text('{"name": "a", "language": "python", "program": "print(1)"}\n')
    out = tmp_path / "out.jsonl"
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *CLI]
    command += ["execute", str(source), "--out", str(out)]
    env = {"PATH": str(tools), "HOME": str(tmp_path), "CODEQUANT_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "refusing to run untrusted code without network isolation" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    insecure = subprocess.run([*command, "--insecure"], capture_output=True, text=True, env=env, timeout=120)
    try:
        assert insecure.returncode == 0, insecure.stderr  # told --insecure, it runs (and warns)
        assert "WITHOUT network" in insecure.stderr and json.loads(out.read_text())["name"] == "a"
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
