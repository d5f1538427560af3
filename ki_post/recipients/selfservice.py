""""Angaben prüfen": the officer's own page behind a personal link, and the secretariat's review queue.

The officer sees what is kept about her, confirms it ("Alles richtig"), proposes corrections or says
"Ich bin nicht mehr zuständig" and names a successor. Nothing she sends changes the Verteiler: each
submission is a ``ContactProposal`` the secretariat accepts or rejects, and accepting goes through the
normal services (audited, ``contacts_changed``). An accepted handover creates or reactivates the
successor, moves the static Verteiler memberships, lets the higher layers move what they own
(``contact_handed_over``: open invitations of coming events) and deactivates the predecessor.
"""
from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from markupsafe import escape
from sqlalchemy import delete, func, insert, select

from ..auth.services import audit
from ..db_types import utcnow
from ..errors import KiPostError, NotFound, ValidationError
from ..extensions import db
from .models import (ANREDEN, Contact, ContactLink, ContactProposal, ProposalKind, ProposalState, Verteiler,
                     verteiler_members)
from .services import normalise_email, save_contact, save_organisation, set_contact_active
from .signals import contact_handed_over

INVALID = "Dieser Link ist ungültig."


class LinkExpired(KiPostError):
    """The link was real but is too old (the page answers 410)."""


# Field → label, on the contact and on its organisation (the postal address is the Kommune's).
CONTACT_FIELDS = {"anrede": "Anrede", "academic_title": "Akademischer Titel", "function": "Funktion",
                  "phone": "Telefon"}
ADDRESS_FIELDS = {"authority": "Behörde", "street": "Straße oder Postfach", "postcode": "PLZ", "town": "Ort"}
LIMITS = {"anrede": 10, "academic_title": 50, "function": 200, "phone": 50, "authority": 200, "street": 200,
          "postcode": 10, "town": 100}
LABELS = {**CONTACT_FIELDS, **{f"organisation.{name}": label for name, label in ADDRESS_FIELDS.items()}}


# --- Links ----------------------------------------------------------------------------------------

def _days() -> int:
    return int(current_app.config.get("SELFSERVICE_LINK_DAYS", 60))


def link_token(contact: Contact) -> str:
    """The contact's current link: the newest one while more than half its time is left, else a new one.
    So a mail written anew says the same link, and each mail's link stays valid for at least half the time."""
    now = utcnow()
    days = _days()
    newest = db.session.scalar(select(ContactLink).where(ContactLink.contact_id == contact.id)
                               .order_by(ContactLink.expires_at.desc()).limit(1))
    if newest is not None and newest.expires_at - now > timedelta(days=days / 2):
        return newest.token
    link = ContactLink(contact_id=contact.id, token=secrets.token_urlsafe(32), created_at=now,
                       expires_at=now + timedelta(days=days))
    db.session.add(link)
    db.session.flush()
    return link.token


def link_url(contact: Contact) -> str:
    return f"{current_app.config['BASE_URL'].rstrip('/')}/angaben/{link_token(contact)}"


class LazyLink:
    """``{{ angaben_pruefen_link }}`` in a mail template: a link is made only for mails that show it."""

    def __init__(self, contact: Contact | None):
        self._contact = contact
        self._url: str | None = None

    def __str__(self) -> str:
        if self._url is None:
            self._url = link_url(self._contact) if self._contact is not None and self._contact.anonymised_at is None else ""
        return self._url

    def __html__(self) -> str:
        return str(escape(str(self)))

    def __bool__(self) -> bool:
        return self._contact is not None and self._contact.anonymised_at is None


def contact_by_token(token: str) -> Contact:
    """The contact of a link; NotFound for a forged or unknown one, LinkExpired for an expired one or
    a contact no longer on the Verteiler."""
    if not token or len(token) > 64:
        raise NotFound(INVALID)
    link = db.session.scalar(select(ContactLink).where(ContactLink.token == token))
    # The index finds the row; the constant-time comparison keeps the check itself free of timing hints.
    if link is None or not hmac.compare_digest(link.token.encode(), token.encode()):
        raise NotFound(INVALID)
    contact = link.contact
    if contact.anonymised_at is not None:
        raise NotFound(INVALID)
    if utcnow() > link.expires_at or not contact.active:
        raise LinkExpired("Dieser Link ist abgelaufen.")
    return contact


# --- What the officer sends ---------------------------------------------------------------------------

def current_values(contact: Contact) -> dict[str, str]:
    organisation = contact.organisation
    values = {name: getattr(contact, name) or "" for name in CONTACT_FIELDS}
    for name in ADDRESS_FIELDS:
        values[f"organisation.{name}"] = (getattr(organisation, name) or "") if organisation is not None else ""
    return values


def _clean(value: Any, limit: int, label: str, field: str) -> str:
    text = " ".join(str(value or "").split())
    if len(text) > limit:
        raise ValidationError(f"{label}: höchstens {limit} Zeichen.", field)
    return text


