"""``worker dlq``: list, show, group, replay and purge dead letters.

Every command makes one pass over a snapshot of the queue and returns what it did not
remove, in order (see :mod:`worker.dlq.broker`). Dead letters are named by their envelope's
``message_id`` (:mod:`worker.dlq.model`) and grouped by :mod:`worker.dlq.groups`; replays
older than the replay window are refused (:mod:`worker.dlq.window`). Replays and purges are
written to the audit log (:mod:`worker.dlq.audit`). Exit status: 0 done, 1 a selected dead
letter was not replayed (failed or refused) or nothing was found, 2 bad usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from worker.cli.common import load_settings
from worker.dlq.audit import AuditLog
from worker.dlq.browse import browse, survey
from worker.dlq.model import Progress, Selector
from worker.dlq.purge import purge as purge_letters
from worker.dlq.render import described, groups_table, page, table
from worker.dlq.replay import replay as replay_letters
from worker.dlq.window import ReplayWindow
from worker.errors import DlqError

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from worker.settings import Settings

T = TypeVar("T")
PROGRESS_THRESHOLD = 100
"""A pass over fewer messages than this shows no progress bar."""


class BarProgress:
    """A click progress bar on stderr, for passes over many messages."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._stack = contextlib.ExitStack()
        self._bar: ProgressBar[int] | None = None

    def start(self, total: int) -> None:
        """Show the bar if the pass is large."""
        if total >= PROGRESS_THRESHOLD:
            bar = click.progressbar(length=total, label=self._label, file=sys.stderr)
            self._bar = self._stack.enter_context(bar)

    def advance(self, count: int) -> None:
        """Move the bar on."""
        if self._bar is not None:
            self._bar.update(count)

    def finish(self) -> None:
        """Close the bar."""
        self._stack.close()
        self._bar = None


def _progress(label: str) -> Progress | None:
    return BarProgress(label) if sys.stderr.isatty() else None


def _settings() -> Settings:
    return load_settings()


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except DlqError as exc:
        raise click.ClickException(str(exc)) from None


def _selection(command: Callable[..., None]) -> Callable[..., None]:
    options = (
        click.option("--limit", type=click.IntRange(min=1), help="Act on at most N messages."),
        click.option("--group", help="Only dead letters of this group (see `worker dlq groups`)."),
        click.option("--error-type", help="Only dead letters with this error type."),
        click.option("--type", "type_", help="Only commands of this type."),
        click.option(
            "--message-id", "message_ids", multiple=True, help="The envelope's id (repeatable)."
        ),
        click.option("--all", "all_", is_flag=True, help="Every dead letter."),
    )
    for option in options:
        command = option(command)
    return command


def _selector(
    all_: bool,
    message_ids: tuple[str, ...],
    type_: str | None = None,
    error_type: str | None = None,
    group: str | None = None,
) -> Selector:
    selector = Selector.of(message_ids=message_ids, type=type_, error_type=error_type, group=group)
    if all_ and not selector.selects_all:
        raise click.UsageError("--all cannot be combined with a selection option")
    if not all_ and selector.selects_all:
        raise click.UsageError(
            "say which messages: --all, --message-id, --type, --error-type or --group"
        )
    return selector


@click.group()
def dlq() -> None:
    """Inspect, group, replay and purge the dead-letter queue."""


@dlq.command("list")
@click.option("--type", "type_", help="Only commands of this type.")
@click.option("--error-type", help="Only dead letters with this error type.")
@click.option("--group", help="Only dead letters of this group (see `worker dlq groups`).")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_(
    type_: str | None, error_type: str | None, group: str | None, limit: int | None, as_json: bool
) -> None:
    """List dead letters, oldest first, without consuming any (with age and group)."""
    settings = _settings()
    selector = Selector.of(type=type_, error_type=error_type, group=group)
    window = ReplayWindow.of(settings)
    found = _run(browse(settings, selector=selector, limit=limit))
    if as_json:
        summaries = [described(letter, window) for letter in found.letters]
        click.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
        return
    click.echo(table(found.letters, window))
    shown = f"{len(found.letters)} shown, {found.matched} matching"
    click.echo(f"{shown}, {found.scanned} in the queue", err=True)


