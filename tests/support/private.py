"""Throw-away PostgreSQL and RabbitMQ instances that tests may stop, kill and restart.

The shared services are never touched: each private instance has its own data directory,
ports and (for RabbitMQ) node name and Erlang cookie, and is killed and deleted on exit even
when the test fails. ``stop()`` keeps the data, so ``start()`` brings back durable state.

    with private_rabbitmq() as broker, private_postgres() as db:
        ...  # broker.url, db.url
        broker.restart()
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.services import random_suffix

__all__ = [
    "PrivatePostgres",
    "PrivateRabbitMQ",
    "accepts_tcp",
    "free_port",
    "postgres_installed",
    "private_postgres",
    "private_rabbitmq",
    "rabbitmq_installed",
]

_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def free_port(low: int = 20000, high: int = 30000) -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (below the ephemeral range)."""
    for _ in range(200):
        port = random.randrange(low, high)
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


def _speaks_amqp(port: int) -> bool:
    """Whether the listener on ``port`` answers the AMQP 0-9-1 header with Connection.Start."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(_AMQP_HEADER)
            return sock.recv(7)[:3] == b"\x01\x00\x00"  # method frame on channel 0
    except OSError:
        return False


def _run_as(user: str | None) -> list[str]:
    """Prefix that runs a command as ``user`` when we are root (servers refuse root)."""
    return ["runuser", "-u", user, "--"] if user else []


def _service_user(name: str) -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        return "nobody"
    return name


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _children(pid: int) -> list[int]:
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


def _wait_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _make_base(prefix: str, user: str | None) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    return base


# --- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("initdb not found (looked in /usr/lib/postgresql/*/bin and PATH)")


def postgres_installed() -> bool:
    """Whether ``initdb`` and ``pg_ctl`` can be found to start a private cluster."""
    try:
        return (_postgres_bin() / "pg_ctl").exists()
    except RuntimeError:
        return False


class PrivatePostgres:
    """A PostgreSQL cluster of our own, in a temp dir, on a free port, with trust auth."""

    def __init__(self) -> None:
        self.port = free_port()
        self.user = _service_user("postgres")
        self.base = _make_base("private-pg-", self.user)
        self.data_dir = self.base / "data"
        self.log_file = self.base / "postgres.log"
        self._bin = _postgres_bin()

    @property
    def url(self) -> str:
        """Asyncpg URL of the ``postgres`` database as superuser ``postgres``."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [*_run_as(self.user), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            cwd=self.base,
        )

    def init(self) -> None:
        """Create the cluster (``initdb``)."""
        self._run(
            str(self._bin / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C",
            "--no-sync",
        )  # fmt: skip

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        try:
            self._run(
                str(self._bin / "pg_ctl"),
                "-D", str(self.data_dir),
                "-l", str(self.log_file),
                "-o", options,
                "-w", "-t", str(int(timeout)),
                "start",
                timeout=timeout + 10,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"private postgres did not start:\n{_tail(self.log_file)}") from exc

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back sessions and shut down cleanly); keep the data."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """Crash the server: SIGKILL the postmaster and its children; keep the data."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        _wait_gone(victims)
        # Lock files naming a dead PID are what a crash leaves, but PID 1 may be slow to reap
        # the zombies here, and postgres would take one for a live postmaster.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        (self.base / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        """Stop the server however it can be stopped, then delete its files."""
        with contextlib.suppress(Exception):
            self.stop(mode="immediate")
        with contextlib.suppress(Exception):
            self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """Yield a started ``PrivatePostgres``; it is destroyed on exit, whatever happened."""
    instance = PrivatePostgres()
    atexit.register(instance.destroy)
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.destroy()
        atexit.unregister(instance.destroy)


# --- RabbitMQ ---------------------------------------------------------------------------------


def _rabbitmq_script(name: str) -> str:
    packaged = Path("/usr/lib/rabbitmq/bin") / name  # skips Debian's su/log-redirect wrapper
    if packaged.exists():
        return str(packaged)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found")
    return found


def rabbitmq_installed() -> bool:
    """Whether ``rabbitmq-server`` and ``rabbitmqctl`` can be found to start a private node."""
    try:
        _rabbitmq_script("rabbitmq-server")
        _rabbitmq_script("rabbitmqctl")
    except RuntimeError:
        return False
    return True


class PrivateRabbitMQ:
    """A RabbitMQ node of our own: own node name, ports, data dir, cookie, no plugins.

    It runs as the current user (root included) in its own process group, so ``kill()``
    reaches every process of it.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.nodename = f"private-{random_suffix(4)}@localhost"
        self.base = _make_base("private-rabbit-", None)
        self.log_file = self.base / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files()

    @property
    def url(self) -> str:
        """AMQP URL of the default vhost as ``guest`` (allowed from loopback)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _write_files(self) -> None:
        files = {
            "rabbitmq.conf": f"listeners.tcp.default = 127.0.0.1:{self.port}\n",
            "enabled_plugins": "[].\n",
            "rabbitmq-env.conf": "",
            ".erlang.cookie": random_suffix(16).upper(),
        }
        for name, content in files.items():
            path = self.base / name
            path.write_text(content)
        (self.base / ".erlang.cookie").chmod(0o400)

    def _env(self) -> dict[str, str]:
        base = str(self.base)
        return {
            **os.environ,
            "HOME": base,
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": f"{base}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": f"{base}/rabbitmq.conf",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{base}/advanced.config",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{base}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{base}/mnesia",
            "RABBITMQ_LOG_BASE": f"{base}/log",
            "RABBITMQ_PID_FILE": f"{base}/rabbitmq.pid",
            "RABBITMQ_LOGS": "-",
        }

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [_rabbitmq_script("rabbitmqctl"), "-n", self.nodename, *args],
            env=self._env(),
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=self.base,
        )

    def start(self, timeout: float = 60) -> None:
        """Start the node and wait until it answers AMQP on ``port``."""
        if self._process is not None and self._process.poll() is None:
            return
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [_rabbitmq_script("rabbitmq-server")],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _speaks_amqp(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"private rabbitmq did not start:\n{_tail(self.log_file)}")
            time.sleep(0.25)

    def stop(self, timeout: float = 60) -> None:
        """Stop the node cleanly (``rabbitmqctl stop``); keep its data for ``start()``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._ctl("stop", timeout=timeout)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Crash the node: SIGKILL its whole process group; keep its data."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((self.base / "rabbitmq.pid").read_text().strip()), signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while accepts_tcp(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def restart(self) -> None:
        """Stop cleanly, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        """Kill the node and delete its files."""
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    """Yield a started ``PrivateRabbitMQ``; it is killed and deleted on exit, whatever happened."""
    instance = PrivateRabbitMQ()
    atexit.register(instance.destroy)
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()
        atexit.unregister(instance.destroy)