def _message(text: str) -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    if len(text) > 2000:
        raise ValidationError("Die Nachricht ist zu lang (höchstens 2.000 Zeichen).", "message")
    return text


def propose_correction(contact: Contact, data: Mapping[str, Any], message: str = "") -> ContactProposal:
    """A correction as a proposal: only the fields that differ from what is kept now."""
    old_values = current_values(contact)
    old, new = {}, {}
    for key, label in LABELS.items():
        if key not in data:
            continue
        field = key.split(".")[-1]
        value = _clean(data[key], LIMITS[field], label, key)
        if key == "organisation.postcode" and value and not value.isdigit():
            raise ValidationError("PLZ: bitte nur Ziffern.", key)
        if key.startswith("organisation.") and contact.organisation is None:
            continue
        if value != old_values[key]:
            old[key], new[key] = old_values[key], value
    if "anrede" in new and new["anrede"] not in ANREDEN:
        raise ValidationError("Bitte eine Anrede aus der Liste wählen.", "anrede")
    message = _message(message)
    if not new and not message:
        raise ValidationError("Sie haben nichts geändert. Wenn alles stimmt, wählen Sie bitte „Alles richtig“.")
    proposal = ContactProposal(contact_id=contact.id, kind=ProposalKind.KORREKTUR, old=old, new=new, message=message)
    db.session.add(proposal)
    db.session.flush()
    audit("vorschlag.eingegangen", proposal, kontakt_id=contact.id, felder=len(new), actor="Angaben-prüfen-Link")
    return proposal


def propose_handover(contact: Contact, data: Mapping[str, Any], message: str = "") -> ContactProposal:
    """"Ich bin nicht mehr zuständig", with the successor's name, address and function."""
    successor = {
        "first_name": _clean(data.get("first_name"), 100, "Vorname", "first_name"),
        "last_name": _clean(data.get("last_name"), 100, "Nachname", "last_name"),
        "function": _clean(data.get("function"), 200, "Funktion", "function"),
    }
    if not successor["last_name"]:
        raise ValidationError("Bitte den Nachnamen der Nachfolge angeben.", "last_name")
    successor["email"] = normalise_email(str(data.get("email") or ""))
    if successor["email"] == contact.email:
        raise ValidationError("Bitte die E-Mail-Adresse der Nachfolge angeben, nicht Ihre eigene.", "email")
    proposal = ContactProposal(contact_id=contact.id, kind=ProposalKind.UEBERGABE, old={}, new={},
                               successor=successor, message=_message(message))
    db.session.add(proposal)
    db.session.flush()
    audit("vorschlag.eingegangen", proposal, kontakt_id=contact.id, uebergabe=True, actor="Angaben-prüfen-Link")
    return proposal


def confirm_unchanged(contact: Contact) -> None:
    """"Alles richtig": the data was looked at and is right as it is."""
    contact.confirmed_at = utcnow()
    db.session.flush()
    audit("kontakt.bestaetigt", contact, actor="Angaben-prüfen-Link")


def open_proposals(contact: Contact) -> list[ContactProposal]:
    return list(db.session.scalars(select(ContactProposal).where(
        ContactProposal.contact_id == contact.id, ContactProposal.state == ProposalState.OFFEN).order_by(ContactProposal.id)))


# --- The review queue -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DiffRow:
    label: str
    old: str
    new: str


def _shown(key: str, value: str) -> str:
    if key == "anrede":
        return ANREDEN.get(value, value) if value else "keine Angabe"
    return value or "—"


def diff_rows(proposal: ContactProposal) -> list[DiffRow]:
    """Old → new, as the secretariat reads it. For a handover: who takes over."""
    if proposal.kind == ProposalKind.UEBERGABE:
        successor = proposal.successor or {}
        contact = proposal.contact
        return [
            DiffRow("Zuständig", contact.full_name or contact.email,
                    " ".join(p for p in (successor.get("first_name"), successor.get("last_name")) if p)),
            DiffRow("E-Mail-Adresse", contact.email, successor.get("email", "")),
            DiffRow("Funktion", contact.function or "—", successor.get("function") or "—"),
        ]
    return [DiffRow(LABELS.get(key, key), _shown(key, proposal.old.get(key, "")), _shown(key, value))
            for key, value in proposal.new.items()]


def pending_proposals() -> list[ContactProposal]:
    return list(db.session.scalars(select(ContactProposal).where(ContactProposal.state == ProposalState.OFFEN)
                                   .order_by(ContactProposal.created_at, ContactProposal.id)))


def pending_count() -> int:
    return db.session.scalar(select(func.count(ContactProposal.id)).where(ContactProposal.state == ProposalState.OFFEN)) or 0


def get_proposal(proposal_id: int) -> ContactProposal:
    proposal = db.session.get(ContactProposal, proposal_id)
    if proposal is None:
        raise NotFound("Diesen Vorschlag gibt es nicht.")
    return proposal


