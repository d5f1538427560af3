"""The one unit of work for views and CLI commands: commit on success, roll back on a domain error.

Services flush and never commit; the caller decides. A view wraps its service calls in
``with transaction(form) as tx:``, a CLI command in ``with cli_transaction():``. A ``KiPostError``
rolls everything back and becomes a German flash message (or a field error on the form), or a
``click.ClickException`` (exit status 1) on the command line. ``NotFound`` and programming errors
roll back and propagate (404 page / traceback), so nothing half-done is ever committed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import flash

from .errors import KiPostError, NotFound, ValidationError
from .extensions import db
from .forms import apply_error

Model = TypeVar("Model")


@dataclass
class Outcome:
    """What the block did; ``ok`` is False when a domain error was turned into a message."""
    ok: bool = True
    error: KiPostError | None = None


@contextmanager
def transaction(form: Any = None, *, field_map: Mapping[str, str] | None = None,
                flash_not_found: bool = False) -> Iterator[Outcome]:
    """For views: ``with transaction(form) as done: ...`` then ``if done.ok: redirect``.

    With a form, the error is shown at the field a ``ValidationError`` names, else above the form;
    without one it is flashed. Either way the session is rolled back. ``field_map`` renames a service's
    field to the form's (``start`` → ``start_date``); ``flash_not_found`` shows an unknown id chosen in
    a form as a message instead of the 404 page.
    """
    outcome = Outcome()
    try:
        yield outcome
        db.session.commit()
    except KiPostError as error:
        db.session.rollback()
        if isinstance(error, NotFound) and not flash_not_found:
            raise
        outcome.ok, outcome.error = False, error
        if form is None:
            flash(str(error), "error")
        elif isinstance(error, ValidationError):
            if field_map and error.field in field_map:
                error.field = field_map[error.field]
            apply_error(form, error)
        else:
            form.form_errors.append(str(error))
    except BaseException:
        db.session.rollback()
        raise


@contextmanager
def cli_transaction(*, cleanup: Callable[[], None] | None = None, hints: Mapping[str, str] | None = None) -> Iterator[None]:
    """For click commands: commit on success; a domain error rolls back, runs ``cleanup`` (e.g. remove
    a half-written file) and ends the command with the German message and exit status 1. ``hints``
    adds a sentence for a field's error (the option that would help)."""
    import click

    try:
        yield
        db.session.commit()
    except KiPostError as error:
        db.session.rollback()
        if cleanup:
            cleanup()
        hint = (hints or {}).get(getattr(error, "field", None) or "", "")
        raise click.ClickException(f"{error}{hint}") from None
    except BaseException:
        db.session.rollback()
        if cleanup:
            cleanup()
        raise


def get_or_404(model: type[Model], ident: Any, what: str = "Eintrag") -> Model:
    """The row or a German 404 (``NotFound``), for views and CLI alike."""
    row = db.session.get(model, ident) if ident is not None else None
    if row is None:
        raise NotFound(f"{what} {ident} nicht gefunden.")
    return row
