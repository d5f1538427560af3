"""Is the Verteiler still right? Contacts whose address bounced, and contacts nobody has looked at
for a year (list filter ``frische`` and the start page).

"Last confirmed" is, for now, the last change of the contact row. When the officers' own confirmation
is recorded (self-service "Angaben prüfen"), it joins ``last_confirmed`` here and every filter and
count follows.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from ..db_types import utcnow
from ..extensions import db
from .models import Contact

UNDELIVERABLE, STALE = "unzustellbar", "unbestaetigt"
CHOICES = {UNDELIVERABLE: "Adresse unzustellbar", STALE: "seit 12 Monaten nicht geändert oder bestätigt"}
STALE_AFTER = timedelta(days=365)


def last_confirmed() -> Any:
    """When someone last vouched for the contact's data (SQL expression): any change, and the officer's
    „Alles richtig" on her Angaben-prüfen page, which sets ``confirmed_at`` and so ``updated_at`` too."""
    return Contact.updated_at


def condition(kind: str, now: datetime | None = None) -> Any:
    if kind == UNDELIVERABLE:
        return Contact.undeliverable_since.is_not(None)
    return last_confirmed() < (now or utcnow()) - STALE_AFTER


def counts(now: datetime | None = None) -> dict[str, int]:
    """Active contacts per kind, in one query (the start page)."""
    row = db.session.execute(select(
        *(func.coalesce(func.sum(case((condition(kind, now), 1), else_=0)), 0) for kind in CHOICES)
    ).where(Contact.active.is_(True), Contact.anonymised_at.is_(None))).one()
    return dict(zip(CHOICES, (int(value) for value in row)))

