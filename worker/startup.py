"""One clear, secret-free line for a start-up failure (no traceback)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from worker.errors import WorkerError


class StartupError(WorkerError):
    """The worker could not reach or log in to a service it needs."""


def safe_url(url: str) -> str:
    """The URL with its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def startup_error(service: str, url: str, exc: BaseException) -> StartupError:
    """A :class:`StartupError` that says which service, where, and what kind of failure."""
    text = f"{type(exc).__name__} {exc}".lower()
    if any(word in text for word in ("password", "authentication", "access_refused", "login")):
        what = "rejected the credentials"
    elif "does not exist" in text or "not_found" in text or "vhost" in text:
        what = "has no such database or virtual host"
    else:
        what = "is unreachable"
    return StartupError(f"{service} at {safe_url(url)} {what} ({type(exc).__name__})")
