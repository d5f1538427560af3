"""Findings of a first user on the answer page and the question pages (both databases, real aiosmtpd):
a changed workshop is a change and is confirmed anew, the confirmation lists the answers, companions
take option places (said where it matters), the question form refuses what it used to drop, counts in
sentences are grammatical."""
from __future__ import annotations

import itertools
import re

import pytest
from sqlalchemy import select

from ki_post.events import mails as event_mails, questions, services
from ki_post.events.attendance import QR_FILENAME
from ki_post.events.models import Invitation
from ki_post.events.question_models import Question
from ki_post.events.questions import OptionData, QuestionData
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxAttachment, OutboxMessage
from ki_post.outbox.worker import Worker
from ki_post.recipients.models import Contact
from tests.events.conftest import future
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401  (fixtures)

WORKSHOP = "Welchen Workshop besuchen Sie?"
_people = itertools.count()


def fachtag(companions_allowed: int = 1, capacity: int | None = None, n: int = 1):
    """A published Fachtag with a workshop choice (A: 5 places, B, C unlimited) and a text question, n invited."""
    event = services.create_event(services.EventData(
        title="Fachtag Integration", start=future(30, 10), end=future(30, 12), place_name="Ministerium",
        companions_allowed=companions_allowed, capacity=capacity))
    contacts = [Contact(anrede="frau", first_name="Erika", last_name=f"Muster{k}", email=f"erika{k}@kreis.example")
                for k in (next(_people) for _ in range(n))]
    db.session.add_all(contacts)
    db.session.flush()
    workshop = questions.add_question(event, QuestionData(WORKSHOP, "einfachauswahl", required=True, options=[
        OptionData("Workshop A: Sprache", 5), OptionData("Workshop B: Arbeit"), OptionData("Workshop C: Wohnen")]))
    note = questions.add_question(event, QuestionData("Ihre Frage an das Podium", "text"))
    services.invite(event, contact_ids=[c.id for c in contacts], start=True)
    db.session.commit()
    return event, workshop, note


def send(app) -> None:
    db.session.commit()
    Worker(app).run(once=True)
    db.session.expire_all()


def confirmations(invitation: Invitation) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).join(Mailing).where(
        Mailing.kind == "bestaetigung", OutboxMessage.to_email == invitation.email).order_by(OutboxMessage.id)))


def waiting(invitation: Invitation) -> list[OutboxMessage]:
    return [m for m in confirmations(invitation) if m.state == "wartend"]


