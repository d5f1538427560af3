"""Other work the worker loop does while nothing is due to be sent.

The outbox must not import the packages above it; they register a task here at app start
(``letters.jobs.connect``). A task takes no arguments, runs inside the worker's app context, and
returns whether it did something (then the loop asks again at once instead of sleeping). It
commits its own work; an exception is logged and rolled back, and sending goes on (a database
outage is left to the loop's own outage handling).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

from ..extensions import db

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], bool]
_tasks: list[BackgroundTask] = []


def register_background_task(task: BackgroundTask) -> None:
    """Once per process (registering the same callable again changes nothing)."""
    if task not in _tasks:
        _tasks.append(task)


def run_background_tasks() -> bool:
    """Run each registered task once; True if any of them did something."""
    worked = False
    for task in list(_tasks):
        try:
            worked = bool(task()) or worked
        except DBAPIError:
            raise  # the database is away: the worker loop waits for it, as it does while sending
        except Exception:  # noqa: BLE001 - one task's bug must not stop sending
            log.exception("Hintergrundaufgabe %s abgebrochen", getattr(task, "__name__", task))
            db.session.rollback()
    return worked