def _open(proposal: ContactProposal, user_id: int | None) -> None:
    db.session.refresh(proposal)  # decided meanwhile in another tab?
    if proposal.state != ProposalState.OFFEN:
        raise ValidationError(f"Dieser Vorschlag ist bereits {proposal.state_label}.")
    proposal.decided_at = utcnow()
    proposal.decided_by_id = user_id


def reject(proposal: ContactProposal, reason: str = "", *, user_id: int | None = None) -> None:
    _open(proposal, user_id)
    reason = (reason or "").strip()
    if len(reason) > 2000:
        raise ValidationError("Die Begründung ist zu lang (höchstens 2.000 Zeichen).", "reason")
    proposal.state = ProposalState.ABGELEHNT
    proposal.reason = reason
    db.session.flush()
    audit("vorschlag.abgelehnt", proposal, kontakt_id=proposal.contact_id, begruendet=bool(reason))


def _contact_data(contact: Contact, **changes: Any) -> dict[str, Any]:
    data = {name: getattr(contact, name) for name in ("anrede", "academic_title", "office_title", "first_name",
                                                       "last_name", "function", "phone", "notes", "email")}
    data["organisation_id"] = contact.organisation_id
    data.update(changes)
    return data


@dataclass
class Accepted:
    successor: Contact | None = None
    lists_moved: int = 0
    moved: dict[str, int] | None = None  # what the higher layers moved (e.g. invitations)


def accept(proposal: ContactProposal, *, user_id: int | None = None) -> Accepted:
    """Apply a proposal through the normal services; each step is audited on its own."""
    _open(proposal, user_id)
    contact = proposal.contact
    if contact.anonymised_at is not None:
        raise ValidationError("Die Ansprechperson ist anonymisiert; der Vorschlag kann nur abgelehnt werden.")
    result = _accept_handover(proposal, contact) if proposal.kind == ProposalKind.UEBERGABE else _accept_correction(proposal, contact)
    proposal.state = ProposalState.UEBERNOMMEN
    db.session.flush()
    audit("vorschlag.uebernommen", proposal, kontakt_id=contact.id,
          nachfolge_id=result.successor.id if result.successor else None)
    return result


def _accept_correction(proposal: ContactProposal, contact: Contact) -> Accepted:
    own = {key: value for key, value in proposal.new.items() if not key.startswith("organisation.")}
    address = {key.split(".", 1)[1]: value for key, value in proposal.new.items() if key.startswith("organisation.")}
    if own:
        save_contact(contact, _contact_data(contact, **own))
    if address and contact.organisation is not None:
        organisation = contact.organisation
        data = {name: getattr(organisation, name) for name in ("name", "kind", "regierungsbezirk", "ki_name",
                                                                "authority", "street", "postcode", "town")}
        data.update(address)
        save_organisation(organisation, data)
    contact.confirmed_at = utcnow()
    return Accepted()


def _accept_handover(proposal: ContactProposal, contact: Contact) -> Accepted:
    wanted = proposal.successor or {}
    successor = db.session.scalar(select(Contact).where(Contact.email == wanted.get("email")))
    if successor is not None and successor.anonymised_at is not None:
        raise ValidationError("Die Adresse der Nachfolge gehört zu einer anonymisierten Ansprechperson. "
                              "Bitte legen Sie die Nachfolge von Hand an.")
    if successor is None:
        successor = save_contact(None, {"last_name": wanted.get("last_name", ""), "first_name": wanted.get("first_name", ""),
                                        "function": wanted.get("function", ""), "email": wanted.get("email", ""),
                                        "organisation_id": contact.organisation_id})
    elif not successor.active:
        set_contact_active(successor, True)
    proposal.successor_id = successor.id
    moved_lists = _move_memberships(contact, successor)
    moved: dict[str, int] = {}
    for _receiver, counts in contact_handed_over.send(None, predecessor=contact, successor=successor):
        for key, value in (counts or {}).items():
            moved[key] = moved.get(key, 0) + value
    audit("kontakt.uebergeben", contact, nachfolge_id=successor.id, verteiler=moved_lists, **moved)
    set_contact_active(contact, False)
    return Accepted(successor, moved_lists, moved)


def _move_memberships(predecessor: Contact, successor: Contact) -> int:
    """Static memberships go to the successor (saved filters find whoever matches them anyway)."""
    ids = set(db.session.scalars(select(verteiler_members.c.verteiler_id).where(verteiler_members.c.contact_id == predecessor.id)))
    if not ids:
        return 0
    held = set(db.session.scalars(select(verteiler_members.c.verteiler_id).where(verteiler_members.c.contact_id == successor.id)))
    for verteiler_id in sorted(ids - held):
        db.session.execute(insert(verteiler_members).values(verteiler_id=verteiler_id, contact_id=successor.id))
    db.session.execute(delete(verteiler_members).where(verteiler_members.c.contact_id == predecessor.id))
    db.session.flush()
    for verteiler in db.session.scalars(select(Verteiler).where(Verteiler.id.in_(ids))):
        db.session.expire(verteiler, ["members"])
    return len(ids)
