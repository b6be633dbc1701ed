"""What every ``worker`` command shares: reading the settings with one clear error line."""

from __future__ import annotations

import click
from pydantic import ValidationError

from worker.settings import Settings


def load_settings() -> Settings:
    """Settings from the environment, or one clear line naming the bad setting."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"WORKER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        raise click.ClickException(f"invalid settings: {problems}") from None
