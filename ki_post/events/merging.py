"""The events part of merging two contacts (``recipients.signals.contacts_merged``).

Invitations follow the person with their answers; each keeps the address it was sent to, so a second
invitation of the survivor to the same event stays visible as such.
"""
from __future__ import annotations

from typing import Any

from ..recipients.merging import repoint
from ..recipients.models import Contact
from ..recipients.signals import contacts_merged
from .models import Invitation


def _on_contacts_merged(sender: Any, *, source: Contact, target: Contact, **_: Any) -> dict[str, int]:
    return {"einladungen": repoint(Invitation, source, target)}


def connect() -> None:
    """Register the receiver (once per process; connecting again changes nothing)."""
    contacts_merged.connect(_on_contacts_merged)