def plain(message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def flashed(response) -> str:
    found = re.search(r'<p class="message message-success">(.*?)</p>', response.get_data(as_text=True), re.S)
    return found.group(1) if found else ""


# --- 1 + 2: a changed question answer is a change, confirmed with the answers --------------------------------

def test_a_changed_workshop_is_confirmed_anew_with_the_answers(smtp_app, smtp):
    event, workshop, note = fachtag()
    send(smtp_app)  # the invitation went out
    invitation = event.invitations[0]
    a, b, c = (str(o.id) for o in workshop.options)
    url, client = f"/antwort/{invitation.token}", smtp_app.test_client()

    def answer(option: str, **extra):
        response = client.submit(url, {"answer": "zugesagt", "companions": "1", workshop.field: option, **extra},
                                 follow_redirects=True)
        assert response.status_code == 200, response.get_data(as_text=True)[:3000]
        db.session.expire_all()
        return flashed(response)

    assert answer(b).startswith("Vielen Dank! Ihre Zusage ist gespeichert.")
    send(smtp_app)
    [first] = smtp.messages()[1:]
    body = plain(first)
    assert "Ihre Antwort: Zusage, mit 1 Begleitperson.\n\nIhre Angaben:\n- Welchen Workshop besuchen Sie?: Workshop B: Arbeit\n\n" in body
    assert "Podium" not in body  # unanswered questions are not listed
    assert "(ausgedruckt oder auf dem Smartphone).\n\nVeranstaltung: Fachtag Integration\n" in body
    html = first.get_body(("html",)).get_content()
    assert re.search(r"<caption[^>]*>Ihre Angaben</caption>\s*<tr><th[^>]*>Welchen Workshop besuchen Sie\?</th>"
                     r"<td[^>]*>Workshop B: Arbeit</td></tr>", html)
    assert [p.get_filename() for p in first.iter_attachments()] == [QR_FILENAME]

    # The same again: unchanged, nothing new.
    assert answer(b) == "Ihre Antwort ist unverändert gespeichert; eine Bestätigung haben Sie bereits erhalten."
    assert [m.state for m in confirmations(invitation)] == ["gesendet"]

    # Only the workshop changes (B → C): "geändert", and exactly one new confirmation naming C.
    assert answer(c) == "Ihre Antwort wurde geändert und gespeichert. Sie erhalten eine neue Bestätigung per E-Mail."
    assert db.session.get(Invitation, invitation.id).answers == {str(workshop.id): int(c)}
    [current] = waiting(invitation)
    assert "- Welchen Workshop besuchen Sie?: Workshop C: Wohnen\n" in current.text and "Workshop B" not in current.text
    assert len(confirmations(invitation)) == 2

    # Changed again before it left (C → A, and a question answered): the waiting one is rewritten, not a second.
    question = "Gibt es <Untertitel>?\r\nUnd Gebärdensprache?"
    assert answer(a, **{note.field: question}).startswith("Ihre Antwort wurde geändert")
    [rewritten] = waiting(invitation)
    assert rewritten.id == current.id and rewritten.revision == 1 and len(confirmations(invitation)) == 2
    assert ("Ihre Angaben:\n- Welchen Workshop besuchen Sie?: Workshop A: Sprache\n"
            "- Ihre Frage an das Podium: Gibt es <Untertitel>?\n  Und Gebärdensprache?\n\n") in rewritten.text
    # A remark alone is a change too.
    assert answer(a, **{note.field: question, "remark": "Ich komme mit Rollstuhl"}).startswith(
        "Ihre Antwort wurde geändert")
    assert [m.id for m in waiting(invitation)] == [current.id]
    send(smtp_app)
    last = smtp.messages()[-1]
    assert "Workshop A: Sprache" in plain(last) and "Workshop C" not in plain(last)
    assert "<td>Gibt es &lt;Untertitel&gt;?<br>Und Gebärdensprache?</td>" in re.sub(
        r' style="[^"]*"', "", last.get_body(("html",)).get_content())  # escaped, one line each
    assert [p.get_filename() for p in last.iter_attachments()] == [QR_FILENAME]  # the check-in code went along
    assert [m.state for m in confirmations(invitation)] == ["gesendet", "gesendet"]


def test_declining_after_a_changed_workshop_takes_the_code_from_the_waiting_confirmation(client, app):
    event, workshop, _ = fachtag()
    invitation = event.invitations[0]
    a, b, _c = (str(o.id) for o in workshop.options)
    url = f"/antwort/{invitation.token}"
    client.submit(url, {"answer": "zugesagt", workshop.field: a})
    client.submit(url, {"answer": "zugesagt", workshop.field: b})
    db.session.expire_all()
    [confirmation] = waiting(invitation)
    assert "Workshop B: Arbeit" in confirmation.text
    assert db.session.scalars(select(OutboxAttachment.filename).where(
        OutboxAttachment.message_id == confirmation.id)).all() == [QR_FILENAME]
    client.submit(url, {"answer": "abgesagt"})
    db.session.expire_all()
    [confirmation] = waiting(invitation)
    assert "Ihre Antwort: Absage.\n\nVeranstaltung:" in confirmation.text
    assert db.session.scalars(select(OutboxAttachment.filename).where(
        OutboxAttachment.message_id == confirmation.id)).all() == []


@pytest.mark.parametrize("state", ["zugesagt", "abgesagt", "warteliste"])
def test_confirmation_text_has_a_blank_line_before_the_event_facts(app, state):
    event, _, _ = fachtag(capacity=1, n=2)
    other, invitation = sorted(event.invitations, key=lambda i: i.id)
    services.answer(other, "zugesagt")  # the one place
    services.answer(invitation, "abgesagt" if state == "abgesagt" else "zugesagt")
    if state == "zugesagt":
        services.answer(other, "abgesagt")  # invitation moves up
    assert invitation.state == state
    mail = event_mails.render("bestaetigung", event, invitation)
    assert "\n\nVeranstaltung: Fachtag Integration\n" in mail.text
    assert "\n\n\n" not in mail.text and "Ihre Angaben" not in mail.text and "Ihre Angaben" not in mail.html
    db.session.rollback()


# --- 3: companions take option places: said where it matters -------------------------------------------------

def test_hint_that_companions_take_option_places_only_where_relevant(client, staff_client):
    hint = "Begleitpersonen belegen bei der gewählten Möglichkeit ebenfalls je einen Platz."
    event, workshop, note = fachtag(companions_allowed=2)
    html = client.get(f"/antwort/{event.invitations[0].token}").get_data(as_text=True)
    assert f'<p class="hint" id="{workshop.field}-begleitung">{hint}</p>' in html
    assert f'id="{workshop.field}" tabindex="-1" class="" aria-describedby="{workshop.field}-begleitung"' in html
    assert html.count(hint) == 1  # not at the text question
    # The staff entry form on the event page says it too.
    assert hint in staff_client.get(f"/veranstaltungen/{event.id}").get_data(as_text=True)

    # No companions allowed: no hint.
    alone, _, _ = fachtag(companions_allowed=0)
    assert hint not in client.get(f"/antwort/{alone.invitations[0].token}").get_data(as_text=True)
    # Companions allowed, but no option has a limit: no hint.
    unlimited, choice, _ = fachtag(companions_allowed=2)
    for option in choice.options:
        option.capacity = None
    db.session.commit()
    assert hint not in client.get(f"/antwort/{unlimited.invitations[0].token}").get_data(as_text=True)

    # The question form, where the places are set.
    form_hint = "Begleitpersonen einer Zusage belegen bei der gewählten Möglichkeit ebenfalls je einen Platz."
    assert form_hint in staff_client.get(f"/veranstaltungen/{event.id}/fragen").get_data(as_text=True)
    assert form_hint in staff_client.get(f"/veranstaltungen/{event.id}/fragen/{workshop.id}").get_data(as_text=True)


# --- 4: the question form refuses what it used to drop ---------------------------------------------------------

NOT_A_CHOICE = "Nur Auswahlfragen haben Möglichkeiten. Bitte die Möglichkeiten leeren oder die Art „Auswahl“ wählen."


@pytest.mark.parametrize("kind", ["text", "janein"])
def test_options_for_a_question_without_choice_are_refused(staff_client, kind):
    event, workshop, _ = fachtag()
    page = f"/veranstaltungen/{event.id}/fragen"
    refused = staff_client.submit(page, {"label": "Anreise?", "kind": kind, "option_label-0": "Bahn",
                                         "option_capacity-0": "", "option_label-1": "", "option_capacity-1": ""})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert f'<p class="error-text" id="options-fehler">{NOT_A_CHOICE}</p>' in html
    assert 'value="Bahn"' in html  # what was typed stays in the form
    assert [q.label for q in questions.questions_of(event.id)] == [WORKSHOP, "Ihre Frage an das Podium"]
    # A place count alone counts as typed too.
    refused = staff_client.submit(page, {"label": "Anreise?", "kind": kind, "option_label-0": "", "option_capacity-0": "3"})
    assert refused.status_code == 422 and NOT_A_CHOICE in refused.get_data(as_text=True)
    # Empty rows are fine.
    assert staff_client.submit(page, {"label": "Anreise?", "kind": kind, "option_label-0": "",
                                      "option_capacity-0": ""}).status_code == 302

    # An unanswered choice question turned into free text with its options still there: refused as well.
    edit = f"{page}/{workshop.id}"
    rows = {f"option_{key}-{n}": value for n, o in enumerate(workshop.options)
            for key, value in (("id", str(o.id)), ("label", o.label), ("capacity", "" if o.capacity is None else str(o.capacity)))}
    refused = staff_client.submit(edit, {"label": WORKSHOP, "kind": kind, **rows})
    assert refused.status_code == 422 and NOT_A_CHOICE in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Question, workshop.id).kind == "einfachauswahl"
    # Emptied, the change is saved and the options go.
    emptied = {k: ("" if k.startswith(("option_label", "option_capacity")) else v) for k, v in rows.items()}
    assert staff_client.submit(edit, {"label": WORKSHOP, "kind": kind, **emptied}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Question, workshop.id).kind == kind and db.session.get(Question, workshop.id).options == []


