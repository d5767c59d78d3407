"""A run started by a parent that names itself ends when that parent is SIGKILLed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from training.limits import PARENT_PID_ENV

REPO = Path(__file__).resolve().parents[2]

CHILD = "from training.limits import end_with_parent; end_with_parent(); print('ready', flush=True); import time; time.sleep(60)"
# The parent names itself, as retrain/training-cli.ts does, then waits for the child to be ready.
PARENT = f"""
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], env={{**os.environ, {PARENT_PID_ENV!r}: str(os.getpid())}}, stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
import time; time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state  # a zombie has ended; only its entry waits to be reaped


def test_a_run_ends_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        parent.kill()

