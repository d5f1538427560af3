from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, utcnow
from ..extensions import db
from ..states import LabelledEnum, state_column


class LetterTemplate(db.Model):
    """A named DOCX letter template; its content lives in numbered versions."""

    __tablename__ = "letter_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Shipped with KI-Post from templates/letters/ (registered on first use).
    shipped: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[LetterTemplateVersion]] = relationship(
        back_populates="template", order_by="LetterTemplateVersion.number", cascade="all, delete-orphan")

    @property
    def latest(self) -> LetterTemplateVersion | None:
        return self.versions[-1] if self.versions else None


class LetterTemplateVersion(db.Model):
    __tablename__ = "letter_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("letter_templates.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255), default="")
    blob_key: Mapped[str] = mapped_column(String(64), info={"blob_reference": True})  # sha256 in ki_post.blobs
    size: Mapped[int] = mapped_column(default=0)
    # Upload warnings (e.g. unknown placeholders), shown with the version.
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    template: Mapped[LetterTemplate] = relationship(back_populates="versions")

    @property
    def label(self) -> str:
        return f"{self.template.name} (Version {self.number})"


class SenderProfile(db.Model):
    """The sender of circulars: letterhead, information block defaults, footer and signatories."""

    __tablename__ = "letter_sender_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    ministerium: Mapped[str] = mapped_column(String(300), default="")
    ministerium_zeile1: Mapped[str] = mapped_column(String(200), default="")
    ministerium_zeile2: Mapped[str] = mapped_column(String(200), default="")
    ruecksendeangabe: Mapped[str] = mapped_column(String(200), default="")
    dienstgebaeude: Mapped[str] = mapped_column(Text, default="")
    kommunikation: Mapped[str] = mapped_column(Text, default="")
    verkehr: Mapped[str] = mapped_column(Text, default="")
    ansprechperson: Mapped[str] = mapped_column(String(200), default="")
    # Signature of mails and of the public answer page: person, function, unit, ministry.
    funktion: Mapped[str] = mapped_column(String(200), default="", server_default="")
    organisationseinheit: Mapped[str] = mapped_column(String(200), default="", server_default="")
    telefon: Mapped[str] = mapped_column(String(50), default="")
    telefax: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    aktenzeichen: Mapped[str] = mapped_column(String(100), default="")
    # [{"name": "...", "funktion": "..."}, ...] in signing order.
    unterzeichnende: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LetterRun(db.Model):
    """One production: a template version, the letter fields, the recipients, the output kind."""

    __tablename__ = "letter_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_version_id: Mapped[int] = mapped_column(ForeignKey("letter_template_versions.id"), index=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    output: Mapped[str] = mapped_column(String(20), default="zip")
    letter_count: Mapped[int] = mapped_column(default=0)
    # Recipients left out because their letter could not be made: [{"name", "organisation", "email", "reason"}, …]
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    template_version: Mapped[LetterTemplateVersion] = relationship()
    letters: Mapped[list[ArchivedLetter]] = relationship(back_populates="run", order_by="ArchivedLetter.id")


class ArchivedLetter(db.Model):
    """A letter exactly as it went out (public-records duty): bytes in the blob store by sha256."""

    __tablename__ = "archived_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("letter_runs.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    # Copied at production time: the archive stays readable when the contact changes or is deleted.
    recipient: Mapped[str] = mapped_column(String(300), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    template_version_id: Mapped[int] = mapped_column(ForeignKey("letter_template_versions.id"))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True, info={"blob_reference": True})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the addressee was anonymised or deleted: the letter is an official act and stays in the
    # archive (records duty), but from then on only the administration may open it (letters/erasure.py).
    addressee_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    run: Mapped[LetterRun] = relationship(back_populates="letters")
    template_version: Mapped[LetterTemplateVersion] = relationship()


class JobState(LabelledEnum):
    WARTEND = "wartend", "wartet"
    LAEUFT = "laeuft", "läuft"
    FERTIG = "fertig", "fertig"
    FEHLGESCHLAGEN = "fehlgeschlagen", "abgebrochen"


JobState.OPEN = frozenset({JobState.WARTEND, JobState.LAEUFT})  # type: ignore[attr-defined]


class JobKind(LabelledEnum):
    PRODUCE = "briefe", "Briefe erstellen"
    MAILING = "aussendung", "Aussendung vorbereiten"


class LetterJob(db.Model):
    """Letters made outside the request: the database is the queue, the worker loop runs it
    (``letters.jobs``). ``input_hash`` finds the same request again (a second click, a reload)."""

    __tablename__ = "letter_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[JobKind] = mapped_column(state_column(JobKind))
    # Template version, fields, contact ids in order, output or attachment format, confirmations.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    input_hash: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[JobState] = mapped_column(state_column(JobState), default=JobState.WARTEND, index=True)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    phase: Mapped[str] = mapped_column(String(200), default="")
    # The finished file (a ZIP, DOCX or PDF) in the blob store: every download serves these bytes.
    result_blob: Mapped[str | None] = mapped_column(String(64), info={"blob_reference": True})
    result_filename: Mapped[str] = mapped_column(String(255), default="")
    result_mimetype: Mapped[str] = mapped_column(String(100), default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("letter_runs.id", ondelete="SET NULL"))
    mailing_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_mailings.id", ondelete="SET NULL"))
    # Recipients left out: [{"name", "organisation", "email", "reason"}, …]
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    run: Mapped[LetterRun | None] = relationship()

    @property
    def percent(self) -> int:
        if self.state == JobState.FERTIG:
            return 100
        return min(99, self.done * 100 // self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state not in JobState.OPEN  # type: ignore[attr-defined]
