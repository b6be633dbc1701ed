"""``worker run --processes N``: N worker processes on one host, under one supervisor.

::

    worker run --processes 2                      the supervisor (this package)
    ├── /metrics /healthz /readyz on WORKER_METRICS_PORT   (host.py)
    ├── python -m worker run --processes 1 ...    child 1: a full replica (worker.bootstrap)
    │     health on 127.0.0.1:<free port>, metrics in PROMETHEUS_MULTIPROC_DIR
    └── python -m worker run --processes 1 ...    child 2: another replica

Each child is today's single-process worker, started afresh (nothing inherited across a
fork: its own database pool and broker connections) and a member of the partition group of
its own. The supervisor restarts a child that exits (:mod:`.restarts` says when, and when a
crash loop ends it all), forwards SIGTERM/SIGINT to every child and waits for their drain
(:mod:`.supervisor`); :mod:`.children` starts them and asks them whether they are ready;
:mod:`.parent_death` makes a child follow its supervisor if that dies.
"""
