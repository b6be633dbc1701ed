"""A RabbitMQ node of our own: ``private_rabbitmq()``, ``PrivateRabbitMQ``.

Own node name, AMQP and distribution ports, data dir and Erlang cookie; only the plugins it is
given (by default the consistent-hash exchange the worker needs); it runs as the current user
in its own process group.

``private_rabbitmq(plugins=DEFAULT_PLUGINS)``
    A context manager yielding a started ``PrivateRabbitMQ``, killed and deleted on exit;
    ``plugins=()`` gives a node without the consistent-hash exchange.
``PrivateRabbitMQ(plugins=DEFAULT_PLUGINS, cookie=None, prefix="private")``
    ``.url`` (``guest`` on ``/``), ``.port``, ``.nodename``, ``.start()`` (waits until it
    answers AMQP; ``.launch()`` + ``.wait_started()`` when several start at once), ``.stop()``
    (``rabbitmqctl stop``, keeps the data), ``.kill()`` (SIGKILL of its process group, as a
    crash), ``.restart()``, ``.destroy()`` (kill, delete the files), ``.ctl(*args)``
    (``rabbitmqctl`` against this node), ``.running`` (its process is alive).
``rabbitmq_installed()``
    Whether ``rabbitmq-server`` and ``rabbitmqctl`` can be found.
``CONSISTENT_HASH_PLUGIN``, ``DEFAULT_PLUGINS``
    ``rabbitmq_consistent_hash_exchange``, and the plugins a node gets unless told otherwise.
``ADVANCED_CONFIG``
    ``deploy/rabbitmq/advanced.config``, the broker settings every private node runs with.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from testkit.private.host import accepts_tcp, free_port, make_base, speaks_amqp, tail
from testkit.services import random_suffix

__all__ = [
    "ADVANCED_CONFIG",
    "CONSISTENT_HASH_PLUGIN",
    "DEFAULT_PLUGINS",
    "PrivateRabbitMQ",
    "private_rabbitmq",
    "rabbitmq_installed",
    "rabbitmq_script",
]

CONSISTENT_HASH_PLUGIN = "rabbitmq_consistent_hash_exchange"
DEFAULT_PLUGINS: tuple[str, ...] = (CONSISTENT_HASH_PLUGIN,)
ADVANCED_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "advanced.config"
"""The broker settings we recommend (docker-compose mounts the same file): every private node
runs with them, so the failover tests test what operators deploy."""


def rabbitmq_script(name: str) -> str:
    """Path of a RabbitMQ script (``rabbitmq-server``, ``rabbitmqctl``, …)."""
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
        rabbitmq_script("rabbitmq-server")
        rabbitmq_script("rabbitmqctl")
    except RuntimeError:
        return False
    return True


class PrivateRabbitMQ:
    """A RabbitMQ node of our own: own node name, ports, data dir, cookie and plugin list.

    It runs as the current user (root included) in its own process group, so ``kill()``
    reaches every process of it. Nodes given the same ``cookie`` can form a cluster.
    """

    def __init__(
        self,
        *,
        plugins: Sequence[str] = DEFAULT_PLUGINS,
        cookie: str | None = None,
        prefix: str = "private",
    ) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.nodename = f"{prefix}-{random_suffix(4)}@localhost"
        self.plugins = tuple(plugins)
        self.cookie = cookie or random_suffix(16).upper()
        self.base = make_base(f"{prefix}-rabbit-", None)
        self.log_file = self.base / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files()

    @property
    def url(self) -> str:
        """AMQP URL of the default vhost as ``guest`` (allowed from loopback)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        """Whether the node's process is alive (it may still be booting)."""
        return self._process is not None and self._process.poll() is None

    def _write_files(self) -> None:
        files = {
            "rabbitmq.conf": f"listeners.tcp.default = 127.0.0.1:{self.port}\n",
            "enabled_plugins": f"[{','.join(self.plugins)}].\n",
            "rabbitmq-env.conf": "",  # never the system one (NODENAME=rabbit@…)
            "advanced.config": ADVANCED_CONFIG.read_text(),
            ".erlang.cookie": self.cookie,
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

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl <args>`` against this node (never raises on a non-zero exit).

        The cookie is passed explicitly: ``rabbitmqctl`` reads it from the invoking user's
        home in /etc/passwd, not from ``$HOME``.
        """
        cli = [rabbitmq_script("rabbitmqctl"), "--erlang-cookie", self.cookie]
        return subprocess.run(
            [*cli, "-n", self.nodename, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.base,
        )

    def launch(self) -> None:
        """Start the node's process without waiting for it (see ``wait_started``)."""
        if self.running:
            return
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [rabbitmq_script("rabbitmq-server")],
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
                start_new_session=True,
            )

    def wait_started(self, timeout: float = 60) -> None:
        """Wait until the launched node answers AMQP on ``port``; kill it if it does not."""
        deadline = time.monotonic() + timeout
        while not speaks_amqp(self.port):
            if not self.running or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"private rabbitmq {self.nodename} did not start:\n{tail(self.log_file)}"
                )
            time.sleep(0.1)

    def start(self, timeout: float = 60) -> None:
        """Start the node and wait until it answers AMQP on ``port``."""
        self.launch()
        self.wait_started(timeout)

    def stop(self, timeout: float = 60) -> None:
        """Stop the node cleanly (``rabbitmqctl stop``); keep its data for ``start()``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self.ctl("stop", timeout=timeout)
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
def private_rabbitmq(plugins: Sequence[str] = DEFAULT_PLUGINS) -> Iterator[PrivateRabbitMQ]:
    """Yield a started ``PrivateRabbitMQ``; it is killed and deleted on exit, whatever happened."""
    instance = PrivateRabbitMQ(plugins=plugins)
    atexit.register(instance.destroy)
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()
        atexit.unregister(instance.destroy)
