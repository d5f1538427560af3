"""The events part of merging two contacts (``recipients.signals.contacts_merged``).

Invitations follow the person with their answers. The merge then reports the survivor as changed
(``contacts_changed``), so what still waits takes the survivor's name and address (superseding.py);
an invitation to an event the survivor was invited to as well keeps its old address (one per address).
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
