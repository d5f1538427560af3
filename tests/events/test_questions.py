"""An event's own questions: defining them, answering them (link and staff entry), option seats under
concurrency, lists and exports; on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
import re
from io import BytesIO

import openpyxl
import pytest
from sqlalchemy import select

from ki_post.events import questions, services
from ki_post.events.models import Invitation
from ki_post.events.question_models import Question, QuestionOption
from ki_post.events.questions import OptionData, QuestionData, QuestionError
from ki_post.extensions import db
from tests.events.conftest import answer_at_once


def rsvp_url(invitation) -> str:
    return f"/antwort/{invitation.token}"


@pytest.fixture
def fachtag(published):
    """A published Fachtag: a required workshop choice (A: 2 places, B: unlimited), a yes/no, a text, a
    multiple choice."""
    def make(n: int = 3, capacity_a: int = 2, **overrides):
        event = published(n, **overrides)
        workshop = questions.add_question(event, QuestionData(
            "Welchen Workshop am Nachmittag besuchen Sie?", "einfachauswahl", required=True,
            options=[OptionData("Workshop A: Kommunale Integrationszentren", capacity_a), OptionData("Workshop B: Ehrenamt")]))
        step_free = questions.add_question(event, QuestionData("Benötigen Sie einen barrierefreien Zugang?", "janein"))
        text = questions.add_question(event, QuestionData("Ihre Frage an das Podium", "text", help_text="Kurz, bitte."))
        topics = questions.add_question(event, QuestionData("Welche Themen interessieren Sie?", "mehrfachauswahl",
                                                            options=[OptionData("Sprache"), OptionData("Arbeit"),
                                                                     OptionData("Wohnen")]))
        db.session.commit()
        return event, workshop, step_free, text, topics

    return make


def option(question: Question, index: int) -> QuestionOption:
    return question.options[index]


# --- Validation ------------------------------------------------------------------------------------------

def test_validation_of_each_kind(fachtag):
    event, workshop, step_free, text, topics = fachtag()
    found = questions.questions_of(event.id)
    a, b = (str(o.id) for o in workshop.options)
    good = {workshop.id: [a], step_free.id: ["nein"], text.id: ["  Bitte mit Untertiteln \r\n"],
            topics.id: [str(topics.options[2].id), str(topics.options[0].id)]}
    stored = questions.validate_responses(found, good, accepting=True)
    assert stored == {str(workshop.id): int(a), str(step_free.id): False, str(text.id): "Bitte mit Untertiteln",
                      str(topics.id): [topics.options[0].id, topics.options[2].id]}

    def errors(raw, accepting=True, **kwargs) -> dict[str, str]:
        with pytest.raises(QuestionError) as caught:
            questions.validate_responses(found, {**good, **raw}, accepting=accepting, **kwargs)
        return caught.value.errors

    # Required: only for a Zusage; a declining person chooses no workshop.
    assert errors({workshop.id: []}) == {workshop.field: "Bitte beantworten Sie diese Frage (Pflichtangabe bei einer Zusage)."}
    assert str(workshop.id) not in questions.validate_responses(found, {**good, workshop.id: []}, accepting=False)
    # Unknown option, an option of another question, a wrong type, two options for a single choice.
    assert errors({workshop.id: ["999999"]}) == {workshop.field: "Bitte wählen Sie eine der angebotenen Möglichkeiten."}
    assert errors({workshop.id: [str(topics.options[0].id)]})[workshop.field].startswith("Bitte wählen Sie eine der")
    assert errors({workshop.id: ["A"]})[workshop.field].startswith("Bitte wählen Sie eine der")
    assert errors({workshop.id: [a, b]}) == {workshop.field: "Bitte wählen Sie nur eine Möglichkeit."}
    assert errors({topics.id: [str(topics.options[0].id), "x"]}) == {topics.field: "Bitte wählen Sie eine der angebotenen Möglichkeiten."}
    # Yes/no: only "ja" or "nein".
    assert errors({step_free.id: ["vielleicht"]}) == {step_free.field: "Bitte wählen Sie Ja oder Nein."}
    assert errors({step_free.id: ["ja", "nein"]}) == {step_free.field: "Bitte wählen Sie Ja oder Nein."}
    # Text: one value, at most 2,000 characters.
    assert errors({text.id: ["x" * 2001]}) == {text.field: "Die Antwort ist zu lang (höchstens 2.000 Zeichen)."}
    assert errors({text.id: ["a", "b"]}) == {text.field: "Bitte geben Sie nur einen Text ein."}
    # Every problem at once, each at its field.
    assert set(errors({workshop.id: [], step_free.id: ["x"]})) == {workshop.field, step_free.field}
    # The staff form keeps what it leaves empty; the answer page replaces.
    previous = dict(stored)
    kept = questions.validate_responses(found, {workshop.id: [b]}, accepting=True, previous=previous, keep_unanswered=True)
    assert kept == {**previous, str(workshop.id): int(b)}
    replaced = questions.validate_responses(found, {workshop.id: [b]}, accepting=True, previous=previous)
    assert replaced == {str(workshop.id): int(b)}


def test_defining_questions_is_checked(fachtag):
    event, workshop, *_ = fachtag()
    with pytest.raises(Exception, match="mindestens zwei Möglichkeiten"):
        questions.add_question(event, QuestionData("Workshop?", "einfachauswahl", options=[OptionData("A")]))
    with pytest.raises(Exception, match="nur einmal"):
        questions.add_question(event, QuestionData("Workshop?", "einfachauswahl", options=[OptionData("A"), OptionData("a")]))
    with pytest.raises(Exception, match="nur bei einer Auswahl mit einer Möglichkeit"):
        questions.add_question(event, QuestionData("Themen?", "mehrfachauswahl", options=[OptionData("A", 3), OptionData("B")]))
    with pytest.raises(Exception, match="Art der Frage"):
        questions.add_question(event, QuestionData("Was?", "zahl"))
    db.session.rollback()


# --- Answer page -----------------------------------------------------------------------------------------

def test_answer_page_stores_answers_and_refuses_wrong_ones_at_the_field(client, fachtag):
    event, workshop, step_free, text, topics = fachtag()
    invitation = event.invitations[0]
    html = client.get(rsvp_url(invitation)).get_data(as_text=True)
    assert "Welchen Workshop am Nachmittag besuchen Sie?" in html and "(noch 2 Plätze frei)" in html
    assert f'id="{text.field}-hinweis">Kurz, bitte.' in html

    # Required workshop missing: 422, the error at the field, everything typed is kept in the form.
    missing = client.submit(rsvp_url(invitation), {"answer": "zugesagt", text.field: "Wann gibt es Kaffee?",
                                                   step_free.field: "ja", "remark": "Bis gleich"})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 422
    assert (f'<p class="error-text" id="{workshop.field}-fehler">Bitte beantworten Sie diese Frage (Pflichtangabe bei '
            "einer Zusage).</p>") in html
    assert f'<a href="#{workshop.field}">Welchen Workshop am Nachmittag besuchen Sie?: Bitte beantworten' in html
    assert "Wann gibt es Kaffee?</textarea>" in html and 'value="ja" checked' in html and "Bis gleich</textarea>" in html
    assert "Bitte prüfen Sie Ihre Angaben zu den Fragen." not in html  # the summary links to the field instead
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).state == "offen"

    # No answer chosen and a wrong yes/no: both errors at once.
    both = client.submit(rsvp_url(invitation), {step_free.field: "vielleicht"}).get_data(as_text=True)
    assert "Bitte wählen Sie Zusage oder Absage." in both
    assert f'<p class="error-text" id="{step_free.field}-fehler">Bitte wählen Sie Ja oder Nein.</p>' in both

    a = option(workshop, 0).id
    ok = client.submit(rsvp_url(invitation), {"answer": "zugesagt", workshop.field: str(a), step_free.field: "ja",
                                              text.field: "Wann gibt es Kaffee?",
                                              topics.field: [str(topics.options[0].id), str(topics.options[1].id)]})
    assert ok.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Invitation, invitation.id)
    assert saved.state == "zugesagt"
    assert saved.answers == {str(workshop.id): a, str(step_free.id): True, str(text.id): "Wann gibt es Kaffee?",
                             str(topics.id): [topics.options[0].id, topics.options[1].id]}
    html = client.get(rsvp_url(invitation)).get_data(as_text=True)
    assert re.search(rf'id="{workshop.field}-{a}" name="{workshop.field}" value="{a}" checked>', html)
    assert "Wann gibt es Kaffee?</textarea>" in html


def test_full_option_is_shown_full_and_refused_with_the_rest_kept(client, fachtag):
    event, workshop, step_free, text, _ = fachtag(3, capacity_a=2, companions_allowed=1)
    first, second, third = event.invitations
    a, b = option(workshop, 0).id, option(workshop, 1).id
    services.answer(first, "zugesagt", companions=1, responses={workshop.id: [str(a)]})  # two persons: A is full
    db.session.commit()

    html = client.get(rsvp_url(second)).get_data(as_text=True)
    assert re.search(rf'id="{workshop.field}-{a}" name="{workshop.field}" value="{a}" disabled>\s*'
                     rf'<label for="{workshop.field}-{a}">Workshop A: Kommunale Integrationszentren – ausgebucht</label>', html)
    # The one who holds the seat still sees it as theirs, not as full.
    mine = client.get(rsvp_url(first)).get_data(as_text=True)
    assert re.search(rf'value="{a}" checked>', mine) and "– ausgebucht" not in mine

    # A form loaded before A filled up: the Zusage is refused at the field, not silently moved.
    refused = client.submit(rsvp_url(second), {"answer": "zugesagt", workshop.field: str(a), text.field: "Meine Frage"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "„Workshop A: Kommunale Integrationszentren“ ist ausgebucht. Bitte wählen Sie eine andere Möglichkeit." in html
    assert "Meine Frage</textarea>" in html
    db.session.expire_all()
    assert db.session.get(Invitation, second.id).state == "offen"
    # Declining needs no seat; the staff sees the counts.
    assert client.submit(rsvp_url(second), {"answer": "abgesagt", workshop.field: str(a)}).status_code == 302
    assert questions.option_seats_taken(event.id)[a] == 2

    # The holder declines: the seat is free again, and the next one gets it.
    assert client.submit(rsvp_url(first), {"answer": "abgesagt"}).status_code == 302
    assert questions.option_seats_taken(event.id)[a] == 0
    assert client.submit(rsvp_url(third), {"answer": "zugesagt", workshop.field: str(a)}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Invitation, third.id).state == "zugesagt"
    assert questions.option_free(event.id) == {a: 1}
    assert b not in questions.option_free(event.id)  # unlimited


def test_more_companions_than_the_option_has_room_for(fachtag):
    event, workshop, *_ = fachtag(2, capacity_a=2, companions_allowed=2)
    first, second = event.invitations
    a = option(workshop, 0).id
    services.answer(first, "zugesagt", responses={workshop.id: [str(a)]})
    db.session.commit()
    with pytest.raises(QuestionError) as caught:
        services.answer(second, "zugesagt", companions=2, responses={workshop.id: [str(a)]})
    assert caught.value.errors[workshop.field] == ("Bei „Workshop A: Kommunale Integrationszentren“ ist nur noch 1 Platz frei "
                                                   "(Sie melden 3 Personen an). Bitte wählen Sie eine andere Möglichkeit.")
    db.session.rollback()
    with pytest.raises(QuestionError) as caught:  # the holder cannot bring a companion into a full workshop
        services.answer(db.session.get(Invitation, first.id), "zugesagt", companions=2, responses={workshop.id: [str(a)]})
    assert "sind nur noch 2 Plätze frei (Sie melden 3 Personen an)" in caught.value.errors[workshop.field]
    db.session.rollback()


def test_per_option_capacity_under_concurrency(app, fachtag):
    """20 people choose the workshop with 5 places at the same moment: exactly 5 get one."""
    event, workshop, *_ = fachtag(20, capacity_a=5)
    tokens = [i.token for i in event.invitations]
    event_id, field, a = event.id, workshop.field, option(workshop, 0).id
    results = answer_at_once(app, tokens, {"answer": "zugesagt", field: str(a)})
    assert sorted(results) == [302] * 5 + [422] * 15
    states = [i.state for i in db.session.scalars(select(Invitation).where(Invitation.event_id == event_id))]
    assert states.count("zugesagt") == 5 and states.count("offen") == 15
    assert questions.option_seats_taken(event_id)[a] == 5


def test_waiting_list_passes_over_a_person_whose_option_is_full(fachtag):
    event, workshop, *_ = fachtag(4, capacity_a=1, capacity=2)
    first, second, third, fourth = event.invitations
    a, b = option(workshop, 0).id, option(workshop, 1).id
    services.answer(first, "zugesagt", responses={workshop.id: [str(a)]})
    services.answer(second, "zugesagt", responses={workshop.id: [str(b)]})
    services.answer(third, "zugesagt", responses={workshop.id: [str(a)]})  # event full: waiting (holds no seat)
    services.answer(fourth, "zugesagt", responses={workshop.id: [str(b)]})
    assert (third.state, fourth.state) == ("warteliste", "warteliste")
    moved = services.answer(second, "abgesagt").moved_up  # a seat is free; A is still full
    assert moved == [fourth] and third.state == "warteliste"


# --- Staff entry -----------------------------------------------------------------------------------------

def test_staff_entry_with_questions(staff_client, fachtag):
    event, workshop, step_free, text, _ = fachtag()
    invitation = event.invitations[0]
    detail = f"/veranstaltungen/{event.id}"
    page = staff_client.get(detail).get_data(as_text=True)
    assert "Fragen, die Sie leer lassen, behalten die bisherige Angabe der Person." in page
    base = {"invitation_id": str(invitation.id), "answer": "zugesagt", "channel": "telefon"}
    bad = staff_client.submit(f"{detail}/antwort-erfassen", {**base, workshop.field: "999999", text.field: "per Telefon"},
                              form_url=detail)
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert f'<p class="error-text" id="{workshop.field}-fehler">Bitte wählen Sie eine der angebotenen Möglichkeiten.</p>' in html
    assert "per Telefon</textarea>" in html
    b = option(workshop, 1).id
    ok = staff_client.submit(f"{detail}/antwort-erfassen", {**base, workshop.field: str(b), text.field: "per Telefon"},
                             form_url=detail)
    assert ok.status_code == 302
    # A second entry that leaves the questions empty keeps the earlier answers.
    assert staff_client.submit(f"{detail}/antwort-erfassen", {**base, "companions": "1", step_free.field: "ja"},
                               form_url=detail).status_code == 302
    db.session.expire_all()
    saved = db.session.get(Invitation, invitation.id)
    assert saved.answers == {str(workshop.id): b, str(text.id): "per Telefon", str(step_free.id): True}
    # The participant list shows the answers.
    page = staff_client.get(detail).get_data(as_text=True)
    assert "<th scope=\"col\">Weitere Angaben</th>" in page
    assert "Welchen Workshop am Nachmittag besuchen Sie?: Workshop B: Ehrenamt<br>" in page
    assert "Benötigen Sie einen barrierefreien Zugang?: Ja" in page


# --- Staff pages: define, change, delete -------------------------------------------------------------------

def test_staff_define_edit_move_and_delete_questions(staff_client, published):
    event = published(2)
    page_url = f"/veranstaltungen/{event.id}/fragen"
    assert f'href="{page_url}" id="fragen-link">Fragen an die Eingeladenen (0)' in staff_client.get(
        f"/veranstaltungen/{event.id}").get_data(as_text=True)
    bad = staff_client.submit(page_url, {"label": "Workshop?", "kind": "einfachauswahl", "option_label-0": "A",
                                         "option_capacity-0": "", "option_id-0": ""})
    assert bad.status_code == 422 and "Eine Auswahlfrage braucht mindestens zwei Möglichkeiten." in bad.get_data(as_text=True)
    bad = staff_client.submit(page_url, {"label": "Workshop?", "kind": "einfachauswahl", "option_label-0": "A",
                                         "option_capacity-0": "zehn", "option_label-1": "B", "option_capacity-1": ""})
    assert bad.status_code == 422 and "Plätze bitte als ganze Zahl angeben" in bad.get_data(as_text=True)
    made = staff_client.submit(page_url, {"label": "Workshop?", "kind": "einfachauswahl", "required": "y",
                                          "option_label-0": "A", "option_capacity-0": "10", "option_id-0": "",
                                          "option_label-1": "B", "option_capacity-1": "", "option_id-1": "",
                                          "option_label-2": "", "option_capacity-2": "", "option_id-2": ""})
    assert made.status_code == 302
    assert staff_client.submit(page_url, {"label": "Anmerkungen zur Anreise", "kind": "text"}).status_code == 302
    workshop, note = questions.questions_of(event.id)
    assert [(o.label, o.capacity) for o in workshop.options] == [("A", 10), ("B", None)] and workshop.required
    a, b = (o.id for o in workshop.options)

    # Move the text question up.
    assert staff_client.submit(f"{page_url}/{note.id}/verschieben", {"direction": "hoch"}, form_url=page_url).status_code == 302
    db.session.expire_all()
    assert [q.label for q in questions.questions_of(event.id)] == ["Anmerkungen zur Anreise", "Workshop?"]

    # Someone chooses A.
    services.answer(event.invitations[0], "zugesagt", responses={workshop.id: [str(a)], note.id: ["Bahn"]})
    db.session.commit()
    edit_url = f"{page_url}/{workshop.id}"
    form = {"label": "Workshop?", "kind": "einfachauswahl", "required": "y", "option_id-0": str(a), "option_label-0": "A",
            "option_capacity-0": "10", "option_id-1": str(b), "option_label-1": "B", "option_capacity-1": ""}
    assert "Zu dieser Frage liegen bereits 1 Antwort vor." in staff_client.get(edit_url).get_data(as_text=True)
    # Changing the kind: refused.
    refused = staff_client.submit(edit_url, {**form, "kind": "mehrfachauswahl", "option_capacity-0": ""})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Die Art der Frage kann nicht mehr geändert werden: 1 Person hat bereits geantwortet." in html
    # Removing the chosen option: refused; removing the unchosen one: fine.
    refused = staff_client.submit(edit_url, {**form, "option_label-0": "", "option_id-2": "", "option_label-2": "C",
                                             "option_capacity-2": ""})
    assert refused.status_code == 422 and "„A“ wurde bereits von 1 Person gewählt und kann nicht entfernt werden." in refused.get_data(as_text=True)
    # Renaming the chosen option and closing it below those taken: saved, with warnings.
    renamed = staff_client.submit(edit_url, {**form, "option_label-0": "A (Raum 2)", "option_capacity-0": "0",
                                             "option_label-1": "", "option_id-2": "", "option_label-2": "C",
                                             "option_capacity-2": "5"}, follow_redirects=True)
    html = renamed.get_data(as_text=True)
    assert "„A“ heißt jetzt „A (Raum 2)“; 1 Person hatte diese Möglichkeit bereits gewählt." in html
    assert ("Bei „A (Raum 2)“ ist 1 Platz durch Zusagen belegt, mehr als die neu festgelegten 0 Plätze. "
            "Niemand wird abgemeldet") in html
    db.session.expire_all()
    assert [(o.id == a, o.label, o.capacity) for o in db.session.get(Question, workshop.id).options] == [
        (True, "A (Raum 2)", 0), (False, "C", 5)]

    # Deleting a question with answers needs the confirmation, and takes the answers along.
    refused = staff_client.submit(f"{page_url}/{note.id}/loeschen", {}, form_url=page_url, follow_redirects=True)
    assert "Zu dieser Frage hat 1 Person bereits geantwortet." in refused.get_data(as_text=True)
    assert db.session.get(Question, note.id) is not None
    deleted = staff_client.submit(f"{page_url}/{note.id}/loeschen", {"confirmed": "y"}, form_url=page_url,
                                  follow_redirects=True)
    assert "Die Frage wurde gelöscht, mit 1 Antwort." in deleted.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Question, note.id) is None
    assert db.session.get(Invitation, event.invitations[0].id).answers == {str(workshop.id): a}


def test_questions_of_a_cancelled_event_stay_as_they_are(staff_client, fachtag):
    event, workshop, *_ = fachtag()
    services.cancel_event(event, "Krankheit")
    db.session.commit()
    page = staff_client.get(f"/veranstaltungen/{event.id}/fragen").get_data(as_text=True)
    assert "Neue Frage" not in page
    refused = staff_client.submit(f"/veranstaltungen/{event.id}/fragen", {"label": "Noch was?", "kind": "text"},
                                  form_url=f"/veranstaltungen/{event.id}/fragen")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Die Veranstaltung ist abgesagt" in html, html[html.find("<main"):]


# --- Exports, copy, erasure ------------------------------------------------------------------------------

def test_export_has_one_column_per_question_and_neutralises_formulas(fachtag):
    event, workshop, step_free, text, topics = fachtag()
    evil = questions.add_question(event, QuestionData("=HYPERLINK(\"http://x\")", "text"))
    first = event.invitations[0]
    services.answer(first, "zugesagt", responses={workshop.id: [str(option(workshop, 1).id)], step_free.id: ["ja"],
                                                  text.id: ["=1+1"], evil.id: ["@SUM(A1)"],
                                                  topics.id: [str(topics.options[0].id), str(topics.options[2].id)]})
    db.session.commit()
    content = services.export_participants(event, "csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content), delimiter=";"))
    header = rows[0]
    assert header[-5:] == ["Welchen Workshop am Nachmittag besuchen Sie?", "Benötigen Sie einen barrierefreien Zugang?",
                           "Ihre Frage an das Podium", "Welche Themen interessieren Sie?", "'=HYPERLINK(\"http://x\")"]
    row = next(r for r in rows[1:] if r[2] == first.email)
    assert row[-5:] == ["Workshop B: Ehrenamt", "Ja", "'=1+1", "Sprache, Wohnen", "'@SUM(A1)"]
    assert all(len(r) == len(header) for r in rows)
    sheet = openpyxl.load_workbook(BytesIO(services.export_participants(event, "xlsx"))).active
    cells = [c.value for c in sheet[1]]
    assert cells[-1] == "'=HYPERLINK(\"http://x\")"
    values = {sheet.cell(row=r, column=3).value: [c.value for c in sheet[r]] for r in range(2, sheet.max_row + 1)}
    assert values[first.email][-3:-1] == ["'=1+1", "Sprache, Wohnen"]
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_copy_questions(fachtag, make_event):
    event, workshop, *_ = fachtag()
    services.answer(event.invitations[0], "zugesagt", responses={workshop.id: [str(option(workshop, 0).id)]})
    target = make_event(title="Fachtag 2028")
    questions.add_question(target, QuestionData("Schon da", "text"))
    questions.copy_questions(event, target)
    db.session.commit()
    copied = questions.questions_of(target.id)
    assert [q.label for q in copied] == ["Schon da"] + [q.label for q in questions.questions_of(event.id)]
    assert [(o.label, o.capacity) for o in copied[1].options] == [(o.label, o.capacity) for o in workshop.options]
    assert copied[1].required and copied[1].id != workshop.id
    assert {o.id for o in copied[1].options}.isdisjoint(o.id for o in workshop.options)
    assert questions.option_seats_taken(target.id) == {}


def test_erasure_clears_free_text_answers_and_the_export_names_them(fachtag):
    from ki_post.events.erasure import erase_invitations
    from ki_post.history import _invitations_json
    from ki_post.recipients.models import Contact

    event, workshop, step_free, text, _ = fachtag()
    invitation = event.invitations[0]
    a = option(workshop, 0).id
    services.answer(invitation, "zugesagt", responses={workshop.id: [str(a)], step_free.id: ["ja"],
                                                       text.id: ["Ich bringe meine Assistenz mit"]})
    db.session.commit()
    contact = db.session.get(Contact, invitation.contact_id)
    (exported,) = _invitations_json(contact)
    assert exported["weitere_angaben"] == {"Welchen Workshop am Nachmittag besuchen Sie?": "Workshop A: Kommunale Integrationszentren",
                                           "Benötigen Sie einen barrierefreien Zugang?": "Ja",
                                           "Ihre Frage an das Podium": "Ich bringe meine Assistenz mit"}
    erase_invitations(contact)
    db.session.commit()
    db.session.expire_all()
    erased = db.session.get(Invitation, invitation.id)
    assert erased.answers == {str(workshop.id): a, str(step_free.id): True}  # the workshop seat stays counted
    assert questions.option_seats_taken(event.id)[a] == 1
