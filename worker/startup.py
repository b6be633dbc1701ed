"""One clear, secret-free line for a start-up failure (no traceback)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from worker.settings import Settings


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def describe_startup_error(exc: BaseException, settings: Settings) -> str:
    """Say what failed and where, without the password."""
    name = type(exc).__name__
    lowered = f"{name} {exc}".lower()
    if "password" in lowered or "authentication" in lowered or "access_refused" in lowered:
        what = "authentication failed"
    elif "refused" in lowered or "connect" in lowered or isinstance(exc, OSError):
        what = "cannot connect"
    else:
        what = "failed"
    amqp = _safe_url(settings.amqp_url.get_secret_value())
    database = _safe_url(settings.database_url.get_secret_value())
    return f"{what} ({name}); broker {amqp}, database {database}"