def test_a_place_count_without_a_name_is_refused_at_its_row(staff_client):
    event, workshop, _ = fachtag()
    page = f"/veranstaltungen/{event.id}/fragen"
    refused = staff_client.submit(page, {"label": "Führung?", "kind": "einfachauswahl",
                                         "option_label-0": "Vormittag", "option_capacity-0": "20",
                                         "option_label-1": "Nachmittag", "option_capacity-1": "",
                                         "option_label-2": "", "option_capacity-2": "15"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    message = "Bei einer Platzzahl fehlt der Name der Möglichkeit."
    assert re.search(r'<input id="option_label-2" name="option_label-2" type="text" maxlength="200" value="" '
                     r'aria-invalid="true" aria-describedby="option_label-2-fehler">\s*'
                     rf'<p class="error-text" id="option_label-2-fehler">{message}</p>', html)
    assert f'<a href="#option_label-2">Möglichkeit 3: {message}</a>' in html
    assert 'id="options-fehler"' not in html  # said once, at the row
    assert html.count(message) == 2  # the row and the summary
    assert [q.label for q in questions.questions_of(event.id)] == [WORKSHOP, "Ihre Frage an das Podium"]

    # A place count that is no number: also at its row.
    bad = staff_client.submit(page, {"label": "Führung?", "kind": "einfachauswahl", "option_label-0": "Vormittag",
                                     "option_capacity-0": "zwanzig", "option_label-1": "Nachmittag", "option_capacity-1": ""})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert '<p class="error-text" id="option_capacity-0-fehler">Plätze bitte als ganze Zahl angeben (leer = unbegrenzt).</p>' in html
    assert 'value="zwanzig" aria-invalid="true"' in html

    # On the edit page too (a new row with places but no name); emptying an existing option's name still removes it.
    edit = f"{page}/{workshop.id}"
    rows = {f"option_{key}-{n}": value for n, o in enumerate(workshop.options)
            for key, value in (("id", str(o.id)), ("label", o.label), ("capacity", "" if o.capacity is None else str(o.capacity)))}
    refused = staff_client.submit(edit, {"label": WORKSHOP, "kind": "einfachauswahl", **rows,
                                         "option_id-3": "", "option_label-3": "", "option_capacity-3": "8"})
    assert refused.status_code == 422
    assert f'<p class="error-text" id="option_label-3-fehler">{message}</p>' in refused.get_data(as_text=True)
    assert staff_client.submit(edit, {"label": WORKSHOP, "kind": "einfachauswahl", **rows,
                                      "option_label-0": ""}).status_code == 302
    db.session.expire_all()
    assert [o.label for o in db.session.get(Question, workshop.id).options] == ["Workshop B: Arbeit", "Workshop C: Wohnen"]


# --- 5: counts in sentences ---------------------------------------------------------------------------------------

def test_counts_in_sentences_on_the_question_pages_and_the_answer_page(client, staff_client):
    event, workshop, _ = fachtag(companions_allowed=1, n=2)
    first, second = event.invitations
    a = workshop.options[0]
    services.answer(first, "zugesagt", responses={workshop.id: [str(a.id)]})
    db.session.commit()
    page = staff_client.get(f"/veranstaltungen/{event.id}/fragen").get_data(as_text=True)
    assert "Workshop A: Sprache: 1× gewählt, 1 Platz durch Zusagen belegt von 5" in page
    assert "Workshop B: Arbeit: 0× gewählt, 0 Plätze durch Zusagen belegt" in page
    assert "1 Plätze" not in page

    refused = client.submit(f"/antwort/{second.token}", {"answer": "zugesagt", "companions": "2",
                                                          workshop.field: str(a.id)})
    assert refused.status_code == 422
    assert "Sie können höchstens 1 Begleitperson anmelden." in refused.get_data(as_text=True)

    # The option's own message: one place left, two persons.
    a.capacity = 2
    db.session.commit()
    with pytest.raises(questions.QuestionError) as caught:
        services.answer(db.session.get(Invitation, second.id), "zugesagt", companions=1,
                        responses={workshop.id: [str(a.id)]})
    assert caught.value.errors[workshop.field] == ("Bei „Workshop A: Sprache“ ist nur noch 1 Platz frei (Sie melden "
                                                   "2 Personen an). Bitte wählen Sie eine andere Möglichkeit.")
    db.session.rollback()
