"""Letter runs on both databases: empty placeholders stop a run until confirmed, and one recipient's
problem never stops the others (downloads, CLI, mailings — the last end to end through aiosmtpd)."""
from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from docx import Document
from sqlalchemy import func, select

from ki_post.errors import ValidationError
from ki_post.extensions import db
from ki_post.letters import services
from ki_post.letters.models import ArchivedLetter, LetterRun
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.recipients.models import Contact
from ki_post.recipients.services import resolve_recipients, verteiler_by_name
from tests.letters.test_engine import make_docx
from tests.letters.test_views import compose_data, prepared_mailing, produced
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401 - the real aiosmtpd server and an app sending to it

FIELDS = {"datum": "2016-12-28", "betreff": "Rückmeldung", "aktenzeichen": "9506"}
# Division by the length of the contact's function: a person without one cannot get this letter.
PER_PERSON = "Sehr geehrte Damen und Herren, Ihre Kennziffer: {{ 100 // (kontakt.funktion|length) }}"


def all_contacts() -> list[Contact]:
    return resolve_recipients(verteiler_id=verteiler_by_name("Alle KI-Dezernate").id)


def template(name: str, *paragraphs: str):
    version, _warnings = services.upload_template(name, make_docx(*paragraphs))
    db.session.commit()
    return version


def without_function(count: int = 2) -> list[Contact]:
    contacts = all_contacts()
    for contact in contacts:
        contact.function = contact.function or "Dezernat"
    broken = contacts[3:3 + count]
    for contact in broken:
        contact.function = ""
    db.session.commit()
    return broken


# -- unknown and missing placeholders ------------------------------------------------------------------
def test_upload_flags_a_typo_with_a_suggestion(app):
    _version, warnings = services.upload_template("Tippfehler", make_docx("Sehr geehrte {{ kontakt.nachnam }}, {{ organisation.nmae }}"))
    assert warnings[0] == ("Unbekannte Platzhalter (bleiben im Brief leer, bitte Schreibweise prüfen): "
                           "kontakt.nachnam (meinten Sie kontakt.nachname?), organisation.nmae (meinten Sie organisation.name?)")


def test_loop_variables_over_signatories_are_checked_too(app):
    _version, warnings = services.upload_template("Schleife", make_docx(
        "{%p for person in unterzeichnende %}", "{{ person.nmae }} {{ person.funktion }}", "{%p endfor %}"))
    assert "unterzeichnende[…].nmae (meinten Sie unterzeichnende[…].name?)" in warnings[0]


def test_an_extra_field_without_value_stops_the_run_until_confirmed(app, demo):
    version = template("Frist", "Bitte bis {{ felder.frist }} zurück.", "{{ felder.ort|default('Düsseldorf') }}",
                       "{% if felder.hinweis %}Hinweis: {{ felder.hinweis }}{% endif %}")
    with pytest.raises(services.EmptyPlaceholders) as error:
        services.require_complete(version, {**FIELDS, "frist": "  "}, confirm_empty=False)
    # Only the field printed as is; |default and {% if %} make the others optional.
    assert error.value.check.missing_fields == ["frist"]
    assert str(error.value).startswith("Diese Platzhalter blieben in den Briefen leer: felder.frist (Zusatzfeld ohne Wert).")
    assert services.require_complete(version, {**FIELDS, "frist": "31. Januar"}, confirm_empty=False).problems == []
    assert services.require_complete(version, FIELDS, confirm_empty=True).missing_fields == ["frist"]


def test_an_empty_extra_field_counts_as_absent_for_default(app, demo):
    version = template("Standard", "Ort: {{ felder.ort|default('Düsseldorf') }}")
    target = io.BytesIO()
    services.produce(version, all_contacts()[:1], {**FIELDS, "ort": ""}, "zip", target)
    letter = zipfile.ZipFile(target).read(zipfile.ZipFile(target).namelist()[0])
    assert Document(io.BytesIO(letter)).paragraphs[0].text == "Ort: Düsseldorf"


