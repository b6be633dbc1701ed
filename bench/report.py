"""Results: the JSON document, a one-line summary per run, and Markdown tables.

``python -m bench.report bench/results/FILE.json`` prints the Markdown used in
``bench/README.md``.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.diskprobe import STALL_MS


def add_ratios(runs: list[dict[str, Any]]) -> None:
    """Give every measured run its throughput as a ratio to a baseline on the same event loop
    (else the other one): of its own group and round if there is one, else of its group,
    else the main one."""
    bases: dict[tuple[str, int | None, bool], float] = {}
    for run in runs:
        spec = run["spec"]
        if spec["target"] == "baseline" and "throughput" in run:
            value, loop = float(run["throughput"]["msgs_per_s"]), bool(spec["uvloop"])
            bases.setdefault((spec["group"], spec.get("round", 1), loop), value)
            bases.setdefault((spec["group"], None, loop), value)
    for run in runs:
        spec = run["spec"]
        group, round_, loop = spec["group"], spec.get("round", 1), bool(spec["uvloop"])
        keys = [
            (g, r, lp) for g in (group, "main") for r in (round_, None) for lp in (loop, not loop)
        ]
        base = next((bases[k] for k in keys if k in bases), None)
        if base and "throughput" in run:
            run["ratio_to_baseline"] = round(run["throughput"]["msgs_per_s"] / base, 2)
    _add_scaling(runs)


def _add_scaling(runs: list[dict[str, Any]]) -> None:
    """Give every worker run its throughput as a ratio to the one-replica worker run of its
    group and round (``scaling``), when there is one."""
    singles: dict[tuple[str, int], float] = {}
    for run in runs:
        spec = run["spec"]
        if spec["target"] == "worker" and spec["processes"] == 1 and "throughput" in run:
            key = (spec["group"], spec.get("round", 1))
            singles.setdefault(key, float(run["throughput"]["msgs_per_s"]))
    for run in runs:
        spec = run["spec"]
        single = singles.get((spec["group"], spec.get("round", 1)))
        if spec["target"] == "worker" and single and "throughput" in run:
            run["scaling"] = round(run["throughput"]["msgs_per_s"] / single, 2)


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the main runs (one per round): throughput, ratio, p99; the worker once per
    replica count (``worker`` with one replica, ``worker x2``, ``worker x4`` …)."""
    main = [r for r in runs if r["spec"]["group"] == "main" and "throughput" in r]
    out: dict[str, Any] = {}
    kinds = sorted({(r["spec"]["target"], r["spec"]["processes"]) for r in main})
    for target, count in kinds:
        mine = [r for r in main if (r["spec"]["target"], r["spec"]["processes"]) == (target, count)]
        entry: dict[str, Any] = {
            "rounds": len(mine),
            "msgs_per_s": [r["throughput"]["msgs_per_s"] for r in mine],
            "msgs_per_s_median": median(r["throughput"]["msgs_per_s"] for r in mine),
            "p99_ms_median": median(r["latency"]["p99_ms"] for r in mine if "latency" in r),
        }
        if ratios := [r["ratio_to_baseline"] for r in mine if "ratio_to_baseline" in r]:
            entry["ratio_median"], entry["ratios"] = median(ratios), ratios
        if target == "worker" and (scaling := [r["scaling"] for r in mine if "scaling" in r]):
            entry["scaling_median"] = median(scaling)
        out[target if count == 1 else f"{target} x{count}"] = entry
    if "ratio_median" in out.get("worker", {}):
        out["ratio_median"], out["ratios"] = out["worker"]["ratio_median"], out["worker"]["ratios"]
    return out


def median(values: Any) -> float | None:
    """The median, or None without values."""
    ordered = sorted(values)
    return statistics.median(ordered) if ordered else None


def _cell(run: dict[str, Any], *path: str, fmt: str = "{}") -> str:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return "-"
        value = value[key]
    return fmt.format(value)


