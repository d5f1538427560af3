"""Demo event: the ministry's celebration of five years of the Teilhabe- und Integrationsgesetz."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..core.formatting import BERLIN
from ..extensions import db
from . import invitations, services
from .models import Event

TITLE = "Feierstunde: Fünf Jahre Teilhabe- und Integrationsgesetz"
LIST_NAME = "Alle KI-Dezernate"


def load_demo() -> dict[str, int]:
    """Idempotent: matched by title. Invitations are created but not sent (the button in the UI sends them)."""
    created = {"events": 0, "invitations": 0}
    event = db.session.scalar(select(Event).where(Event.title == TITLE))
    if event is None:
        event = services.create_event(services.EventData(
            title=TITLE,
            description=("Kleine Feierstunde im Ministerium aus Anlass von fünf Jahren Teilhabe- und Integrationsgesetz "
                         "mit den Kommunalen Integrationszentren in Nordrhein-Westfalen."),
            start=datetime(2017, 2, 8, 11, 0, tzinfo=BERLIN),
            end=datetime(2017, 2, 8, 13, 0, tzinfo=BERLIN),
            place_name="Ministerium",
            place_address="Fürstenwall 25, 40219 Düsseldorf",
            deadline=datetime(2017, 2, 1, 23, 59, tzinfo=BERLIN),
            capacity=120,
            companions_allowed=1,
            ask_dietary=True,
        ))
        event.state = "published"
        created["events"] = 1
    try:
        verteiler_id = services.verteiler_id_by_name(LIST_NAME)
    except Exception:  # demo Verteiler not loaded: the event alone is still useful
        return created
    contacts = invitations._contacts(verteiler_id, None)
    created["invitations"] = len(services.add_invitations(event, contacts))
    db.session.flush()
    return created
