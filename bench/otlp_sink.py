"""A collector stand-in for pricing tracing: accepts OTLP/HTTP exports, counts, discards.

    .venv/bin/python -m bench.otlp_sink --port 4318 &
    .venv/bin/python -m bench --no-baseline \\
        --set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 --out …

It answers every ``POST /v1/traces`` with 200 and an empty protobuf body (what a collector
answers when it accepted everything), so the worker pays what it pays in production for
recording, batching, encoding and sending spans, and nothing for a real backend.
"""

from __future__ import annotations

import argparse

from aiohttp import web


def app() -> web.Application:
    """The sink: counts requests and bytes, printed on exit."""
    stats = {"requests": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        stats["requests"] += 1
        stats["bytes"] += len(body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def report(_: web.Application) -> None:
        print(f"otlp sink: {stats['requests']} exports, {stats['bytes']} bytes", flush=True)

    application = web.Application(client_max_size=64 * 1024 * 1024)
    application.router.add_post("/v1/traces", traces)
    application.on_cleanup.append(report)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    web.run_app(app(), host="127.0.0.1", port=parser.parse_args().port, print=None)


if __name__ == "__main__":
    main()
