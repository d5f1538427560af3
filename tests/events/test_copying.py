"""Copying an event (events/copying.py): settings and questions along, new dates, nothing of what happened."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from ki_post.auth.models import AuditEntry
from ki_post.errors import ValidationError
from ki_post.events import copying, services
from ki_post.events.models import Event, Invitation
from ki_post.events.questions import OptionData, QuestionData, add_question, questions_of
from ki_post.extensions import db
from ki_post.formatting import BERLIN

SETTINGS = ("title", "description", "place_name", "place_address", "room", "organizer_email", "organizer_name",
            "capacity", "companions_allowed", "ask_remarks", "ask_dietary", "remind_open_days", "remind_participants_days")


def _source(make_event, make_contacts) -> Event:
    start = datetime(2037, 2, 8, 10, tzinfo=timezone.utc)
    event = make_event(title="Feierstunde", description="Mit Empfang.", start=start, end=start + timedelta(hours=3),
                       deadline=start - timedelta(days=7), capacity=80, companions_allowed=1, ask_remarks=False,
                       ask_dietary=True)
    event.organizer_email, event.organizer_name = "feier@ministerium.example", "Referat 3"
    event.remind_open_days, event.remind_participants_days = 3, 1
    services.invite(event, contact_ids=[c.id for c in make_contacts(2)], start=True)
    services.answer(event.invitations[0], "zugesagt", channel="telefon")
    services.cancel_event(event, "Verlegt")
    db.session.commit()
    return event


def test_copy_takes_settings_and_new_dates_but_nothing_that_happened(app, make_event, make_contacts):
    source = _source(make_event, make_contacts)
    source.state = "entwurf"  # questions are defined before the event is cancelled
    add_question(source, QuestionData("Workshop am Nachmittag", "einfachauswahl", required=True,
                                      options=[OptionData("Sprache", 20), OptionData("Arbeit", None)]))
    add_question(source, QuestionData("Barrierefreier Zugang nötig?", "janein", help_text="Rampe, Aufzug"))
    source.state = "abgesagt"
    db.session.commit()
    target = copying.copy_event(source, "2038-02-10T11:00", "2038-02-10T14:00")
    db.session.commit()
    copied = [(q.label, q.kind, q.required, q.help_text, [(o.label, o.capacity) for o in q.options])
              for q in questions_of(target.id)]
    assert copied == [("Workshop am Nachmittag", "einfachauswahl", True, "", [("Sprache", 20), ("Arbeit", None)]),
                      ("Barrierefreier Zugang nötig?", "janein", False, "Rampe, Aufzug", [])]
    assert {q.event_id for q in questions_of(source.id)} == {source.id}  # the source keeps its own
    for name in SETTINGS:
        assert getattr(target, name) == getattr(source, name), name
    assert target.start_at == datetime(2038, 2, 10, 10, tzinfo=timezone.utc)
    assert target.end_at == datetime(2038, 2, 10, 13, tzinfo=timezone.utc)
    assert target.deadline == source.deadline + (target.start_at - source.start_at)
    assert target.state == "entwurf" and target.sequence == 0 and target.uid != source.uid
    assert target.cancel_reason == "" and target.cancelled_at is None
    assert db.session.scalar(select(func.count(Invitation.id)).where(Invitation.event_id == target.id)) == 0
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "veranstaltung.kopiert")).one()
    assert entry.object_id == target.id and entry.details["quelle_id"] == source.id


def test_copy_refuses_bad_dates_and_changes_nothing(app, make_event, make_contacts):
    source = _source(make_event, make_contacts)
    with pytest.raises(ValidationError, match="Das Ende muss nach dem Beginn liegen"):
        copying.copy_event(source, "2038-02-10T11:00", "2038-02-10T10:00")
    db.session.rollback()
    with pytest.raises(ValidationError, match="in der Zukunft"):
        copying.copy_event(source, "2020-02-10T11:00", "2020-02-10T12:00")
    db.session.rollback()
    assert db.session.scalar(select(func.count(Event.id))) == 1


def test_copy_page_prefills_one_year_later_and_leads_to_the_copy(staff_client, make_event, make_contacts):
    source = _source(make_event, make_contacts)
    url = f"/veranstaltungen/{source.id}/kopieren"
    assert f'href="{url}"' in staff_client.get(f"/veranstaltungen/{source.id}").get_data(as_text=True)
    page = staff_client.get(url).get_data(as_text=True)
    assert 'value="2038-02-08"' in page and 'value="11:00"' in page and 'value="14:00"' in page
    assert 'value="Feierstunde"' in page
    bad = staff_client.submit(url, {"title": "Feierstunde", "start_date": "2038-02-08", "start_time": "11:00",
                                    "end_date": "2038-02-08", "end_time": "09:00"})
    assert bad.status_code == 422 and "Das Ende muss nach dem Beginn liegen" in bad.get_data(as_text=True)
    untitled = staff_client.submit(url, {"title": "", "start_date": "2038-02-08", "start_time": "11:00",
                                         "end_date": "2038-02-08", "end_time": "14:00"})
    assert untitled.status_code == 422 and "Bitte geben Sie einen Titel an." in untitled.get_data(as_text=True)
    done = staff_client.submit(url, {"title": "Feierstunde (Wiederholung)", "start_date": "2038-02-08",
                                     "start_time": "11:00", "end_date": "2038-02-08", "end_time": "14:00"})
    assert done.status_code == 302
    new_id = int(re.search(r"/veranstaltungen/(\d+)$", done.headers["Location"]).group(1))
    assert new_id != source.id
    copy = db.session.get(Event, new_id)
    assert copy.title == "Feierstunde (Wiederholung)" and copy.start_at.astimezone(BERLIN).year == 2038
    assert copy.state == "entwurf"
    assert "als Entwurf kopiert" in staff_client.get(done.headers["Location"]).get_data(as_text=True)


def test_cli_copy_prints_the_new_id_last(runner, make_event, make_contacts):
    source = _source(make_event, make_contacts)
    result = runner.invoke(args=["events", "copy", str(source.id), "--start", "2038-02-10T11:00", "--end", "2038-02-10T14:00"])
    assert result.exit_code == 0, result.output
    new_id = int(result.output.strip().splitlines()[-1])
    copy = db.session.get(Event, new_id)
    assert copy.title == "Feierstunde" and copy.remind_open_days == 3 and not copy.invitations
    wrong = runner.invoke(args=["events", "copy", str(source.id), "--start", "morgen", "--end", "2038-02-10T14:00"])
    assert wrong.exit_code == 1 and "Der Beginn ist kein gültiger Zeitpunkt" in wrong.output


def test_a_year_in_the_title_moves_with_the_copy(app, make_event, make_contacts):
    source = _source(make_event, make_contacts)
    source.title = "Fachtag 2037: Vielfalt 20370 leben"
    assert copying.next_title(source, datetime(2038, 3, 1, 10, tzinfo=timezone.utc)) == "Fachtag 2038: Vielfalt 20370 leben"
    assert copying.next_title(source, datetime(2037, 9, 1, 10, tzinfo=timezone.utc)) == source.title
    copy = copying.copy_event(source, "2038-02-10T11:00", "2038-02-10T14:00")
    assert copy.title == "Fachtag 2038: Vielfalt 20370 leben"
    named = copying.copy_event(source, "2038-02-10T11:00", "2038-02-10T14:00", title="Fachtag Nord")
    assert named.title == "Fachtag Nord"
