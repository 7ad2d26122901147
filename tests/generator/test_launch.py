"""`running_server`: the model server it starts never outlives the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
OWNER = """
import sys, time
from codequant.launch import running_server
with running_server(sys.argv[1]) as url:
    print(url, flush=True)
    time.sleep(600)
"""


def test_a_killed_owner_takes_its_server_down(tiny_model: Path) -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tiny_model)], stdout=subprocess.PIPE, text=True)
    try:
        url = owner.stdout.readline().strip()
        assert httpx.get(f"{url}/health").status_code == 200
    finally:
        os.kill(owner.pid, signal.SIGKILL)  # no finally block of the owner runs
        owner.wait()
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/health", timeout=1)
        except httpx.HTTPError:
            break
        assert time.monotonic() < deadline, "the server outlived the process that started it"
        time.sleep(0.2)
