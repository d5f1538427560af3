"""Likely duplicates: the folding rule, the import and contact-form warnings, the merge page, and the
freshness filters ("unzustellbar", "seit 12 Monaten nicht geändert oder bestätigt")."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from ki_post.auth.models import AuditEntry
from ki_post.extensions import db
from ki_post.recipients.duplicates import TITLE_WORDS, normalise_name
from ki_post.recipients.models import Contact, Organisation, Verteiler
from tests.recipients.files import csv_data

# --- The folding rule ---------------------------------------------------------------------------

UMLAUT_SPELLINGS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
name_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
german_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüßÄÖÜ -", min_size=1, max_size=30)
ascii_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12).filter(lambda w: w not in TITLE_WORDS)


@settings(max_examples=300)
@given(name_text)
def test_normalising_is_idempotent(text):
    once = normalise_name(text)
    assert normalise_name(once) == once


@settings(max_examples=300)
@given(german_name)
def test_umlaut_and_ascii_spellings_and_case_compare_equal(name):
    ascii_spelling = "".join(UMLAUT_SPELLINGS.get(char, char) for char in name)
    assert normalise_name(name) == normalise_name(ascii_spelling) == normalise_name(name.upper()) \
        == normalise_name(f"  Dr.  {name}  ")


@given(ascii_word, ascii_word)
def test_different_names_stay_different(first, second):
    if first != second:
        assert normalise_name(first) != normalise_name(second)


def test_known_spellings():
    assert normalise_name("Müller") == normalise_name("Mueller") == normalise_name("MÜLLER") == "mueller"
    assert normalise_name("Strauß") == normalise_name("STRAUSS")
    assert normalise_name("José  Müller-Lüdenscheidt") == normalise_name("jose mueller lüdenscheidt")
    assert normalise_name("Müller") != normalise_name("Miller") and normalise_name("Maria") != normalise_name("Marie")


# --- Setup --------------------------------------------------------------------------------------

def _maria() -> Contact:
    kleve = Organisation(name="Kreis Kleve", kind="kreis", regierungsbezirk="Düsseldorf")
    maria = Contact(first_name="Maria", last_name="Müller", email="maria.mueller@kreis-kleve.example", organisation=kleve, extra={})
    db.session.add_all([kleve, maria])
    db.session.commit()
    return maria


HEADERS = ["Kommune", "Vorname", "Nachname", "E-Mail"]
IMPORT_ROWS = [
    ["Kreis Kleve", "Jonas", "Berg", "j.berg@kreis-kleve.example"],
    ["Kreis Wesel", "Maria", "Mueller", "m.mueller@kreis-wesel.example"],   # same name, other Kommune: someone else
    ["kreis kleve", "Maria", "MUELLER", "mm@kreis-kleve.example"],           # row 4: the same person
]


def _upload(staff_client) -> str:
    response = staff_client.submit("/verteiler/import", {"file": (io.BytesIO(csv_data(headers=HEADERS, rows=IMPORT_ROWS)), "l.csv")},
                                   content_type="multipart/form-data")
    assert response.status_code == 302
    return response.headers["Location"]


def _count(**where) -> int:
    return db.session.scalar(select(func.count(Contact.id)).filter_by(**where))


# --- Import -------------------------------------------------------------------------------------

def test_import_flags_mueller_as_likely_the_stored_mueller_and_skips_it_unless_confirmed(staff_client, app):
    maria = _maria()
    preview_url = _upload(staff_client)
    page = staff_client.get(preview_url).get_data(as_text=True)
    assert "Zeile 4: wahrscheinlich dieselbe Person wie „Maria Müller“ (Kreis Kleve)" in page
    assert "Zeile 3:" not in page  # Maria Mueller of Kreis Wesel is somebody else
    assert f'name="dublette" value="4"' in page and f"/verteiler/kontakte/{maria.id}" in page

    applied = staff_client.submit(preview_url, {"action": "anwenden"})
    assert applied.status_code == 302
    assert _count(email="mm@kreis-kleve.example") == 0  # not created silently
    assert _count(email="j.berg@kreis-kleve.example") == 1 and _count(email="m.mueller@kreis-wesel.example") == 1
    details = db.session.scalar(select(AuditEntry.details).where(AuditEntry.action == "kontakte.importiert"))
    assert details["dubletten_uebersprungen"] == 1
    flashed = staff_client.get("/verteiler/").get_data(as_text=True)
    assert "1 wahrscheinliche Dubletten übersprungen" in flashed

    confirmed = staff_client.submit(_upload(staff_client), {"action": "anwenden", "dublette": "4"})
    assert confirmed.status_code == 302
    assert _count(email="mm@kreis-kleve.example") == 1


def test_import_flags_the_same_address_in_another_domain_spelling(staff_client, app):
    stored = Contact(last_name="Groß", email="post@xn--mnster-3ya.example", extra={})
    db.session.add(stored)
    db.session.commit()
    data = csv_data(headers=["Nachname", "E-Mail"], rows=[["Gross", "POST@münster.example"]], encoding="utf-8")
    response = staff_client.submit("/verteiler/import", {"file": (io.BytesIO(data), "l.csv")}, content_type="multipart/form-data")
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Zeile 2: wahrscheinlich dieselbe Person wie „Groß“ (gleiche Adresse in anderer Schreibweise)" in page


def test_import_flags_the_same_person_twice_in_one_file(staff_client, app):
    rows = [["Kreis Kleve", "Maria", "Müller", "a@kreis-kleve.example"], ["Kreis Kleve", "Maria", "Mueller", "b@kreis-kleve.example"]]
    response = staff_client.submit("/verteiler/import", {"file": (io.BytesIO(csv_data(headers=HEADERS, rows=rows)), "l.csv")},
                                   content_type="multipart/form-data")
    preview_url = response.headers["Location"]
    assert "Zeile 3: wahrscheinlich dieselbe Person wie „Maria Müller“ (Kreis Kleve) aus Zeile 2" in staff_client.get(preview_url).get_data(as_text=True)
    assert staff_client.submit(preview_url, {"action": "anwenden"}).status_code == 302
    assert _count(email="a@kreis-kleve.example") == 1 and _count(email="b@kreis-kleve.example") == 0


# --- Contact form -------------------------------------------------------------------------------

def test_contact_form_warns_with_a_link_and_saves_only_when_confirmed(staff_client, app):
    maria = _maria()
    data = {"organisation_id": str(maria.organisation_id), "anrede": "frau", "first_name": "MARIA", "last_name": "Mueller",
            "email": "maria.m@kreis-kleve.example", "active": "y"}
    warned = staff_client.submit("/verteiler/kontakte/neu", data)
    html = warned.get_data(as_text=True)
    assert warned.status_code == 422
    assert "Wahrscheinlich gibt es diese Person schon: „Maria Müller“ (Kreis Kleve)" in html
    assert f'href="/verteiler/kontakte/{maria.id}"' in html and 'name="dublette_ok"' in html
    assert _count(email="maria.m@kreis-kleve.example") == 0

    saved = staff_client.submit("/verteiler/kontakte/neu", {**data, "dublette_ok": "1"}, form_url="/verteiler/kontakte/neu")
    assert saved.status_code == 302 and _count(email="maria.m@kreis-kleve.example") == 1

    other = staff_client.submit("/verteiler/kontakte/neu", {**data, "first_name": "Marion", "email": "marion@kreis-kleve.example"})
    assert other.status_code == 302  # another first name: no warning


# --- Merge --------------------------------------------------------------------------------------

def test_merge_moves_lists_invitations_and_messages_and_keeps_mailing_counts(staff_client, app):
    from ki_post.events import services as events
    from ki_post.events.models import Invitation
    from ki_post.outbox.models import OutboxMessage
    from ki_post.outbox.services import counts_by_mailing, create_mailing, enqueue

    maria = _maria()
    twin = Contact(first_name="Maria", last_name="Mueller", email="mm@kreis-kleve.example", phone="02821 85-0",
                   organisation_id=maria.organisation_id, extra={"Sprechzeit": "Mo"})
    only_twin = Verteiler(name="Nur Zwilling", filter=None, members=[twin])
    both = Verteiler(name="Beide", filter=None, members=[maria, twin])
    db.session.add_all([twin, only_twin, both])
    db.session.flush()
    mailing = create_mailing("rundschreiben", "Rundschreiben 1/2030")
    enqueue(mailing, to_email=twin.email, to_name="Maria Mueller", contact_id=twin.id, subject="Betreff", text="Text\n")
    enqueue(mailing, to_email=maria.email, to_name="Maria Müller", contact_id=maria.id, subject="Betreff", text="Text\n")
    start = datetime.now(timezone.utc) + timedelta(days=30)
    event = events.create_event(events.EventData(title="Fachtag", start=start, end=start + timedelta(hours=2)))
    events.add_invitations(event, [twin])
    db.session.commit()
    twin_id, maria_id, mailing_id = twin.id, maria.id, mailing.id
    before = counts_by_mailing([mailing_id])
    url = f"/verteiler/kontakte/{maria_id}/zusammenfuehren"

    chooser = staff_client.get(url).get_data(as_text=True)
    assert f"zusammenfuehren?mit={twin_id}" in chooser  # the likely duplicate is offered
    form_url = f"{url}?mit={twin_id}"
    page = staff_client.get(form_url).get_data(as_text=True)
    assert "02821 85-0" in page and "Nur Zwilling" in page
    choice = {"mit": str(twin_id), "feld-phone": "uebernehmen", "feld-email": "behalten"}
    preview = staff_client.submit(url, {**choice, "action": "vorschau"}, form_url=form_url)
    assert preview.status_code == 200 and 'class="ergebnis">02821 85-0<' in preview.get_data(as_text=True)
    unconfirmed = staff_client.submit(url, {**choice, "action": "zusammenfuehren"}, form_url=form_url)
    assert unconfirmed.status_code == 422 and db.session.get(Contact, twin_id) is not None

    done = staff_client.submit(url, {**choice, "action": "zusammenfuehren", "bestaetigt": "ja"}, form_url=form_url)
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, twin_id) is None
    kept = db.session.get(Contact, maria_id)
    assert (kept.email, kept.phone, kept.last_name, kept.extra) == ("maria.mueller@kreis-kleve.example", "02821 85-0", "Müller", {"Sprechzeit": "Mo"})
    assert [m.id for m in db.session.get(Verteiler, only_twin.id).members] == [maria_id]
    assert [m.id for m in db.session.get(Verteiler, both.id).members] == [maria_id]
    assert db.session.scalar(select(Invitation.contact_id).where(Invitation.event_id == event.id)) == maria_id
    assert sorted(db.session.scalars(select(OutboxMessage.contact_id).where(OutboxMessage.mailing_id == mailing_id))) == [maria_id, maria_id]
    assert counts_by_mailing([mailing_id]) == before  # past mailings count the same
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "kontakte.zusammengefuehrt"))
    assert entry.object_id == maria_id and entry.details["zusammengefuehrt_von"] == twin_id
    assert entry.details["einladungen"] == 1 and entry.details["nachrichten"] == 1 and entry.details["verteiler"] == 2
    contact_page = staff_client.get(f"/verteiler/kontakte/{maria_id}").get_data(as_text=True)
    assert "Fachtag" in contact_page


def test_merge_refuses_itself_and_readers(staff_client, client, make_user, app):
    maria = _maria()
    url = f"/verteiler/kontakte/{maria.id}/zusammenfuehren"
    assert "Doppelten Eintrag wählen" in staff_client.get(f"{url}?mit={maria.id}").get_data(as_text=True)
    make_user("lesen", "leser@ministerium.example")
    client.login("leser@ministerium.example")
    assert client.get(url).status_code == 403


# --- Freshness ----------------------------------------------------------------------------------

def test_freshness_filters_and_start_page_counts(staff_client, app):
    maria = _maria()
    bounced = Contact(last_name="Weg", email="weg@kreis-kleve.example", organisation_id=maria.organisation_id, extra={},
                      undeliverable_since=datetime.now(timezone.utc))
    stale = Contact(last_name="Alt", email="alt@kreis-kleve.example", organisation_id=maria.organisation_id, extra={})
    db.session.add_all([bounced, stale])
    db.session.commit()
    long_ago = datetime.now(timezone.utc) - timedelta(days=400)
    db.session.execute(update(Contact).where(Contact.id == stale.id).values(updated_at=long_ago))
    db.session.commit()

    def names(query: str) -> str:
        return staff_client.get(f"/verteiler/?{query}").get_data(as_text=True)

    undeliverable = names("frische=unzustellbar")
    assert "1 Ansprechperson" in undeliverable and "weg@kreis-kleve.example" in undeliverable and "alt@" not in undeliverable
    not_confirmed = names("frische=unbestaetigt")
    assert "1 Ansprechperson" in not_confirmed and "alt@kreis-kleve.example" in not_confirmed and "weg@" not in not_confirmed
    assert '<option value="unbestaetigt" selected>' in not_confirmed
    assert "Der Filter ist ungültig" in names("frische=irgendwas")
    start = staff_client.get("/").get_data(as_text=True)
    assert "1 Ansprechperson mit unzustellbarer Adresse" in start
    assert "1 Ansprechperson seit 12 Monaten nicht geändert oder bestätigt" in start