def line(run: dict[str, Any]) -> str:
    """One human-readable line about a run."""
    label = run["spec"]["label"]
    if "error" in run:
        return f"{label}: FAILED {run['error']}"
    return (
        f"{label}: {_cell(run, 'throughput', 'msgs_per_s')} msgs/s"
        f" (x{run.get('ratio_to_baseline', '?')} baseline),"
        f" p50/p95/p99 {_cell(run, 'latency', 'p50_ms')}/{_cell(run, 'latency', 'p95_ms')}/"
        f"{_cell(run, 'latency', 'p99_ms')} ms{_inside(run)},"
        f" peak RSS {run.get('peak_rss_mb')} MiB,"
        f" CPU cores worker/broker/db/driver/other {_cores(run)}"
        f" (stolen by the hypervisor {_steal(run)})"
        + _disk(run)
        + (f", per replica {_each(run)}" if "replicas" in run else "")
        + (f", {_pauses(run['gc_pauses'])}" if "gc_pauses" in run else "")
        + (f", worker warnings {run['worker_warnings']}" if run.get("worker_warnings") else "")
    )


def _inside(run: dict[str, Any]) -> str:
    """The part of the latency phase's time per command spent inside the worker."""
    handled = run.get("latency", {}).get("worker_handled")
    if not handled or not handled.get("commands"):
        return ""
    return f" (inside the worker {handled['p50_ms']}/{handled['p95_ms']}/{handled['p99_ms']})"


def _disk(run: dict[str, Any]) -> str:
    """How long the disk took to sync a small write during the latency phase."""
    disk = run.get("latency", {}).get("disk_sync")
    if not disk or not disk.get("syncs"):
        return ""
    return (
        f", disk sync p50/p99/max {disk['p50_ms']}/{disk['p99_ms']}/{disk['max_ms']} ms"
        f" ({len(disk['stalls'])} >= {STALL_MS:g} ms)"
    )


def _pauses(pauses: list[dict[str, Any]]) -> str:
    """The worker's collections of 20 ms or more: how many, the longest."""
    if not pauses:
        return "no GC pause >= 20 ms"
    longest = max(p.get("ms", 0) for p in pauses)
    return f"{len(pauses)} GC pauses >= 20 ms (longest {longest} ms)"


def _each(run: dict[str, Any]) -> str:
    """Per replica: commands applied / partitions owned / CPU cores, joined with ``+``."""
    work = run.get("replicas", {})
    cores = run.get("cpu", {}).get("worker_cores_each", [])
    parts = []
    for i, commands in enumerate(work.get("commands", [])):
        partitions = work["partitions"][i]
        core = f"{cores[i]:.2f}" if i < len(cores) else "?"
        parts.append(f"{commands}/{partitions}p/{core}")
    handed = " (handed over during the phase)" if work.get("handed_over") else ""
    return " + ".join(parts) + handed if parts else "-"


def _steal(run: dict[str, Any]) -> str:
    """Cores' worth of time the VM lost to other guests: throughput phase / latency phase."""
    phases = (run.get("cpu", {}), run.get("latency", {}))
    return "/".join(f"{p['steal_cores']:.2f}" if "steal_cores" in p else "-" for p in phases)


def _cores(run: dict[str, Any]) -> str:
    cores = run.get("cpu", {}).get("cores", {})
    return "/".join(
        f"{cores.get(k, 0):.2f}" for k in ("worker", "broker", "database", "driver", "other")
    )


def _ms(run: dict[str, Any]) -> str:
    per = run.get("cpu", {}).get("ms_per_msg", {})
    return "/".join(f"{per.get(k, 0):.2f}" for k in ("worker", "broker", "database"))


RUN_HEADER = (
    "| run | replicas | prefetch | conc | loop | log | N | msgs/s | x baseline | x 1 replica "
    "| p50 ms | p95 ms | p99 ms | peak RSS MiB | CPU cores w/b/db/drv/other | CPU ms/msg w/b/db "
    "| writes/msg db/b | per replica: commands/partitions/cores |\n"
    "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: | --- | --- | --- | --- |"
)


