"""At a glance: the answers bar and seats gauge of an event, running mailings and next events on the start page.

The charts are server-rendered SVG: checked here as markup (numbers, widths, accessible name, legend),
in tests/e2e/test_glance.py in the browser with axe.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser

from hypothesis import given, strategies as st

from ki_post.core import charts
from ki_post.events import services as events
from ki_post.extensions import db
from ki_post.outbox.services import create_mailing, enqueue, start_mailing


class _Charts(HTMLParser):
    """The role=img SVGs (accessible name) and the rects with data-teil inside each figure."""

    def __init__(self):
        super().__init__()
        self.figures: dict[str, dict] = {}
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure" and "chart" in (attrs.get("class") or ""):
            self._current = attrs["id"]
            self.figures[self._current] = {"label": None, "rects": {}, "legend": {}}
        elif self._current and tag == "svg" and attrs.get("role") == "img":
            self.figures[self._current]["label"] = attrs.get("aria-label")
        elif self._current and tag == "rect" and "data-teil" in attrs:
            self.figures[self._current]["rects"][attrs["data-teil"]] = float(attrs["width"])

    def handle_endtag(self, tag):
        if tag == "figure":
            self._current = None


def chart_figures(html: str) -> dict[str, dict]:
    parser = _Charts()
    parser.feed(html)
    return parser.figures


def _event(title: str, days: int, capacity: int | None, contacts, answers: dict[int, tuple[str, int]]):
    start = datetime.now(timezone.utc) + timedelta(days=days)
    event = events.create_event(events.EventData(title=title, start=start, end=start + timedelta(hours=2),
                                                 capacity=capacity, companions_allowed=3))
    events.publish_event(event)
    invitations = events.add_invitations(event, contacts)
    db.session.flush()
    for index, (state, companions) in answers.items():
        events.answer(event.invitations[index], state, companions=companions, channel="telefon", notify=False)
    db.session.commit()
    return event


def test_event_page_draws_answers_and_seats_with_their_numbers(staff_client, demo):
    from ki_post.recipients.models import Contact

    contacts = db.session.query(Contact).order_by(Contact.id).limit(10).all()
    event = _event("Fachtag Integration", 30, 8, contacts,
                   {0: ("zugesagt", 2), 1: ("zugesagt", 0), 2: ("abgesagt", 0), 3: ("vorlaeufig", 0),
                    4: ("zugesagt", 3), 5: ("zugesagt", 0)})  # 3+1+4 = 8 seats: the fourth acceptance waits
    html = staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)
    figures = chart_figures(html)

    bar = figures["antworten-balken"]
    assert bar["label"] == ("Antworten (10 insgesamt): Zusage: 3, vorläufig: 1, Warteliste: 1, Absage: 1, offen: 4.")
    assert set(bar["rects"]) == {"zugesagt", "vorlaeufig", "warteliste", "abgesagt", "offen"}
    assert abs(sum(bar["rects"].values()) - charts.WIDTH) < 0.1
    assert bar["rects"]["zugesagt"] > bar["rects"]["abgesagt"]  # 3 answers take more room than 1
    # Visible legend with the numbers, beside the pattern (not colour alone).
    assert re.search(r"Zusage: <strong>3</strong>", html) and re.search(r"offen: <strong>4</strong>", html)
    assert 'id="muster-streifen"' in html and html.count("<pattern ") == 7  # patterns defined once per page

    gauge = figures["plaetze-anzeige"]
    assert gauge["label"] == "Plätze: 8 von 8 Plätzen belegt (davon 5 Begleitpersonen), 0 frei (100 %)."
    assert gauge["rects"] == {"invitees": 225.0, "companions": 375.0}  # 3 of 8 and 5 of 8 of 600


def test_event_without_capacity_says_so_without_a_gauge(staff_client, demo):
    from ki_post.recipients.models import Contact

    contacts = db.session.query(Contact).order_by(Contact.id).limit(2).all()
    event = _event("Austausch", 10, None, contacts, {0: ("zugesagt", 1)})
    figures = chart_figures(staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True))
    assert figures["plaetze-anzeige"]["label"] is None
    assert "2 Plätze belegt (davon 1 Begleitpersonen), ohne Platzbegrenzung." in \
        staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)


def test_start_page_shows_running_mailings_and_next_events_at_a_glance(staff_client, demo):
    from ki_post.outbox.models import OutboxMessage
    from ki_post.recipients.models import Contact

    contacts = db.session.query(Contact).order_by(Contact.id).limit(6).all()
    running = create_mailing("rundschreiben", "Rundschreiben Fördermittel")
    draft = create_mailing("rundschreiben", "Noch ein Entwurf")
    for mailing in (running, draft):
        for contact in contacts:
            enqueue(mailing, to_email=contact.email, to_name=contact.full_name, contact_id=contact.id,
                    subject="Betreff", text="Text\n")
    start_mailing(running)
    messages = db.session.query(OutboxMessage).filter_by(mailing_id=running.id).order_by(OutboxMessage.id).all()
    for message, state in zip(messages, ("gesendet", "gesendet", "gesendet", "fehlgeschlagen", "unklar")):
        message.state = state
    db.session.commit()
    soon = _event("Fachtag bald", 5, 20, contacts, {0: ("zugesagt", 1), 1: ("abgesagt", 0)})
    _event("Fachtag später", 40, None, contacts[:2], {})

    html = staff_client.get("/").get_data(as_text=True)
    section = html[html.index('id="laufende-aussendungen"'):html.index('id="verteiler-titel"')]
    assert "Rundschreiben Fördermittel" in section and "Noch ein Entwurf" not in section
    assert "3 von 6 gesendet" in section and "1 fehlgeschlagen, 1 unklar" in section
    figures = chart_figures(html)
    bar = figures[f"aussendung-{running.id}"]
    assert bar["label"] == "Nachrichten der Aussendung „Rundschreiben Fördermittel“ (6 insgesamt): " \
                           "gesendet: 3, fehlgeschlagen: 1, unklar: 1, wartend: 1."
    assert set(bar["rects"]) == {"gesendet", "fehlgeschlagen", "unklar", "wartend"}

    events_part = html[html.index('id="naechste-veranstaltungen"'):]
    assert events_part.index("Fachtag bald") < events_part.index("Fachtag später")
    assert figures[f"veranstaltung-{soon.id}"]["label"].startswith("Antworten zu „Fachtag bald“ (6 insgesamt): Zusage: 1,")
    assert "Plätze: 2 von 20 Plätzen belegt (davon 1 Begleitpersonen), 18 frei (10 %)." in events_part


def test_start_page_without_running_mailings_says_so(staff_client):
    assert "Zurzeit wird nichts gesendet." in staff_client.get("/").get_data(as_text=True)


@given(st.dictionaries(st.sampled_from(["zugesagt", "vorlaeufig", "warteliste", "abgesagt", "offen"]),
                       st.integers(min_value=0, max_value=100_000)))
def test_stacked_parts_fill_the_bar_in_order_and_never_hide_a_non_empty_part(counts):
    parts = charts.answer_parts(counts)
    assert [p.key for p in parts] == ["zugesagt", "vorlaeufig", "warteliste", "abgesagt", "offen"]
    shown = [p for p in parts if p.count]
    for part in parts:
        assert (part.width >= charts.MIN_PART - 0.01) if part.count else part.width == 0
    if shown:
        assert abs(sum(p.width for p in parts) - charts.WIDTH) < 0.1
        for before, after in zip(shown, shown[1:]):
            assert abs(before.x + before.width - after.x) < 0.02  # no gap, no overlap
        # More people, never a narrower part.
        for a in shown:
            for b in shown:
                if a.count > b.count:
                    assert a.width >= b.width
