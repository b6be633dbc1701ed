"""A worker's HTTP side as a test sees it: health endpoints and Prometheus metrics.

``http_get(url, timeout=5) -> (status, body)``
    A GET whose error statuses are returned, not raised.
``http_json(url, timeout=5) -> (status, data)``
    The same, the body parsed as JSON (``None`` if it is not JSON).
``Scrape(text)``
    One Prometheus text exposition, parsed: ``.value(name, **labels)`` (the one sample,
    0.0 when absent), ``.total(name, **labels)`` (sum of the samples whose labels include
    ``labels``), ``.names()``, ``.samples``, ``.text``.
``scrape(port) -> Scrape``
    Fetch and parse ``/metrics`` of a worker on ``127.0.0.1:port``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Scrape", "http_get", "http_json", "scrape"]


def http_get(url: str, *, timeout: float = 5) -> tuple[int, bytes]:
    """GET ``url``; its status and body (error statuses are returned, not raised)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def http_json(url: str, *, timeout: float = 5) -> tuple[int, Any]:
    """GET ``url`` and parse the body as JSON (``None`` if it is not JSON)."""
    status, body = http_get(url, timeout=timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


class Scrape:
    """One Prometheus text exposition, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            (sample.name, dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def _matching(self, name: str, labels: Mapping[str, str]) -> list[float]:
        return [
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(self._matching(name, labels))

    def value(self, name: str, **labels: str) -> float:
        """The one sample called ``name`` with these labels (0.0 if there is none)."""
        found = self._matching(name, labels)
        assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
        return found[0] if found else 0.0

    def names(self) -> set[str]:
        """Every sample name present."""
        return {name for name, _, _ in self.samples}


def scrape(port: int) -> Scrape:
    """Fetch and parse ``/metrics`` of a worker on ``127.0.0.1:port``."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, (status, body[:200])
    return Scrape(body.decode())