def run_row(run: dict[str, Any]) -> str:
    """One Markdown table row."""
    s = run["spec"]
    if "error" in run:
        return f"| {s['label']} | {s['processes']} | | | | | {s['n']} | failed |" + " |" * 10
    rss = run.get("peak_rss_mb") or []
    return (
        f"| {s['label']} | {s['processes']} | {s['prefetch']} | {s['concurrency']} "
        f"| {'uvloop' if s['uvloop'] else 'asyncio'} | {s['log_level']} | {s['n']} "
        f"| {_cell(run, 'throughput', 'msgs_per_s')} | {run.get('ratio_to_baseline', '-')} "
        f"| {run.get('scaling', '-')} "
        f"| {_cell(run, 'latency', 'p50_ms')} | {_cell(run, 'latency', 'p95_ms')} "
        f"| {_cell(run, 'latency', 'p99_ms')} | {' + '.join(str(r) for r in rss)} "
        f"| {_cores(run)} | {_ms(run)} | {_writes(run)} | {_each(run)} |"
    )


def _writes(run: dict[str, Any]) -> str:
    writes = run.get("cpu", {}).get("worker_writes_per_msg")
    return f"{writes['database']}/{writes['broker']}" if writes else "-"


def profile_table(profile: dict[str, Any]) -> str:
    """The top frames by own and by total time, side by side."""
    rows = [
        "| # | own % | frame (own) | total % | frame (total) |",
        "| ---: | ---: | --- | ---: | --- |",
    ]
    own, total = profile["top_own"], profile["top_total"]
    for i in range(max(len(own), len(total))):
        o = own[i] if i < len(own) else {"pct": "", "frame": ""}
        t = total[i] if i < len(total) else {"pct": "", "frame": ""}
        rows.append(f"| {i + 1} | {o['pct']} | `{o['frame']}` | {t['pct']} | `{t['frame']}` |")
    return "\n".join(rows)


def area_table(profile: dict[str, Any]) -> str:
    """Own and inclusive time per library."""
    total = {a["area"]: a["pct"] for a in profile.get("total_by_area", [])}
    rows = ["| library | own % | total % |", "| --- | ---: | ---: |"]
    rows += [
        f"| {a['area']} | {a['pct']} | {total.get(a['area'], '')} |" for a in profile["own_by_area"]
    ]
    return "\n".join(rows)


def worker_table(profile: dict[str, Any]) -> str:
    """Our own frames by total time, and the roots of the sampled stacks."""
    rows = ["| total % | our frame |", "| ---: | --- |"]
    rows += [f"| {f['pct']} | `{f['frame']}` |" for f in profile.get("top_worker", [])]
    rows += ["", "| samples % | stack root |", "| ---: | --- |"]
    rows += [f"| {f['pct']} | `{f['frame']}` |" for f in profile.get("roots", [])]
    return "\n".join(rows)


def markdown(doc: dict[str, Any]) -> str:
    """Every table of one results document."""
    m = doc["machine"]
    parts = [
        f"{m['date']} · {m['cpu_count']} x {m['cpu_model']} · {m['ram_gb']} GiB · Python "
        f"{m['python']} · RabbitMQ {doc['servers'].get('rabbitmq')} · PostgreSQL "
        f"{doc['servers'].get('postgresql')} · load before {m['load_average']}",
        "",
        RUN_HEADER,
        *(run_row(r) for r in doc["runs"]),
    ]
    for run in doc["runs"]:
        if "profile" in run:
            parts += [
                "",
                f"Profile of {run['spec']['label']} ({run['profile']['samples']} samples)",
            ]
            parts += ["", profile_table(run["profile"]), "", area_table(run["profile"])]
            parts += ["", worker_table(run["profile"])]
        if run["spec"]["group"] == "soak" and "rss" in run:
            r = run["rss"]
            parts += [
                "",
                f"Soak {run['spec']['n']}: RSS first {r['first_mb']} MiB, last {r['last_mb']}, "
                f"max {r['max_mb']}; drift {r['drift_pct']}% "
                f"({r['drift_after_warm_pct']}% after the first 10%)",
            ]
    return "\n".join(parts)


def write(doc: dict[str, Any], path: Path) -> None:
    """Write the results document (atomically: a partial file never replaces a good one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(markdown(json.loads(Path(name).read_text())))
