"""Picking the fixed members of a Verteiler from a list: the contacts a search finds, and the chosen ones."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from .models import Contact
from .services import contacts_query

MAX_MATCHES = 5000  # "alle Ergebnisse" of a broad search: more than every contact of the 53 Kommunen


def candidates(search: str) -> list[Contact]:
    """Active contacts whose name, e-mail, function or Kommune contains ``search``, in list order."""
    return list(db.session.scalars(contacts_query({"q": search, "active": True}).limit(MAX_MATCHES)))


def by_ids(ids: Sequence[int]) -> list[Contact]:
    """The chosen contacts (inactive ones too: they stay members), ordered like the contact list."""
    if not ids:
        return []
    query = select(Contact).where(Contact.id.in_(list(ids))).options(selectinload(Contact.organisation))
    return sorted(db.session.scalars(query), key=lambda c: ((c.organisation.name if c.organisation else "~"),
                                                           c.last_name or "", c.first_name or "", c.id))
