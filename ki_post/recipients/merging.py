"""Merging two contacts that are the same person: one survives with the chosen values and the whole
history, the other is deleted.

The Verteiler moves its own references (list memberships); letters, outbox and events re-point theirs
through ``signals.contacts_merged`` (they sit above the Verteiler, which must not import them).
Nothing is scrubbed: the history is the person's and stays, only under the surviving id.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from ..auth.services import audit
from ..errors import ValidationError
from ..extensions import db
from .models import Contact, verteiler_members
from .signals import contacts_changed, contacts_merged

# field → German label; the values the secretariat chooses between.
MERGE_FIELDS: dict[str, str] = {
    "anrede": "Anrede", "academic_title": "Titel", "office_title": "Amtsbezeichnung", "first_name": "Vorname",
    "last_name": "Nachname", "function": "Funktion", "email": "E-Mail-Adresse", "phone": "Telefon",
    "organisation_id": "Kommune", "notes": "Notizen",
}
KEEP, OTHER = "behalten", "uebernehmen"


@dataclass
class FieldChoice:
    name: str
    label: str
    kept: str      # shown value of the surviving contact
    other: str     # shown value of the contact merged away
    choice: str    # KEEP or OTHER

    @property
    def differs(self) -> bool:
        return self.kept != self.other


def _shown(contact: Contact, name: str) -> str:
    if name == "organisation_id":
        return contact.organisation.name if contact.organisation else ""
    return str(getattr(contact, name) or "")


def _check(target: Contact, source: Contact) -> None:
    if target.id == source.id:
        raise ValidationError("Eine Ansprechperson kann nicht mit sich selbst zusammengeführt werden.", field="other_id")
    if target.anonymised_at is not None or source.anonymised_at is not None:
        raise ValidationError("Anonymisierte Ansprechpersonen können nicht zusammengeführt werden.", field="other_id")


def plan(target: Contact, source: Contact, choices: Mapping[str, str] | None = None) -> list[FieldChoice]:
    """Per field both values and the choice (default: keep the survivor's value, take the other's where
    the survivor has none). Reads only; the preview shows this."""
    _check(target, source)
    rows = []
    for name, label in MERGE_FIELDS.items():
        kept, other = _shown(target, name), _shown(source, name)
        default = OTHER if (not kept and other) else KEEP
        choice = (choices or {}).get(name, default)
        rows.append(FieldChoice(name, label, kept, other, choice if choice in (KEEP, OTHER) else default))
    return rows


def merge_contacts(target: Contact, source: Contact, choices: Mapping[str, str] | None = None) -> dict[str, int]:
    """Give ``target`` the chosen values and everything that refers to ``source``, then delete ``source``.

    Flushes, never commits; audited with the counts of moved references. Returns those counts."""
    fields = plan(target, source, choices)
    values: dict[str, Any] = {f.name: getattr(source if f.choice == OTHER else target, f.name) for f in fields}
    email_from_source = values["email"] != target.email
    bounce = (source.undeliverable_since, source.undeliverable_reason) if email_from_source else None
    extra = {**(source.extra or {}), **(target.extra or {})}
    active = target.active or source.active
    source_id = source.id

    counts: Counter[str] = Counter()
    for _receiver, result in contacts_merged.send(None, source=source, target=target):
        counts.update(result or {})
    counts["verteiler"] = _move_memberships(source_id, target.id)
    db.session.delete(source)
    db.session.flush()  # the address is free now, should the survivor take it

    for name, value in values.items():
        setattr(target, name, value)
    if bounce is not None:
        target.undeliverable_since, target.undeliverable_reason = bounce
    target.extra = extra
    target.active = active
    db.session.flush()
    contacts_changed.send(None, contact_ids=[target.id])  # waiting messages take the merged data
    audit("kontakte.zusammengefuehrt", target, zusammengefuehrt_von=source_id,
          felder_uebernommen=sum(1 for f in fields if f.choice == OTHER), **counts)
    return dict(counts)


def _move_memberships(source_id: int, target_id: int) -> int:
    members = verteiler_members.c
    theirs = set(db.session.scalars(select(members.verteiler_id).where(members.contact_id == source_id)))
    ours = set(db.session.scalars(select(members.verteiler_id).where(members.contact_id == target_id)))
    if theirs - ours:
        db.session.execute(insert(verteiler_members), [{"verteiler_id": v, "contact_id": target_id} for v in sorted(theirs - ours)])
    db.session.execute(delete(verteiler_members).where(members.contact_id == source_id))
    return len(theirs)


def repoint(model: Any, source: Contact, target: Contact) -> int:
    """For the receivers of ``contacts_merged``: move ``model.contact_id`` from source to target."""
    result = db.session.execute(update(model).where(model.contact_id == source.id).values(contact_id=target.id)
                                .execution_options(synchronize_session="fetch"))
    return result.rowcount or 0
