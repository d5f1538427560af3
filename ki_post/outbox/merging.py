"""The outbox part of merging two contacts (``recipients.signals.contacts_merged``).

Messages (sent, waiting or failed) follow the person: the mailing counts stay, the contact page of
the survivor lists them.
"""
from __future__ import annotations

from typing import Any

from ..recipients.merging import repoint
from ..recipients.models import Contact
from ..recipients.signals import contacts_merged
from .models import OutboxMessage


def _on_contacts_merged(sender: Any, *, source: Contact, target: Contact, **_: Any) -> dict[str, int]:
    return {"nachrichten": repoint(OutboxMessage, source, target)}


def connect() -> None:
    """Register the receiver (once per process; connecting again changes nothing)."""
    contacts_merged.connect(_on_contacts_merged)
