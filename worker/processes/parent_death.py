"""A child never outlives its supervisor: it gets SIGTERM when the supervisor dies.

On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, set by the child itself
at start (through ``ctypes``), fires even when the supervisor is killed with SIGKILL. The
signal starts the usual graceful stop, so the child hands its partitions over instead of
leaving them to the liveness timeout. Elsewhere a daemon thread watches the parent's pid
once a second and sends the same signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
"""From ``<linux/prctl.h>``."""
WATCH_INTERVAL = 1.0


def follow_parent(parent_pid: int) -> bool:
    """Arrange SIGTERM for this process when ``parent_pid`` dies; False if it is gone already."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
    else:
        watcher = threading.Thread(
            target=_watch, args=(parent_pid,), name="parent-watch", daemon=True
        )
        watcher.start()
    # The supervisor may have died before the line above took effect: then this process
    # was handed to another parent already and no signal will come.
    return os.getppid() == parent_pid


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL)
    os.kill(os.getpid(), signal.SIGTERM)