def test_cli_render_stops_with_the_list_and_goes_on_when_confirmed(app, demo, runner, tmp_path):
    template("Frist", "Bitte bis {{ felder.frist }} an {{ kontakt.nachnam }} zurück.")
    out = tmp_path / "briefe.zip"
    result = runner.invoke(args=["letters", "render", "--template", "Frist", "--out", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert "Diese Platzhalter blieben in den Briefen leer: felder.frist (Zusatzfeld ohne Wert); kontakt.nachnam (meinten Sie " \
           "kontakt.nachname?) (unbekannter Platzhalter). Zusatzfelder mit --set name=WERT angeben" in result.output
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 0
    result = runner.invoke(args=["letters", "render", "--template", "Frist", "--out", str(out), "--set", "frist=31. Januar",
                                 "--leere-felder"])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        assert Document(io.BytesIO(archive.read(archive.namelist()[0]))).paragraphs[0].text == "Bitte bis 31. Januar an  zurück."


def test_cli_mail_stops_too_and_takes_extra_fields(app, demo, runner):
    template("Frist", "Bitte bis {{ felder.frist }} zurück.")
    result = runner.invoke(args=["letters", "mail", "--template", "Frist", "--subject", "Frist"])
    assert result.exit_code == 1 and "felder.frist (Zusatzfeld ohne Wert)" in result.output and "--leere-felder" in result.output
    assert db.session.scalar(select(func.count(Mailing.id))) == 0
    result = runner.invoke(args=["letters", "mail", "--template", "Frist", "--subject", "Frist", "--set", "frist=31. Januar", "--entwurf"])
    assert result.exit_code == 0, result.output
    mailing = db.session.get(Mailing, int(result.output.strip().splitlines()[-1]))
    document = Document(io.BytesIO(services.load_blob(mailing.messages[0].attachments[0].blob_sha256)))
    assert document.paragraphs[0].text == "Bitte bis 31. Januar zurück."


def test_compose_page_asks_before_producing_and_preview_warns(staff_client, demo):
    template("Frist", "Bitte bis {{ felder.frist }} zurück.")
    page = staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="preview")).get_data(as_text=True)
    assert "Diese Platzhalter blieben in den Briefen leer" in page and "felder.frist (Zusatzfeld ohne Wert)" in page
    response = staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="produce"))
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html" and 'class="error-summary"' in page
    assert 'href="#leere_bestaetigt"' in page and "felder.frist (Zusatzfeld ohne Wert)" in page
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 0
    response = produced(staff_client, staff_client.submit("/rundschreiben/erstellen",
                                                          compose_data(staff_client, action="produce", leere_bestaetigt="y")))
    assert response.mimetype == "application/zip" and len(zipfile.ZipFile(io.BytesIO(response.data)).namelist()) == 53
    response = produced(staff_client, staff_client.submit("/rundschreiben/erstellen",
                                                          compose_data(staff_client, action="produce", extra="frist=31. Januar")))
    assert response.mimetype == "application/zip"
    page = staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="mailing")).get_data(as_text=True)
    assert "felder.frist (Zusatzfeld ohne Wert)" in page and db.session.scalar(select(func.count(Mailing.id))) == 0


# -- one recipient's problem never blocks the others ------------------------------------------------------
def test_production_leaves_out_whom_it_cannot_write_to_and_says_why(app, demo):
    version = template("Kennziffer", PER_PERSON)
    broken = without_function()
    target = io.BytesIO()
    result = services.produce(version, all_contacts(), FIELDS, "zip", target, user="test")
    db.session.commit()
    assert result.count == 51 and len(zipfile.ZipFile(target).namelist()) == 51
    assert [p.contact_id for p in result.problems] == [c.id for c in broken]
    assert all(p.reason.startswith("Die Vorlage lässt sich nicht mit diesen Angaben füllen: Division durch null (Haupttext, Absatz 1).")
               for p in result.problems)
    run = db.session.scalar(select(LetterRun))
    assert run.letter_count == 51 and [p["name"] for p in run.problems] == [c.full_name for c in broken]
    assert db.session.scalar(select(func.count(ArchivedLetter.id))) == 51


