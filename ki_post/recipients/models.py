from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlite3

from sqlalchemy import JSON, Column, ForeignKey, LargeBinary, String, Table, Text, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, utcnow
from ..extensions import db
from ..states import LabelledEnum, state_column

# Stored value → label. Stored values are stable identifiers; labels are what imports and the UI use.
ORGANISATION_KINDS = {
    "kreis": "Kreis",
    "kreisfreie_stadt": "kreisfreie Stadt",
    "staedteregion": "StädteRegion",
    "sonstige": "sonstige",
}
ANREDEN = {"frau": "Frau", "herr": "Herr", "": "keine Angabe"}
REGIERUNGSBEZIRKE = ("Arnsberg", "Detmold", "Düsseldorf", "Köln", "Münster")
# SQLite's lower() only folds ASCII; searching "KÖLN" must find "Köln" there as it does in PostgreSQL.
SQLITE_CASEFOLD = "ki_casefold"


@event.listens_for(Engine, "connect")
def _sqlite_casefold(dbapi_connection, connection_record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(
            SQLITE_CASEFOLD, 1, lambda value: value.casefold() if isinstance(value, str) else value, deterministic=True
        )


class Organisation(db.Model):
    """A Kommune (Kreis, kreisfreie Stadt, StädteRegion) or another body on the Verteiler."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="sonstige", index=True)
    regierungsbezirk: Mapped[str] = mapped_column(String(50), default="", index=True)
    ki_name: Mapped[str] = mapped_column(String(200), default="")
    # Official postal address: authority line(s), street or Postfach, postcode, town.
    authority: Mapped[str] = mapped_column(String(200), default="")
    street: Mapped[str] = mapped_column(String(200), default="")
    postcode: Mapped[str] = mapped_column(String(10), default="")
    town: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(back_populates="organisation")

    @property
    def kind_label(self) -> str:
        return ORGANISATION_KINDS.get(self.kind, self.kind)


verteiler_members = Table(
    "verteiler_members",
    db.metadata,
    Column("verteiler_id", ForeignKey("verteiler.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
)


class Contact(db.Model):
    """The officer responsible for an organisation's KI. Officers never log in."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    anrede: Mapped[str] = mapped_column(String(10), default="")
    academic_title: Mapped[str] = mapped_column(String(50), default="")
    office_title: Mapped[str] = mapped_column(String(100), default="")
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="", index=True)
    function: Mapped[str] = mapped_column(String(200), default="")
    # Normalised (lower-case, IDNA) so that imports upsert reliably.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str] = mapped_column(String(50), default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="SET NULL"), index=True)
    active: Mapped[bool] = mapped_column(default=True, index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    # Columns of imported files that KI-Post has no field for, kept by their header.
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by a permanent bounce of a message to the current address ("Adresse unzustellbar seit …"),
    # cleared when the address changes. The reason is the server's words.
    undeliverable_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undeliverable_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The officer said "Alles richtig" on her "Angaben prüfen" page, or a proposal of hers was accepted.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation | None] = relationship(back_populates="contacts")

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.academic_title, self.first_name, self.last_name) if part)


class Verteiler(db.Model):
    """A named mailing list: static members, a saved filter, or both (union)."""

    __tablename__ = "verteiler"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Saved filter, e.g. {"kind": "kreis", "regierungsbezirk": "Köln"}; None = static members only.
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[Contact]] = relationship(secondary=verteiler_members)


class ImportUpload(db.Model):
    """An uploaded import file between preview and apply. Deleted when applied or after a day:
    it holds personal data and is no record of its own."""

    __tablename__ = "recipient_import_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unguessable: the preview URL carries it, and only its uploader may use it.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ContactLink(db.Model):
    """A personal "Angaben prüfen" link: ``secrets.token_urlsafe(32)`` (256 random bits), valid until
    ``expires_at``. Kept like the answer link's token, so that a mail written anew carries the same link;
    a contact may hold several (an older mail's link stays valid until it expires)."""

    __tablename__ = "contact_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    contact: Mapped[Contact] = relationship()


class ProposalKind(LabelledEnum):
    KORREKTUR = "korrektur", "Korrektur"
    UEBERGABE = "uebergabe", "nicht mehr zuständig"


class ProposalState(LabelledEnum):
    OFFEN = "offen", "offen"
    UEBERNOMMEN = "uebernommen", "übernommen"
    ABGELEHNT = "abgelehnt", "abgelehnt"


class ContactProposal(db.Model):
    """What an officer proposed on her "Angaben prüfen" page; nothing changes the Verteiler until the
    secretariat accepts it. ``old``/``new`` hold the proposed fields before and after (the diff shown),
    ``successor`` the named successor of a handover (first_name, last_name, email, function)."""

    __tablename__ = "contact_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Deleted with the contact: a proposal is personal data and no record of its own.
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ProposalKind] = mapped_column(state_column(ProposalKind))
    state: Mapped[ProposalState] = mapped_column(state_column(ProposalState), default=ProposalState.OFFEN, index=True)
    old: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    new: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    successor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The contact that took over (handover accepted).
    successor_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))

    contact: Mapped[Contact] = relationship(foreign_keys=[contact_id])

    @property
    def kind_label(self) -> str:
        return ProposalKind.label_of(self.kind)

    @property
    def state_label(self) -> str:
        return ProposalState.label_of(self.state)
