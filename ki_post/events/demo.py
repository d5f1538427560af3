"""Demo event: the ministry's celebration of five years of the Teilhabe- und Integrationsgesetz."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from ..formatting import BERLIN
from ..extensions import db
from . import invitations, questions, services
from .models import Event, EventState

TITLE = "Feierstunde: Fünf Jahre Teilhabe- und Integrationsgesetz"
LIST_NAME = "Alle KI-Dezernate"


def demo_day(today: date) -> date:
    """A Wednesday six to seven weeks ahead: a newcomer can invite, answer through the link and remind
    (an event in the past refuses all of that)."""
    day = today + timedelta(days=42)
    return day + timedelta(days=(2 - day.weekday()) % 7)


def load_demo() -> dict[str, int]:
    """Idempotent: matched by title. Invitations are created but not sent (the button in the UI sends them)."""
    created = {"events": 0, "invitations": 0}
    event = db.session.scalar(select(Event).where(Event.title == TITLE))
    if event is None:
        day = demo_day(datetime.now(BERLIN).date())
        event = services.create_event(services.EventData(
            title=TITLE,
            description=("Kleine Feierstunde im Ministerium aus Anlass von fünf Jahren Teilhabe- und Integrationsgesetz "
                         "mit den Kommunalen Integrationszentren in Nordrhein-Westfalen."),
            start=datetime.combine(day, time(11, 0), tzinfo=BERLIN),
            end=datetime.combine(day, time(13, 0), tzinfo=BERLIN),
            place_name="Ministerium",
            place_address="Fürstenwall 25, 40219 Düsseldorf",
            deadline=datetime.combine(day - timedelta(days=7), time(23, 59), tzinfo=BERLIN),
            capacity=120,
            companions_allowed=1,
            ask_dietary=True,
        ))
        event.state = EventState.VEROEFFENTLICHT
        created["events"] = 1
        _demo_questions(event)
    try:
        verteiler_id = services.verteiler_id_by_name(LIST_NAME)
    except Exception:  # demo Verteiler not loaded: the event alone is still useful
        return created
    contacts = invitations._contacts(verteiler_id, None)
    created["invitations"] = len(services.add_invitations(event, contacts))
    db.session.flush()
    return created


def _demo_questions(event: Event) -> None:
    """Two questions of the event's own: a tour with limited places and the need for step-free access."""
    db.session.flush()
    questions.add_question(event, questions.QuestionData(
        "Möchten Sie im Anschluss an einer Führung durch das Haus teilnehmen?", "einfachauswahl", required=True,
        help_text="Je Führung gibt es 25 Plätze.",
        options=[questions.OptionData("Führung um 13:15 Uhr", 25), questions.OptionData("Führung um 14:00 Uhr", 25),
                 questions.OptionData("Keine Führung")]))
    questions.add_question(event, questions.QuestionData("Benötigen Sie einen barrierefreien Zugang?", "janein"))
