"""Database fixtures: one test body runs on in-memory SQLite and on PostgreSQL.

``backend`` is parametrised (ids ``sqlite`` and ``postgresql``) and yields an engine and a
session factory over a schema built by the Alembic migrations, with every table empty:

* SQLite: a fresh in-memory engine per test (``StaticPool``), migrated with
  :func:`upgrade_engine` (below);
* PostgreSQL: the session's fresh database (``postgres_url``), migrated once per session,
  reached through one ``NullPool`` engine and truncated before each test.

``session`` is one ``AsyncSession`` inside a transaction that is rolled back at the end;
seed fixtures (``customers``, ``conversations``, …) commit through ``session_factory`` so
services in their own transactions see them too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from tests.factories import conversation_data, customer_data, customer_fields, moments
from worker.db.migrate import alembic_config, upgrade
from worker.db.models import Base, Conversation, Customer
from worker.db.session import SessionFactory, create_engine, create_session_factory
from worker.repositories import ConversationRepository, CustomerRepository
from worker.services import CustomerService

SQLITE_MEMORY_URL = "sqlite+aiosqlite:///:memory:"
BACKENDS = ("sqlite", "postgresql")


@dataclass
class Backend:
    """A migrated, empty database: its engine, a session factory and the SQL it ran."""

    name: str
    engine: AsyncEngine
    session_factory: SessionFactory
    statements: list[str] = field(default_factory=list)

    def capture(self) -> list[str]:
        """Start recording executed SQL (``BEGIN`` excluded); returns the live list."""
        self.statements.clear()
        if not event.contains(self.engine.sync_engine, "before_cursor_execute", self._record):
            event.listen(self.engine.sync_engine, "before_cursor_execute", self._record)
        return self.statements

    def stop_capturing(self) -> None:
        """Stop recording (the PostgreSQL engine outlives the test)."""
        if event.contains(self.engine.sync_engine, "before_cursor_execute", self._record):
            event.remove(self.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            self.statements.append(statement)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate through an existing engine (in-memory SQLite lives only in its connection)."""

    def _upgrade(connection: object) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database, migrated to head once."""
    # Alembic's env calls asyncio.run, so it runs in a thread of its own: this fixture may be
    # set up while the session's event loop is running (from inside ``backend``).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(upgrade, postgres_url).result()
    return postgres_url


@pytest.fixture(scope="session")
def postgres_engine(migrated_postgres_url: str) -> AsyncEngine:
    """One ``NullPool`` engine for the session: no connection outlives its test.

    Sharing the engine only saves the dialect's first-connect setup; with ``NullPool`` it
    holds no connections, so there is nothing to dispose of at the end.
    """
    return create_async_engine(migrated_postgres_url, poolclass=NullPool)


async def _truncate_all(engine: AsyncEngine) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """A migrated database with empty tables, on SQLite and then on PostgreSQL."""
    if request.param == "postgresql":
        engine = request.getfixturevalue("postgres_engine")
        await _truncate_all(engine)
        backend = Backend(request.param, engine, create_session_factory(engine))
        yield backend
        backend.stop_capturing()
        return
    engine = create_engine(SQLITE_MEMORY_URL)
    try:
        await upgrade_engine(engine)
        yield Backend(request.param, engine, create_session_factory(engine))
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(backend: Backend) -> SessionFactory:
    """Sessions on the test's database (for services and committed seed data)."""
    return backend.session_factory


@pytest.fixture
async def session(session_factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One session in an open transaction, rolled back when the test ends."""
    async with session_factory() as session:
        await session.begin()
        try:
            yield session
        finally:
            await session.rollback()


@pytest.fixture
def make_customer(session_factory: SessionFactory) -> Callable[..., Awaitable[Customer]]:
    """Create and commit a customer through ``CustomerService`` (``customer_fields`` overrides)."""

    async def make(**overrides: Any) -> Customer:
        async with CustomerService(session_factory) as service:
            customer = await service.create_customer(**customer_fields(**overrides))
            await service.commit()
        return customer

    return make


@pytest.fixture
async def customers(session_factory: SessionFactory) -> list[Customer]:
    """Ten committed customers, every third one a VIP, created one minute apart."""
    async with session_factory() as session, session.begin():
        repo = CustomerRepository(session)
        return [
            await repo.create(**customer_data(is_vip=i % 3 == 0, created_at=at, updated_at=at))
            for i, at in enumerate(moments(10))
        ]


@pytest.fixture
async def conversations(
    session_factory: SessionFactory, customers: list[Customer]
) -> list[Conversation]:
    """Fifty committed conversations spread over the ten customers, updated a minute apart."""
    async with session_factory() as session, session.begin():
        repo = ConversationRepository(session)
        return [
            await repo.create(
                **conversation_data(customers[i % len(customers)].id, updated_at=at, created_at=at)
            )
            for i, at in enumerate(moments(50))
        ]
