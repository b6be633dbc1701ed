"""A child never outlives its supervisor: it is killed when the supervisor dies.

On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, set by the child itself at
start (through ``ctypes``), fires however the supervisor ended, SIGKILL included. SIGKILL,
not SIGTERM: the supervisor dies without stopping its children only when it was killed, most
often by an orchestrator whose grace period (which the children had, through the forwarded
SIGTERM) is over, and then they must go too; a SIGTERM would also be lost on a child whose
event loop no longer runs. A killed child is a crashed replica: the others take its
partitions after ``WORKER_MEMBERSHIP_LIVENESS`` and its unacked deliveries are redelivered.
Elsewhere a daemon thread (it runs even when the event loop is stuck) watches the parent's
pid once a second.
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
    """Arrange to be killed when ``parent_pid`` dies; ``False`` if it is gone already."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
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
    os.kill(os.getpid(), signal.SIGKILL)
