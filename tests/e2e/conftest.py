"""E2E fixtures: the worker as a process on the session's vhost and database.

* ``worker_env`` (session): a :class:`~testkit.config.WorkerEnv` on the session's fresh
  vhost (``amqp_url``) and database (``postgres_url``), default topology names.
* ``worker_overrides`` (module): ``WORKER_*`` settings for the module's worker; override this
  fixture in a test module to change them (``{"WORKER_CONCURRENCY": "16"}``).
* ``worker`` (module): ONE started worker per test module, stopped (and killed if need be)
  when the module is done; ``worker db upgrade`` runs before the session's first one only.
  Tests in a module share it, so they use fresh data (``unique_email()``, new ids) and
  filter outcomes by ``causation_id``.
* ``harness`` (module): a :class:`~testkit.harness.Harness` on that worker; its event
  collector is bound before any test sends a command.
* ``workers`` (function): a :class:`~testkit.processes.WorkerPool` for tests that start,
  SIGTERM or SIGKILL their own workers; every process is killed at teardown.
* ``isolated_worker_env`` (function): a factory ``isolated_worker_env(**overrides) -> WorkerEnv``
  with a fresh database and fresh exchange/queue names (and 4 partitions unless
  ``partitions=`` says otherwise), for tests that need clean tables and
  topology (two workers, crashes, DLQ contents). At teardown the ``workers`` are killed
  first, then the databases dropped and the queues and exchanges deleted.

See the ``testkit`` package (its ``__init__`` maps the modules) for the harness API.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testkit.amqp import AmqpClient
from testkit.config import Topology, WorkerEnv
from testkit.harness import Harness
from testkit.processes import WorkerPool, WorkerProcess
from testkit.sandbox import create_database, drop_database


@pytest.fixture(scope="session")
def worker_env(amqp_url: str, postgres_url: str) -> WorkerEnv:
    """The session's vhost and database with the contract's default names."""
    return WorkerEnv(amqp_url=amqp_url, database_url=postgres_url)


@pytest.fixture(scope="session")
def worker_log_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where worker logs go, one file per process; kept when a test failed.

    Not under pytest's ``tmp_path``: pytest prunes old base directories when other sessions
    run, and a failed run's worker logs are what a post-mortem needs.
    """
    path = Path(tempfile.mkdtemp(prefix="fca-e2e-worker-logs-"))
    yield path
    if request.session.testsfailed:
        print(f"\nworker logs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def worker_overrides() -> dict[str, str]:
    """Extra ``WORKER_*`` settings for the module's worker (override in a module)."""
    return {}


@pytest.fixture(scope="module")
def module_workers(worker_log_dir: Path) -> Iterator[WorkerPool]:
    """A pool stopped at the end of the module."""
    pool = WorkerPool(worker_log_dir)
    yield pool
    pool.stop_all()
    pool.kill_all()


@pytest.fixture(scope="session")
def migrated_databases() -> set[str]:
    """Database URLs ``worker db upgrade`` already ran on in this session."""
    return set()


@pytest.fixture(scope="module")
def worker(
    module_workers: WorkerPool,
    worker_env: WorkerEnv,
    worker_overrides: dict[str, str],
    migrated_databases: set[str],
) -> WorkerProcess:
    """One running worker for the whole module (``db upgrade`` only for the first one)."""
    env = worker_env.with_overrides(**worker_overrides)
    migrate = env.database_url not in migrated_databases
    process = module_workers.start(env, migrate=migrate)
    migrated_databases.add(env.database_url)
    return process


@pytest.fixture(scope="module")
def harness(worker: WorkerProcess) -> Iterator[Harness]:
    """Client, event collector and database access for the module's worker."""
    h = Harness(worker.env, worker)
    yield h
    h.close()


@pytest.fixture
def workers(worker_log_dir: Path) -> Iterator[WorkerPool]:
    """A pool for this test only; everything in it is killed at teardown."""
    pool = WorkerPool(worker_log_dir)
    yield pool
    pool.stop_all(timeout=5)
    pool.kill_all()


@pytest.fixture
def isolated_worker_env(
    worker_env: WorkerEnv, workers: WorkerPool
) -> Iterator[Callable[..., WorkerEnv]]:
    """A factory of worker environments with their own database and topology names."""
    created: list[WorkerEnv] = []

    def make(*, partitions: int = 4, **overrides: str | int | float) -> WorkerEnv:
        # Few partitions by default: every partition is a quorum queue (a Raft group) on the
        # test broker, and a session creates many topologies.
        database_url = create_database(worker_env.database_url, prefix="worker_e2e_")
        env = WorkerEnv(
            amqp_url=worker_env.amqp_url,
            database_url=database_url,
            topology=Topology.unique(partitions=partitions),
        ).with_overrides(**overrides)
        created.append(env)
        return env

    yield make
    workers.kill_all()  # before the databases they use disappear
    if not created:
        return
    with AmqpClient(worker_env.amqp_url) as client:
        for env in created:
            client.delete_topology(env.topology, env.retry_delays)
    for env in created:
        drop_database(env.database_url)
