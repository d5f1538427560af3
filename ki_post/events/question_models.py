"""An event's own questions (workshop choice, accessibility needs …) and their options.

The answers live on the invitation (``Invitation.answers``, keyed by the question's id as text): see
``events/questions.py``.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db_types import UTCDateTime, utcnow
from ..extensions import db
from ..states import LabelledEnum, state_column


class QuestionKind(LabelledEnum):
    TEXT = "text", "Freitext"
    JANEIN = "janein", "Ja/Nein"
    EINFACH = "einfachauswahl", "Auswahl (eine Möglichkeit)"
    MEHRFACH = "mehrfachauswahl", "Auswahl (mehrere Möglichkeiten)"


QuestionKind.CHOICE = frozenset({QuestionKind.EINFACH, QuestionKind.MEHRFACH})


class Question(db.Model):
    __tablename__ = "event_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[QuestionKind] = mapped_column(state_column(QuestionKind))
    label: Mapped[str] = mapped_column(String(300))
    help_text: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    options: Mapped[list[QuestionOption]] = relationship(back_populates="question", cascade="all, delete-orphan",
                                                         order_by="QuestionOption.position")

    @property
    def field(self) -> str:
        """The name of its form field (and of a ``ValidationError`` about it)."""
        return f"frage-{self.id}"

    @property
    def kind_label(self) -> str:
        return QuestionKind.label_of(self.kind)


class QuestionOption(db.Model):
    __tablename__ = "event_question_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("event_questions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(String(200))
    # Seats for persons (the invited and their companions) who accepted and chose it; None = unlimited.
    # Only for single-choice questions.
    capacity: Mapped[int | None] = mapped_column(Integer)

    question: Mapped[Question] = relationship(back_populates="options")