def test_production_with_nobody_left_says_so(app, demo):
    version = template("Kennziffer", PER_PERSON)
    broken = without_function()
    with pytest.raises(ValidationError, match="Für keine Empfängerin und keinen Empfänger ließ sich etwas erstellen: .*Division durch null"):
        services.produce(version, broken, FIELDS, "zip", io.BytesIO())


def test_cli_render_writes_the_others_and_lists_the_problems(app, demo, runner, tmp_path):
    template("Kennziffer", PER_PERSON)
    broken = without_function()
    out = tmp_path / "briefe.zip"
    result = runner.invoke(args=["letters", "render", "--template", "Kennziffer", "--out", str(out)])
    assert result.exit_code == 1
    assert "51 Briefe geschrieben" in result.output and "2 Briefe nicht erstellt" in result.output
    for contact in broken:
        assert f"Nicht erstellt – {contact.full_name} ({contact.organisation.name}): Die Vorlage lässt sich nicht" in result.output
    assert len(zipfile.ZipFile(out).namelist()) == 51


def test_compose_lists_the_problems_then_produces_the_others(staff_client, demo):
    template("Kennziffer", PER_PERSON)
    broken = without_function()
    response = staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="produce"))
    page = response.get_data(as_text=True)
    assert response.mimetype == "text/html" and "Für 2 von 53 Empfängerinnen und Empfängern lässt sich kein Brief erstellen" in page
    for contact in broken:
        assert f"<strong>{contact.full_name}</strong>" in page
    assert 'name="ohne_problemfaelle"' in page and db.session.scalar(select(func.count(ArchivedLetter.id))) == 0
    response = produced(staff_client, staff_client.submit("/rundschreiben/erstellen",
                                                          compose_data(staff_client, action="produce", ohne_problemfaelle="y")))
    assert response.mimetype == "application/zip" and len(zipfile.ZipFile(io.BytesIO(response.data)).namelist()) == 51
    run = db.session.scalar(select(LetterRun))
    page = staff_client.get(f"/rundschreiben/archiv/{run.id}").get_data(as_text=True)
    assert "Nicht erstellte Briefe" in page and all(f"<strong>{c.full_name}</strong>" in page for c in broken)


def test_compose_mailing_skips_and_shows_each_person(staff_client, demo):
    template("Kennziffer", PER_PERSON)
    broken = without_function()
    bad = all_contacts()[10]
    bad.email = "kein-at-zeichen.example"
    db.session.commit()
    url, job_page = prepared_mailing(staff_client, staff_client.submit("/rundschreiben/erstellen", compose_data(staff_client, action="mailing")))
    mailing = db.session.scalar(select(Mailing))
    states = {m.contact_id: m for m in mailing.messages}
    assert len(states) == 53 and sum(m.state == "wartend" for m in mailing.messages) == 50
    assert states[bad.id].state == "uebersprungen" and "„kein-at-zeichen.example“ ist keine gültige E-Mail-Adresse" in states[bad.id].server_reply
    for contact in broken:
        assert states[contact.id].server_reply.startswith("Brief nicht erstellt: Die Vorlage lässt sich nicht mit diesen Angaben füllen: "
                                                          "Division durch null")
    assert "3 Empfängerinnen und Empfänger wurden übersprungen" in job_page
    page = staff_client.get(url + "?zustand=uebersprungen").get_data(as_text=True)
    assert "kein-at-zeichen.example" in page
    assert page.count("übersprungen</span>") == 3


