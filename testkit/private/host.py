"""What private servers need from this machine: free ports, process trees, a service user.

``free_port(low=20000, high=30000)``, ``accepts_tcp(port, host)``, ``speaks_amqp(port)``
    A port free right now; whether something listens on one; whether it answers AMQP 0-9-1.
``run_as(user)``, ``service_user(name)``, ``make_base(prefix, user)``
    The ``runuser`` prefix (servers refuse root), the account to run a server as when we are
    root, and a temp dir owned by it.
``children(pid)``, ``wait_gone(pids, timeout)``, ``tail(path, lines)``
    Child processes (from ``/proc``), waiting for processes to end, the end of a log file.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import socket
import tempfile
import time
from pathlib import Path

__all__ = [
    "accepts_tcp",
    "children",
    "free_port",
    "make_base",
    "run_as",
    "service_user",
    "speaks_amqp",
    "tail",
    "wait_gone",
]

_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def free_port(low: int = 20000, high: int = 30000) -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (below the ephemeral range)."""
    # From the OS's entropy, not the `random` module's state: test processes running side
    # by side (pytest-xdist) must not draw the same sequence if something seeded it.
    draw = random.SystemRandom()
    for _ in range(200):
        port = draw.randrange(low, high)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in [{low}, {high})")


def accepts_tcp(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def speaks_amqp(port: int) -> bool:
    """Whether the listener on ``port`` answers the AMQP 0-9-1 header with Connection.Start."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(_AMQP_HEADER)
            return sock.recv(7)[:3] == b"\x01\x00\x00"  # method frame on channel 0
    except OSError:
        return False


def run_as(user: str | None) -> list[str]:
    """Prefix that runs a command as ``user`` when we are root (servers refuse root)."""
    return ["runuser", "-u", user, "--"] if user else []


def service_user(name: str) -> str | None:
    """The account to run a server as: ``None`` unless we are root, else ``name`` or nobody."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        return "nobody"
    return name


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (``(no log)`` if it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (read from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout: float = 10) -> None:
    """Wait until none of ``pids`` is alive (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def make_base(prefix: str, user: str | None) -> Path:
    """A fresh temp dir, owned by ``user`` when given."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    return base
