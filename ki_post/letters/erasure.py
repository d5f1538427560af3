"""The letters' part of erasing a person (``recipients.signals.contact_erasing``).

A letter as it went out is an official act of the ministry and belongs to its files (records duty,
Art. 17 (3) b DSGVO): the archived copy and its bytes stay unchanged, so the archive still proves
what was sent. From the erasure on, that copy is marked and only the administration may open it;
other roles see that a letter exists, not to whom it went (README, Datenschutz).

The lists of recipients a run or job left out (``problems``: name, Kommune, address, reason) are no
such record: the person's entries there lose name, address and reason.
"""
from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from ..db_types import utcnow
from ..extensions import db
from ..recipients.addresses import address_forms
from ..recipients.models import Contact
from ..recipients.signals import contact_erasing
from .models import ArchivedLetter, LetterJob, LetterRun

ERASED_PROBLEM = {"name": "(gelöscht)", "organisation": "", "email": "", "reason": "Die Ansprechperson wurde anonymisiert oder gelöscht."}


def person_letters(contact: Contact) -> ColumnElement[bool]:
    """Archived letters to this person: by contact id, and copies that name only their address."""
    own = ArchivedLetter.contact_id == contact.id
    forms = sorted(address_forms([contact.email]))
    if not forms:
        return own
    return or_(own, and_(ArchivedLetter.contact_id.is_(None), func.lower(ArchivedLetter.recipient).in_(forms)))


def restrict_letters(contact: Contact) -> int:
    """Mark the person's archived letters as kept for the records only; returns how many. Flushes."""
    result = db.session.execute(
        update(ArchivedLetter).where(person_letters(contact), ArchivedLetter.addressee_erased_at.is_(None))
        .values(addressee_erased_at=utcnow()),
        execution_options={"synchronize_session": "fetch"},
    )
    db.session.flush()
    return result.rowcount or 0


def may_open(letter: ArchivedLetter) -> bool:
    """Whether the signed-in user may see the addressee and the content of an archived letter."""
    return letter.addressee_erased_at is None or (current_user.is_authenticated and current_user.has_role("admin"))


def restricted_count(letters: list[ArchivedLetter]) -> int:
    return sum(1 for letter in letters if not may_open(letter))


def scrub_problems(contact: Contact) -> int:
    """The person's entries in the left-out lists of runs and jobs, without what names them; returns how
    many entries. Flushes."""
    forms = address_forms([contact.email])
    count = 0
    for model in (LetterRun, LetterJob):
        for row in db.session.scalars(select(model).where(model.problems.is_not(None))):
            kept = [dict(problem, **ERASED_PROBLEM, contact_id=None)
                    if problem.get("contact_id") == contact.id or (problem.get("email") or "").lower() in forms else problem
                    for problem in row.problems or []]
            changed = sum(1 for before, after in zip(row.problems or [], kept) if before is not after)
            if changed:
                row.problems = kept
                count += changed
    db.session.flush()
    return count


def _on_contact_erasing(sender: Any, *, contact: Contact, **_: Any) -> dict[str, int]:
    return {"briefe_gesperrt": restrict_letters(contact), "auslassungen": scrub_problems(contact)}


def connect() -> None:
    """Register the receiver (once per process; connecting again changes nothing)."""
    contact_erasing.connect(_on_contact_erasing)

