"""Test kit: drive the worker from outside, as a process over RabbitMQ, HTTP and its database.

Shared by the test suite (``tests/``) and the benchmark (``bench/``); not part of the wheel
(``pyproject.toml`` packages only ``worker`` and ``contracts``). Nothing here imports
``worker``: only ``contracts``, to validate what comes out. Everything is synchronous, so e2e
tests are plain ``def test_…`` functions. Import from the module that does the job:

Where to run
    :mod:`testkit.services`  the servers: ``WORKER_TEST_*`` URLs, testcontainers, ``NO_SERVICE``
    :mod:`testkit.sandbox`   a fresh database and vhost on them (``create_database``, …)
    :mod:`testkit.private`   throw-away PostgreSQL clusters and RabbitMQ nodes to stop and kill

The worker
    :mod:`testkit.config`     ``Topology`` and ``WorkerEnv``: what a worker is started with
    :mod:`testkit.processes`  ``WorkerProcess``, ``WorkerPool``: ``worker run`` subprocesses
    :mod:`testkit.logs`       ``WorkerLog``: reading a worker's JSON log
    :mod:`testkit.http`       health endpoints and ``/metrics`` (``scrape``, ``Scrape``)

Messages
    :mod:`testkit.messages`  ``SentMessage``, ``ReceivedMessage``, ``assert_outcome_message``
    :mod:`testkit.amqp`      ``AmqpClient`` (publish, request/reply), ``ReplyQueue``
    :mod:`testkit.queues`    queue counts, purges, dead letters (``take_dead_letter``)
    :mod:`testkit.events`    ``EventCollector``: every event, collected in the background

Data
    :mod:`testkit.database`   ``db_fetch`` and friends, ``table_fingerprints``, inbox/outbox
    :mod:`testkit.factories`  ``unique_email``, ``new_id``, …, ``wait_until``, ``DEFAULT_TIMEOUT``
    :mod:`testkit.workload`   ``seed``, ``build_workload``, ``wait_outcomes`` and their checks

Together
    :mod:`testkit.harness`  ``Harness`` (client + collector + database), ``harness_for``,
                            ``isolated_env``

The pytest fixtures built on these are in ``tests/conftest.py`` (services, session database
and vhost) and ``tests/e2e/conftest.py`` (``worker_env``, ``worker``, ``harness``,
``workers``, ``isolated_worker_env``).
"""