@dlq.command()
@click.argument("message_id", required=False)
@click.option("--group", help="Every dead letter of this group (with MESSAGE_ID: both must hold).")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most N.")
def show(message_id: str | None, group: str | None, limit: int | None) -> None:
    """Print dead letters in full: MESSAGE_ID, or every one of a --group."""
    if message_id is None and group is None:
        raise click.UsageError("say which: MESSAGE_ID or --group")
    settings = _settings()
    selector = Selector.of(message_ids=[message_id] if message_id else [], group=group)
    found = _run(browse(settings, selector=selector, limit=limit))
    if not found.letters:
        wanted = [f"message id {message_id!r}"] if message_id else []
        wanted += [f"group {group!r}"] if group else []
        raise click.ClickException(f"no dead letter has {' and '.join(wanted)}")
    window = ReplayWindow.of(settings)
    click.echo("\n\n".join(page(letter, window) for letter in found.letters))


@dlq.command()
@click.option("--type", "type_", help="Only commands of this type.")
@click.option("--error-type", help="Only dead letters with this error type.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def groups(type_: str | None, error_type: str | None, as_json: bool) -> None:
    """Count dead letters per group (type x error type x error), largest first."""
    selector = Selector.of(type=type_, error_type=error_type)
    found = _run(survey(_settings(), selector=selector))
    if as_json:
        click.echo(json.dumps([g.summary() for g in found], indent=2, ensure_ascii=False))
        return
    click.echo(groups_table(found))
    total = sum(g.count for g in found)
    click.echo(f"{len(found)} groups, {total} dead letters", err=True)


@dlq.command()
@_selection
@click.option("--dry-run", is_flag=True, help="Report what would be replayed; change nothing.")
def replay(
    all_: bool,
    message_ids: tuple[str, ...],
    type_: str | None,
    error_type: str | None,
    group: str | None,
    limit: int | None,
    dry_run: bool,
) -> None:
    """Republish dead letters to the commands exchange; each leaves the DLQ once confirmed.

    Dead letters older than WORKER_DLQ_REPLAY_WINDOW_DAYS are refused and stay.
    """
    selector = _selector(all_, message_ids, type_, error_type, group)
    settings = _settings()
    work = replay_letters(
        settings,
        selector,
        audit=AuditLog.default(settings),
        limit=limit,
        dry_run=dry_run,
        progress=_progress("replaying"),
    )
    summary = _run(work)
    for failure in summary.failed:
        click.echo(f"failed {failure.message_id}: {failure.reason}", err=True)
    for refusal in summary.refused:
        click.echo(f"refused {refusal.message_id}: {refusal.reason}", err=True)
    verb = "would replay" if dry_run else "replayed"
    count = len(summary.admitted) if dry_run else len(summary.replayed)
    failed, refused = len(summary.failed), len(summary.refused)
    click.echo(f"{verb} {count}, skipped {summary.skipped}, failed {failed}, refused {refused}")
    if not summary.complete:
        sys.exit(1)


@dlq.command()
@click.option("--message-id", "message_ids", multiple=True, help="The envelope's id (repeatable).")
@click.option("--group", help="Every dead letter of this group (see `worker dlq groups`).")
@click.option("--all", "all_", is_flag=True, help="Every dead letter in the queue now.")
@click.option("--yes", is_flag=True, help="Confirm: purged messages are gone for good.")
def purge(message_ids: tuple[str, ...], group: str | None, all_: bool, yes: bool) -> None:
    """Delete dead letters for good (needs --yes)."""
    selector = _selector(all_, message_ids, group=group)
    if not yes:
        raise click.UsageError("purge deletes messages for good; add --yes to confirm")
    settings = _settings()
    work = purge_letters(
        settings, selector, audit=AuditLog.default(settings), progress=_progress("purging")
    )
    summary = _run(work)
    click.echo(f"purged {len(summary.purged)}, skipped {summary.skipped}")
