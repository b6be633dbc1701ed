# syntax=docker/dockerfile:1
# fca-worker image: `docker run IMAGE` runs the worker, `docker run IMAGE db upgrade` migrates.

# --- builder: build the wheel and install it (runtime dependencies only) into a venv ---------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY fca_client ./fca_client
COPY worker ./worker
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install /wheels/*.whl

# --- runtime: the venv, a non-root user, nothing else ------------------------------------------
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WORKER_METRICS_PORT=9100

RUN groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid worker --create-home --home-dir /app worker

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001
EXPOSE 9100

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WORKER_METRICS_PORT', '9100') + '/healthz', timeout=3)"]

ENTRYPOINT ["worker"]
CMD ["run"]
