"""Names and pages of the objects the Protokoll talks about, one query per table and page of entries.

Registered with auth.audit_text by the web shell, the one layer that knows every package.
"""
from __future__ import annotations

from collections.abc import Iterable

from flask import url_for
from sqlalchemy import select

from ..auth.audit_text import Named, register_namer
from ..extensions import db


def _rows(model, ids: Iterable[int]):
    return db.session.scalars(select(model).where(model.id.in_(list(ids)))).all()


def _users(ids):
    from ..auth.models import User

    return {u.id: Named(u.name or u.email, url_for("auth.user_edit", user_id=u.id)) for u in _rows(User, ids)}


def _events(ids):
    from ..events.models import Event

    return {e.id: Named(e.title, url_for("events.detail", event_id=e.id)) for e in _rows(Event, ids)}


def _invitations(ids):
    from ..events.models import Invitation

    return {i.id: Named(i.name or "eine Person ohne Namen", None, i.event_id) for i in _rows(Invitation, ids)}


def _calendar_replies(ids):
    from ..events.models import CalendarReply

    return {r.id: Named(r.attendee_name or r.attendee_email or "unbekannt", url_for("events.replies"), r.event_id)
            for r in _rows(CalendarReply, ids)}


def _mailings(ids):
    from ..outbox.models import Mailing

    return {m.id: Named(m.title, url_for("outbox.mailing", mailing_id=m.id)) for m in _rows(Mailing, ids)}


def _messages(ids):
    from ..outbox.models import OutboxMessage

    return {m.id: Named(f"an {m.to_name or m.to_email}", url_for("outbox.message", message_id=m.id))
            for m in _rows(OutboxMessage, ids)}


def _contacts(ids):
    from ..recipients.models import Contact

    return {c.id: Named(c.full_name or c.email or "anonymisiert", url_for("recipients.contact", contact_id=c.id))
            for c in _rows(Contact, ids)}


def _organisations(ids):
    from ..recipients.models import Organisation

    return {o.id: Named(o.name, url_for("recipients.organisation_edit", organisation_id=o.id)) for o in _rows(Organisation, ids)}


def _verteiler(ids):
    from ..recipients.models import Verteiler

    return {v.id: Named(v.name, url_for("recipients.list_detail", verteiler_id=v.id)) for v in _rows(Verteiler, ids)}


def _template_versions(ids):
    from ..letters.models import LetterTemplateVersion

    return {v.id: Named(f"{v.template.name} (Version {v.number})", url_for("letters.index")) for v in _rows(LetterTemplateVersion, ids)}


def _runs(ids):
    from ..letters.models import LetterRun

    return {r.id: Named(f"Nr. {r.id}", url_for("letters.run_detail", run_id=r.id)) for r in _rows(LetterRun, ids)}


def _proposals(ids):
    from ..recipients.models import ContactProposal

    return {p.id: Named(f"{p.kind_label} zu {p.contact.full_name or p.contact.email}", url_for("selfservice.review"))
            for p in _rows(ContactProposal, ids)}


NAMERS = {
    "users": _users, "events": _events, "invitations": _invitations, "calendar_replies": _calendar_replies,
    "outbox_mailings": _mailings, "outbox_messages": _messages, "contacts": _contacts, "organisations": _organisations,
    "verteiler": _verteiler, "letter_template_versions": _template_versions, "letter_runs": _runs,
    "contact_proposals": _proposals,
}


def register() -> None:
    for table, namer in NAMERS.items():
        register_namer(table, namer)
