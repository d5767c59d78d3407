"""Bounds on one CLI run (`--max-seconds`, `--max-memory-mb`), so a retraining the `retrain`
processor starts cannot hold the machine.

Time: SIGALRM raises LimitExceeded in the main thread at the next Python bytecode; a watchdog
thread ends the process GRACE_SECONDS later if a long native call (a BLAS routine, an ONNX
session) kept that from happening. Memory: RLIMIT_AS caps the process's address space, so an
allocation beyond it fails (MemoryError in Python). Address space, not resident memory: the
interpreter with numpy, scikit-learn and onnxruntime loaded already maps several hundred MB it
never touches, which the limit counts."""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

GRACE_SECONDS = 30.0
TIME_EXIT = 124  # as timeout(1)
MEMORY_EXIT = 125


class LimitExceeded(BaseException):
    """A BaseException, as KeyboardInterrupt is: no `except Exception` on the way may swallow it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "time" or "memory"
        self.exit_code = TIME_EXIT if kind == "time" else MEMORY_EXIT


def _address_space_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024
    return 0.0


def time_exceeded(seconds: float) -> LimitExceeded:
    return LimitExceeded("time", f"time limit exceeded: the run took longer than --max-seconds {seconds:g}")


def memory_exceeded(megabytes: int) -> LimitExceeded:
    return LimitExceeded(
        "memory", f"memory limit exceeded: the run needed more than --max-memory-mb {megabytes} (address space)"
    )


@contextmanager
def bounded(max_seconds: float | None, max_memory_mb: int | None) -> Iterator[None]:
    """Applies the limits for the duration of the block; restores the previous ones after."""
    previous_handler = None
    watchdog = None
    previous_as = resource.getrlimit(resource.RLIMIT_AS)
    if max_memory_mb is not None:
        current = _address_space_mb()
        if max_memory_mb <= current:
            raise LimitExceeded(
                "memory",
                f"--max-memory-mb {max_memory_mb} is below what the process maps already ({current:.0f} MB "
                "of address space before training starts)",
            )
        hard = previous_as[1]
        limit = max_memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    if max_seconds is not None:

        def alarm(_signum: int, _frame: FrameType | None) -> None:
            raise time_exceeded(max_seconds)

        def stuck() -> None:
            message = f"{time_exceeded(max_seconds)} (stopped {GRACE_SECONDS:g} s later inside a native call)"
            print(message, file=sys.stderr, flush=True)
            os._exit(TIME_EXIT)

        previous_handler = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, max_seconds)
        watchdog = threading.Timer(max_seconds + GRACE_SECONDS, stuck)
        watchdog.daemon = True
        watchdog.start()
    try:
        try:
            yield
        except MemoryError as error:
            if max_memory_mb is None:
                raise
            raise memory_exceeded(max_memory_mb) from error
    finally:
        if max_seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)
            assert watchdog is not None
            watchdog.cancel()
        if max_memory_mb is not None:
            resource.setrlimit(resource.RLIMIT_AS, previous_as)


PARENT_PID_ENV = "SWITCHBOARD_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def end_with_parent() -> None:
    """When the `retrain` processor that started this run dies (even by SIGKILL, which it cannot
    relay), the kernel sends this process SIGTERM, so no training outlives its owner holding CPU
    and memory. Only when the parent said who it is (SWITCHBOARD_PARENT_PID); Linux only."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died before the request above took effect.
    if os.getppid() != int(parent):
        sys.exit("training: the process that started this run is gone")
