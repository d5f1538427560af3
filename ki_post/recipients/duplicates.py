"""Likely duplicates: the same person entered twice under two spellings.

Two contacts are likely the same person when their addresses are the same in any spelling (case,
Unicode or IDNA domain), or when name and Kommune agree once case, umlaut spelling ("Müller" =
"Mueller" = "MÜLLER", "ß" = "ss"), accents, academic titles and extra blanks are ignored.
The check only warns; the secretariat decides (confirm, skip, or merge afterwards).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import idna

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from .addresses import address_forms
from .models import Contact, Organisation

# Written both ways in German names; folded to the ASCII spelling so both sides compare equal.
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "œ": "oe", "ø": "oe"})
# Academic and courtesy words that are not part of a name (compared after folding, punctuation gone).
# Only words that are never a name on their own ("Phil" and "M." are).
TITLE_WORDS = frozenset({"dr", "prof", "professor", "professorin", "habil", "dipl", "ing", "rer", "frau", "herr", "herrn"})
_NOT_WORD = re.compile(r"[^\w]+|_")


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold().translate(_UMLAUTS)
    # Accents: decompose and drop the marks ("é" → "e"); letters without a decomposition stay.
    text = "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))
    words = [word for word in _NOT_WORD.sub(" ", text).split() if word not in TITLE_WORDS]
    return " ".join(words)


@lru_cache(maxsize=65536)  # an import compares thousands of rows whose Kommunen repeat
def normalise_name(text: str | None) -> str:
    """The comparison key of a name or Kommune: lower-case ASCII spelling of umlauts, no accents, no
    titles, single blanks. Idempotent (folding a folded text changes nothing)."""
    folded = _fold_once(text or "")
    # Some characters only reach their final form after a second pass (e.g. a compatibility letter that
    # decomposes into one that casefolds again); stop at the fixed point.
    for _ in range(4):
        again = _fold_once(folded)
        if again == folded:
            break
        folded = again
    return folded


def person_key(first_name: str | None, last_name: str | None, organisation: str | None) -> tuple[str, str] | None:
    """(name, Kommune) key; None without a last name (nothing to compare)."""
    last = normalise_name(last_name)
    if not last:
        return None
    return " ".join(part for part in (normalise_name(first_name), last) if part), normalise_name(organisation)


@dataclass(frozen=True)
class Match:
    """An existing contact a new entry likely duplicates, and why."""

    contact_id: int | None  # None: an earlier row of the same import file
    name: str
    organisation: str
    reason: str  # "email" or "name"
    row: int | None = None

    def describe(self) -> str:
        where = f" ({self.organisation})" if self.organisation else ""
        return f"„{self.name}“{where}" + (f" aus Zeile {self.row}" if self.row else "")


def _match(contact: Contact, reason: str) -> Match:
    organisation = contact.organisation.name if contact.organisation else ""
    return Match(contact.id, contact.full_name or contact.email, organisation, reason)


class Index:
    """Every stored contact by name key, for checking many rows (an import) with one query."""

    def __init__(self) -> None:
        statement = (select(Contact).where(Contact.anonymised_at.is_(None))
                     .options(selectinload(Contact.organisation)).order_by(Contact.id))
        self._by_key: dict[tuple[str, str], Contact] = {}
        self._by_email: dict[str, Contact] = {}
        for contact in db.session.scalars(statement):
            key = person_key(contact.first_name, contact.last_name,
                             contact.organisation.name if contact.organisation else "")
            if key is not None:
                self._by_key.setdefault(key, contact)
            self._by_email.setdefault(_canonical(contact.email), contact)

    def find(self, *, email: str, first_name: str, last_name: str, organisation: str,
             exclude_id: int | None = None) -> Match | None:
        found = self._by_email.get(_canonical(email))
        if found is not None and found.id != exclude_id and found.email != email:
            return _match(found, "email")
        key = person_key(first_name, last_name, organisation)
        found = self._by_key.get(key) if key else None
        if found is not None and found.id != exclude_id and found.email != email:
            return _match(found, "name")
        return None


@lru_cache(maxsize=65536)
def _canonical(address: str) -> str:
    """One spelling per address for the import's index: lower case, domain in Unicode (``xn--`` decoded).
    Cheaper than every spelling (``address_forms``) for thousands of rows."""
    local, _, domain = (address or "").strip().lower().rpartition("@")
    try:
        domain = idna.decode(domain)
    except (UnicodeError, idna.IDNAError):
        pass  # not IDNA-decodable: compared as written
    return f"{local}@{domain}"


def find_duplicate(*, email: str, first_name: str, last_name: str, organisation_id: int | None,
                   exclude_id: int | None = None) -> Match | None:
    """The stored contact a single entry (contact form) likely duplicates, if any.

    Reads only the contacts with the same address forms or the same folded last name's Kommune, so a
    form save costs two small queries, not a scan of the Verteiler."""
    forms = address_forms([email])  # the same spellings erasure searches for
    base = select(Contact).where(Contact.anonymised_at.is_(None)).options(selectinload(Contact.organisation))
    if exclude_id is not None:
        base = base.where(Contact.id != exclude_id)
    if forms:
        for contact in db.session.scalars(base.where(func.lower(Contact.email).in_(sorted(forms))).order_by(Contact.id)):
            if contact.email != email:
                return _match(contact, "email")
    organisation = db.session.get(Organisation, organisation_id) if organisation_id else None
    key = person_key(first_name, last_name, organisation.name if organisation else "")
    if key is None:
        return None
    same_place = base.where(Contact.organisation_id == organisation.id) if organisation else base.where(Contact.organisation_id.is_(None))
    for contact in db.session.scalars(same_place.order_by(Contact.id)):
        if person_key(contact.first_name, contact.last_name, organisation.name if organisation else "") == key:
            return _match(contact, "name")
    return None
