"""List pages cost a fixed number of queries, however many rows they show (no N+1)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ki_post.events import services as events
from ki_post.extensions import db
from ki_post.outbox.services import create_mailing, enqueue


def _fill(rounds: int) -> None:
    """``rounds`` more mailings with messages, events with invitations (the demo Verteiler is loaded)."""
    from ki_post.recipients.models import Contact

    contacts = db.session.query(Contact).limit(5).all()
    for number in range(rounds):
        mailing = create_mailing("rundschreiben", f"Rundschreiben {number}")
        for contact in contacts:
            enqueue(mailing, to_email=contact.email, to_name=contact.full_name, contact_id=contact.id,
                    subject="Betreff", text="Text\n")
        start = datetime.now(timezone.utc) + timedelta(days=30 + number)
        event = events.create_event(events.EventData(title=f"Fachtag {number}", start=start, end=start + timedelta(hours=2)))
        events.add_invitations(event, contacts)
    db.session.commit()


@pytest.mark.parametrize("path", ["/", "/verteiler/", "/verteiler/kommunen", "/verteiler/listen", "/postausgang/",
                                  "/veranstaltungen/", "/rundschreiben/"])
def test_list_pages_do_not_query_per_row(staff_client, demo, count_queries, path):
    _fill(2)
    assert staff_client.get(path).status_code == 200  # warm-up: lazy setup (templates, session)
    with count_queries() as few:
        assert staff_client.get(path).status_code == 200
    _fill(8)
    with count_queries() as many:
        assert staff_client.get(path).status_code == 200
    assert len(many) == len(few), (path, len(few), len(many))
