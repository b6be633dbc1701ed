"""``python -m bench``: measure the worker against the raw baseline (see bench/README.md).

Every run gets a fresh vhost and database; the results go to ``bench/results/*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import report
from bench.env import Servers, code_version, machine_info, redact, server_versions
from bench.scenario import Spec, run

RESULTS = Path(__file__).parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--n", type=int, default=20_000, help="commands per run (default 20000)")
    p.add_argument("--prefetch", type=int, default=16, help="WORKER_PREFETCH, per partition")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--replicas", "--processes", type=replica_counts, default=(1,),
                   help="worker replicas (`worker run` processes), one main run per count, "
                   "e.g. 1,2,4 (default 1)")  # fmt: skip
    p.add_argument("--partitions", type=int, default=16, help="WORKER_PARTITIONS")
    p.add_argument("--uvloop", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--log-level", default="INFO", help="WORKER_LOG_LEVEL (default INFO)")
    p.add_argument("--latency-seconds", type=float, default=15.0, help="steady-load phase")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline run")
    p.add_argument("--repeat", type=int, default=1, help="main pair R times, interleaved; "
                   "the summary takes medians")  # fmt: skip
    p.add_argument("--no-main", action="store_true", help="skip the main runs")
    p.add_argument("--sweep", action="store_true", help="prefetch x concurrency, 1 vs 2 "
                   "replicas, uvloop on/off, log level")  # fmt: skip
    p.add_argument("--full-grid", action="store_true", help="all 9 prefetch x concurrency "
                   "pairs (default: 5, varying one at a time around p16/c16)")  # fmt: skip
    p.add_argument("--sweep-n", type=int, default=None, help="commands per sweep run (N/4)")
    p.add_argument("--soak", type=int, default=0, metavar="N", help="soak run of N commands")
    p.add_argument("--soak-backlog", type=int, default=5000, help="commands in flight, soak")
    p.add_argument("--profile", action="store_true", help="a run sampled with py-spy")
    p.add_argument("--profile-seconds", type=float, default=20.0)
    p.add_argument(
        "--set",
        dest="extra",
        action="append",
        type=assignment,
        default=[],
        metavar="NAME=VALUE",
        help="more environment for the worker (repeatable)",
    )
    p.add_argument("--out", type=Path, default=None, help="results JSON (bench/results/…)")
    p.add_argument("--amqp-url", help="broker (default BENCH_AMQP_URL, WORKER_TEST_AMQP_URL, "
                   "or amqp://guest:guest@127.0.0.1:5672/)")  # fmt: skip
    p.add_argument("--database-url", help="PostgreSQL server (default BENCH_DATABASE_URL, "
                   "WORKER_TEST_DATABASE_URL, or postgres@127.0.0.1:5432)")  # fmt: skip
    p.add_argument("--management-url", help="RabbitMQ management API, if no local rabbitmqctl")
    return p.parse_args(argv)


def assignment(text: str) -> tuple[str, str]:
    """``WORKER_GROUP_COMMIT=1`` → (name, value)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name.strip(), value


def replica_counts(text: str) -> tuple[int, ...]:
    """``1,2,4`` → (1, 2, 4): each a positive number of replicas."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected replica counts such as 1,2,4, not {text!r}")
    return counts


def plan(a: argparse.Namespace) -> list[Spec]:
    """The runs to do, in order."""
    loop = "uvloop" if a.uvloop else "asyncio"

    def spec(label: str, **settings: Any) -> Spec:
        settings.setdefault("log_level", a.log_level)
        settings.setdefault("latency_seconds", a.latency_seconds)
        settings.setdefault("n", a.n)
        settings.setdefault("partitions", a.partitions)
        return Spec(label, prefetch=a.prefetch, concurrency=a.concurrency, uvloop=a.uvloop,
                    extra=tuple(a.extra), **settings)  # fmt: skip

    specs: list[Spec] = []
    for r in range(1, a.repeat + 1) if not a.no_main else ():
        tag = f" #{r}" if a.repeat > 1 else ""
        if not a.no_baseline:
            specs.append(spec(f"baseline {loop}{tag}", target="baseline", round=r))
        for count in a.replicas:
            specs.append(spec(f"worker x{count} {loop}{tag}", processes=count, round=r))
    if a.sweep:
        grid = GRID if a.full_grid else CROSS
        specs += sweep(a.sweep_n or max(1000, a.n // 4), a.log_level, grid)
    if a.soak:
        specs.append(spec(f"worker soak {a.soak}", group="soak", n=a.soak, latency_seconds=0,
                          backlog=a.soak_backlog, rss_interval=5.0))  # fmt: skip
    if a.profile:
        specs.append(spec("worker profiled", group="profile", latency_seconds=0,
                          profile_seconds=a.profile_seconds))  # fmt: skip
    return specs


GRID = [(p, c) for p in (8, 16, 32) for c in (8, 16, 32)]
CROSS = [(8, 16), (32, 16), (16, 8), (16, 16), (16, 32)]
"""Prefetch (per partition: the worker's default is 16, at most 32 advised) x concurrency."""


def sweep(n: int, log_level: str, grid: list[tuple[int, int]]) -> list[Spec]:
    """Prefetch x concurrency on one worker, then one change at a time from p16/c16."""

    def short(label: str, **settings: Any) -> Spec:
        settings.setdefault("log_level", log_level)
        return Spec(f"sweep {label}", group="sweep", n=n, latency_seconds=5.0, **settings)

    return [
        short(f"baseline n={n}", target="baseline"),
        *(short(f"p{p} c{c}", prefetch=p, concurrency=c) for p, c in grid),
        short("2 replicas", processes=2),
        short("uvloop", uvloop=True),
        short("baseline uvloop", target="baseline", uvloop=True),
        short("log WARNING", log_level="WARNING"),
    ]


def slug(label: str) -> str:
    """A file-name-safe form of a run label."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def main(argv: list[str] | None = None) -> int:
    """Run the plan, writing the results after every run; 1 if any run failed."""
    args = parse_args(argv)
    servers = Servers.from_env(args.amqp_url, args.database_url, args.management_url)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or RESULTS / f"{stamp}.json"
    doc: dict[str, Any] = {
        "machine": machine_info(),
        "servers": asyncio.run(server_versions(servers)),
        "code": code_version(),
        "args": {k: str(v) for k, v in vars(args).items() if not k.endswith("_url")},
        "runs": [],
    }
    print(f"broker {redact(servers.amqp_url)}, database {redact(servers.database_url)}; "
          f"results → {out}", flush=True)  # fmt: skip
    failed = False
    for spec in plan(args):
        print(f"… {spec.label} (n={spec.n})", flush=True)
        artifacts = out.parent / f"{out.stem}-{slug(spec.label)}"
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(run(spec, servers, artifacts))
        thr = result.get("throughput", {})
        if "error" in result or thr.get("events") != thr.get("commands"):
            failed = True
            if "log_tail" in result:
                print(result["log_tail"], file=sys.stderr)
        doc["runs"].append(result)
        report.add_ratios(doc["runs"])
        doc["summary"] = report.summary(doc["runs"])
        report.write(doc, out)
        print("  " + report.line(result), flush=True)
    print("\n" + report.markdown(doc))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
