"""The letters part of merging two contacts (``recipients.signals.contacts_merged``).

Archived letters follow the person; the archived copy itself is unchanged (it is the record of what
was sent).
"""
from __future__ import annotations

from typing import Any

from ..recipients.merging import repoint
from ..recipients.models import Contact
from ..recipients.signals import contacts_merged
from .models import ArchivedLetter


def _on_contacts_merged(sender: Any, *, source: Contact, target: Contact, **_: Any) -> dict[str, int]:
    return {"briefe": repoint(ArchivedLetter, source, target)}


def connect() -> None:
    """Register the receiver (once per process; connecting again changes nothing)."""
    contacts_merged.connect(_on_contacts_merged)