def test_letters_mail_sends_to_everyone_else_through_smtp(smtp_app, smtp):
    from ki_post.demo import load_demo_verteiler
    from ki_post.outbox.worker import Worker

    load_demo_verteiler()
    db.session.commit()
    version, _ = services.upload_template("Kennziffer", make_docx(PER_PERSON))
    db.session.commit()
    broken = without_function()
    bad = all_contacts()[20]
    bad.email = "zwei@@at.example"
    db.session.commit()
    result = smtp_app.test_cli_runner().invoke(args=["letters", "mail", "--template", "Kennziffer", "--subject", "Kennziffer"])
    assert result.exit_code == 1  # some were skipped; the rest is queued and the mailing runs
    lines = result.output.strip().splitlines()
    mailing_id = int(lines[-1])
    assert "50 Nachrichten eingereiht (wird gesendet), 3 übersprungen." in result.output
    assert f"Übersprungen – {bad.full_name} <zwei@@at.example>: „zwei@@at.example“ ist keine gültige E-Mail-Adresse" in result.output
    Worker(smtp_app).run(once=True)
    received = sorted(r for message in smtp.handler.received for r in message.rcpt_tos)
    expected = sorted(c.email for c in all_contacts() if c.id not in {bad.id, *(b.id for b in broken)})
    assert received == expected and len(received) == 50
    counts = dict(db.session.execute(select(OutboxMessage.state, func.count()).where(OutboxMessage.mailing_id == mailing_id)
                                     .group_by(OutboxMessage.state)).all())
    assert counts == {"gesendet": 50, "uebersprungen": 3}
    for message in smtp.messages():
        (attachment,) = list(message.iter_attachments())
        text = Document(io.BytesIO(attachment.get_payload(decode=True))).paragraphs[0].text
        assert text.startswith("Sehr geehrte Damen und Herren, Ihre Kennziffer: ")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(no_function=st.sets(st.integers(0, 52), max_size=6), bad_address=st.sets(st.integers(0, 52), max_size=4))
def test_whoever_is_broken_only_they_are_skipped(app, demo, no_function, bad_address):
    """Property over any mix of broken data and broken addresses. Oracle: the indexes themselves —
    exactly those people are skipped (each once, with a reason), everyone else is queued once."""
    version = services.template_by_name("Kennziffer").latest if services.list_templates() else template("Kennziffer", PER_PERSON)
    contacts = all_contacts()
    for index, contact in enumerate(contacts):
        contact.function = "" if index in no_function else "Dezernat"
        contact.email = f"kaputt-{index}.example" if index in bad_address else f"person-{index}@kreis.example"
    db.session.flush()
    from ki_post.letters.circulars import mail_letters

    mailing = mail_letters(version, contacts, FIELDS, start=False)
    db.session.flush()
    by_contact = {}
    for message in mailing.messages:
        assert message.contact_id not in by_contact, "one row per person"
        by_contact[message.contact_id] = message
    broken = {contacts[i].id for i in no_function | bad_address}
    assert {cid for cid, m in by_contact.items() if m.state == "uebersprungen"} == broken
    assert {cid for cid, m in by_contact.items() if m.state == "wartend"} == {c.id for c in contacts} - broken
    for index in no_function:
        assert by_contact[contacts[index].id].server_reply.startswith("Brief nicht erstellt: ")
    for index in bad_address - no_function:
        assert "ist keine gültige E-Mail-Adresse" in by_contact[contacts[index].id].server_reply
    db.session.rollback()


def test_an_erased_person_leaves_no_name_in_the_lists_of_those_left_out(app, demo):
    """A run's list of recipients it could not write to names them; after an erasure it no longer does."""
    from ki_post.recipients.services import anonymise_contact

    version = template("Kennziffer", PER_PERSON)
    erased, kept = without_function()
    name, email = erased.full_name, erased.email
    services.produce(version, all_contacts(), FIELDS, "zip", io.BytesIO(), user="test")
    db.session.commit()
    anonymise_contact(erased)
    db.session.commit()
    run = db.session.scalar(select(LetterRun))
    stored = str(run.problems)
    assert name not in stored and email not in stored
    assert [p["name"] for p in run.problems] == ["(gelöscht)", kept.full_name]
