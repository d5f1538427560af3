"""Pages of the Verteiler: list (search, filter, sort, paginate), contact CRUD, Verteiler, import, export, DSGVO."""
from __future__ import annotations

import csv
import io
import json

from openpyxl import load_workbook
from sqlalchemy import func, select

from ki_post.auth.models import AuditEntry
from ki_post.extensions import db
from ki_post.recipients.models import Contact, ImportUpload, Organisation, Verteiler
from tests.recipients.files import HEADERS, ROWS, csv_data, xlsx_data


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_list_page_search_filter_sort_paginate(staff_client, demo):
    page = staff_client.get("/verteiler/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "53 Ansprechpersonen" in html and "Seite 1 von 2" in html
    assert staff_client.get("/verteiler/?page=2").status_code == 200

    koeln = staff_client.get("/verteiler/?regierungsbezirk=Köln&kind=kreis").get_data(as_text=True)
    expected = db.session.scalar(select(func.count(Contact.id)).join(Organisation).where(
        Organisation.regierungsbezirk == "Köln", Organisation.kind == "kreis"))
    assert f"{expected} Ansprechpersonen" in koeln

    found = staff_client.get("/verteiler/?q=bielefeld").get_data(as_text=True)
    assert "<caption>1 Ansprechperson für „bielefeld“</caption>" in found and "Bielefeld" in found

    by_name = staff_client.get("/verteiler/?sort=name&dir=desc").get_data(as_text=True)
    assert 'aria-sort="descending"' in by_name
    bad = staff_client.get("/verteiler/?kind=dorf")
    assert bad.status_code == 200 and "Der Filter ist ungültig" in bad.get_data(as_text=True)


def test_reader_sees_list_but_cannot_change(client, make_user, demo):
    make_user("admin", "admin@ministerium.example")
    reader = make_user("lesen")
    client.login(reader.email)
    assert client.get("/verteiler/").status_code == 200
    assert "Neue Ansprechperson" not in client.get("/verteiler/").get_data(as_text=True)
    contact = db.session.scalar(select(Contact).limit(1))
    token = client.csrf_token("/verteiler/")
    assert client.post(f"/verteiler/kontakte/{contact.id}/aktiv", data={"csrf_token": token, "active": "0"}).status_code == 403
    assert client.post("/verteiler/export", data={"csrf_token": token, "format": "csv"}).status_code == 403


def test_create_edit_deactivate_contact(staff_client, demo):
    org = db.session.scalar(select(Organisation).where(Organisation.name == "Köln"))
    response = staff_client.submit("/verteiler/kontakte/neu", {
        "organisation_id": str(org.id), "anrede": "frau", "academic_title": "Dr.", "first_name": "Eva",
        "last_name": "<script>alert(1)</script>", "email": "Eva.Wolf@Stadt-Koeln.example", "active": "y",
        "function": "{{ 7*7 }}"})
    assert response.status_code == 302
    contact = db.session.scalar(select(Contact).where(Contact.email == "eva.wolf@stadt-koeln.example"))
    assert contact.last_name == "<script>alert(1)</script>" and contact.function == "{{ 7*7 }}"
    page = staff_client.get(f"/verteiler/kontakte/{contact.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "<dd>{{ 7*7 }}</dd>" in page  # shown literally, never evaluated
    assert "Sehr geehrte Frau Dr. &lt;script&gt;" in page and '<h2 id="verlauf-titel">Verlauf</h2>' in page

    duplicate = staff_client.submit("/verteiler/kontakte/neu", {"last_name": "X", "email": "eva.wolf@stadt-koeln.example", "anrede": ""})
    assert duplicate.status_code == 422 and "gehört schon zu einer anderen Ansprechperson" in duplicate.get_data(as_text=True)
    bad = staff_client.submit("/verteiler/kontakte/neu", {"last_name": "", "email": "kaputt", "anrede": ""})
    assert bad.status_code == 422

    edit = staff_client.submit(f"/verteiler/kontakte/{contact.id}/bearbeiten", {
        "organisation_id": str(org.id), "anrede": "frau", "first_name": "Eva", "last_name": "Wolf",
        "email": "eva.wolf@stadt-koeln.example", "active": "y"})
    assert edit.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).last_name == "Wolf"

    off = staff_client.submit(f"/verteiler/kontakte/{contact.id}/aktiv", {"active": "0"}, form_url=f"/verteiler/kontakte/{contact.id}")
    assert off.status_code == 302
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).active is False
    assert audit_actions()[-3:] == ["kontakt.angelegt", "kontakt.geaendert", "kontakt.deaktiviert"]


def test_get_never_changes_state(staff_client, demo):
    contact = db.session.scalar(select(Contact).limit(1))
    assert staff_client.get(f"/verteiler/kontakte/{contact.id}/aktiv").status_code == 405
    assert staff_client.get(f"/verteiler/kontakte/{contact.id}/loeschen").status_code == 200
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).active is True


def test_dsgvo_export_anonymise_delete(staff_client, demo):
    contact = db.session.scalar(select(Contact).order_by(Contact.id).limit(1))
    url = f"/verteiler/kontakte/{contact.id}"
    export = staff_client.submit(f"{url}/auskunft", {}, form_url=url)
    assert export.status_code == 200 and export.mimetype == "application/json"
    data = json.loads(export.get_data())
    assert data["ansprechperson"]["e_mail"] == contact.email and data["kommune"]["name"] == contact.organisation.name

    forbidden = staff_client.submit(f"{url}/loeschen", {"action": "loeschen"})
    assert forbidden.status_code == 403
    done = staff_client.submit(f"{url}/loeschen", {"action": "anonymisieren"})
    assert done.status_code == 302
    db.session.expire_all()
    anonymised = db.session.get(Contact, contact.id)
    assert anonymised.anonymised_at and not anonymised.active and anonymised.last_name == "Anonymisiert"
    assert anonymised.email.endswith(".invalid") and anonymised.first_name == "" and anonymised.phone == ""
    assert audit_actions()[-2:] == ["kontakt.auskunft", "kontakt.anonymisiert"]


def test_admin_can_delete(admin_client, demo):
    contact = db.session.scalar(select(Contact).order_by(Contact.id).limit(1))
    response = admin_client.submit(f"/verteiler/kontakte/{contact.id}/loeschen", {"action": "loeschen"})
    assert response.status_code == 302
    assert db.session.get(Contact, contact.id) is None
    assert db.session.scalar(select(func.count(Contact.id))) == 52
    assert audit_actions()[-1] == "kontakt.geloescht"


def test_export_from_list_page_is_neutralised(staff_client, demo):
    contact = db.session.scalar(select(Contact).order_by(Contact.id).limit(1))
    contact.function = "=HYPERLINK(\"http://böse.example\")"
    db.session.commit()
    response = staff_client.submit("/verteiler/export", {"format": "csv", "active": "aktiv"}, form_url="/verteiler/")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"), newline=""), delimiter=";"))
    assert len(rows) == 54 and any(cell.startswith("'=HYPERLINK") for row in rows for cell in row)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"

    verteiler = db.session.scalar(select(Verteiler))
    xlsx = staff_client.submit("/verteiler/export", {"format": "xlsx", "list_id": str(verteiler.id)}, form_url="/verteiler/")
    sheet = load_workbook(io.BytesIO(xlsx.get_data())).active
    assert sheet.max_row == 54 and sheet.title == "Alle KI-Dezernate"
    assert audit_actions()[-2:] == ["kontakte.exportiert", "kontakte.exportiert"]


def test_verteiler_create_with_filter_and_members_edit_delete(staff_client, demo):
    member = db.session.scalar(select(Contact).join(Organisation).where(Organisation.regierungsbezirk == "Münster").limit(1))
    response = staff_client.submit("/verteiler/listen/neu", {
        "name": "Kreise Köln", "use_filter": "y", "kind": ["kreis"], "regierungsbezirk": ["Köln"],
        "members": f"{member.email}\n"})
    assert response.status_code == 302, response.get_data(as_text=True)
    verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == "Kreise Köln"))
    assert verteiler.filter == {"kind": "kreis", "regierungsbezirk": "Köln"} and verteiler.members == [member]
    detail = staff_client.get(f"/verteiler/listen/{verteiler.id}").get_data(as_text=True)
    assert member.email in detail and "Art: Kreis; Regierungsbezirk: Köln" in detail

    unknown = staff_client.submit(f"/verteiler/listen/{verteiler.id}/bearbeiten", {"name": "Kreise Köln", "members": "niemand@x.example"})
    assert unknown.status_code == 422 and "niemand@x.example" in unknown.get_data(as_text=True)
    duplicate = staff_client.submit("/verteiler/listen/neu", {"name": "Alle KI-Dezernate"})
    assert duplicate.status_code == 422

    gone = staff_client.submit(f"/verteiler/listen/{verteiler.id}/loeschen", {"confirm": "ja"})
    assert gone.status_code == 302 and db.session.get(Verteiler, verteiler.id) is None
    assert db.session.get(Contact, member.id) is not None
    assert staff_client.get("/verteiler/listen").status_code == 200


def test_verteiler_delete_asks_first_and_needs_the_explicit_confirmation(staff_client, demo):
    verteiler = db.session.scalar(select(Verteiler))
    url = f"/verteiler/listen/{verteiler.id}/loeschen"
    detail = staff_client.get(f"/verteiler/listen/{verteiler.id}").get_data(as_text=True)
    assert f'href="{url}"' in detail and f'action="{url}"' not in detail  # a link to the question, no one-click form

    page = staff_client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Verteiler „Alle KI-Dezernate“ löschen?" in html
    assert "0 feste Mitglieder und einen gespeicherten Filter" in html and "53 aktive Empfänger" in html
    assert 'name="csrf_token"' in html and 'name="confirm" value="ja"' in html
    assert f'href="/verteiler/listen/{verteiler.id}"' in html  # the way back
    assert db.session.get(Verteiler, verteiler.id) is not None  # GET changes nothing

    unconfirmed = staff_client.submit(url, {})
    assert unconfirmed.status_code == 303 and unconfirmed.headers["Location"].endswith(url)
    assert staff_client.post(url, data={"confirm": "ja"}).status_code == 400  # no CSRF token
    db.session.expire_all()
    assert db.session.get(Verteiler, verteiler.id) is not None
    assert "verteiler.geloescht" not in audit_actions()

    done = staff_client.submit(url, {"confirm": "ja"}, follow_redirects=True)
    assert done.status_code == 200 and "Der Verteiler ist gelöscht" in done.get_data(as_text=True)
    assert db.session.get(Verteiler, verteiler.id) is None and audit_actions()[-1] == "verteiler.geloescht"
    assert db.session.scalar(select(func.count(Contact.id))) == 53


def test_list_delete_page_uses_singular_for_one(staff_client, demo):
    member = db.session.scalar(select(Contact).limit(1))
    verteiler = Verteiler(name="Eine Person", filter=None, members=[member])
    db.session.add(verteiler)
    db.session.commit()
    html = staff_client.get(f"/verteiler/listen/{verteiler.id}/loeschen").get_data(as_text=True)
    assert "hat 1 festes Mitglied" in html and "erreicht zurzeit 1 aktiven Empfänger." in html


def test_import_upload_preview_mapping_apply(staff_client, app):
    rows = [list(r) for r in ROWS]
    rows[2][HEADERS.index("E-Mail")] = "kaputt"
    data = csv_data(headers=[*HEADERS, "Sprechzeit"], rows=[[*r, "Mo 9–12"] for r in rows])
    response = staff_client.submit("/verteiler/import", {"file": (io.BytesIO(data), "liste.csv")},
                                   content_type="multipart/form-data")
    assert response.status_code == 302
    preview_url = response.headers["Location"]
    page = staff_client.get(preview_url).get_data(as_text=True)
    assert 'id="anzahl-neu">2<' in page and 'id="anzahl-ungueltig">1<' in page and "kaputt" in page
    assert "(2 Änderungen speichern)" in page
    assert "Spalte „Sprechzeit“" in page
    assert db.session.scalar(select(func.count(Contact.id))) == 0  # the preview writes nothing

    mapped = staff_client.get(preview_url + "?header-1=Sprechzeit&map-1=notes").get_data(as_text=True)
    assert '<option value="notes" selected>' in mapped
    applied = staff_client.submit(preview_url, {"header-1": "Sprechzeit", "map-1": "notes", "action": "anwenden", "list_name": "Neu importiert"})
    assert applied.status_code == 302
    assert db.session.scalar(select(func.count(Contact.id))) == 2
    assert db.session.scalar(select(Contact.notes).where(Contact.last_name == "Jäger")) == "Mo 9–12"
    assert db.session.scalar(select(func.count(ImportUpload.id))) == 0  # the upload is gone
    assert staff_client.get(preview_url).status_code == 404


def test_import_bad_files_show_german_errors(staff_client, app):
    for data, name, message in [
        (b"", "leer.csv", "Bitte eine Datei auswählen"),
        (b"%PDF-1.4", "x.pdf", "weder eine CSV- noch eine XLSX-Datei"),
        (b"Name;Vorname\r\nA;B\r\n", "x.csv", "keine Spalte „E-Mail“"),
    ]:
        payload = {"file": (io.BytesIO(data), name)} if data else {}
        response = staff_client.submit("/verteiler/import", payload, content_type="multipart/form-data")
        assert response.status_code == 422 and message in response.get_data(as_text=True), name
    assert db.session.scalar(select(func.count(ImportUpload.id))) == 0


def test_import_upload_limit(staff_client, app):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    data = csv_data(rows=ROWS * 40)
    response = staff_client.submit("/verteiler/import", {"file": (io.BytesIO(data), "gross.csv")}, content_type="multipart/form-data")
    assert response.status_code == 413 and "größer als" in response.get_data(as_text=True)


def test_import_discard_and_foreign_token(staff_client, app, make_user):
    response = staff_client.submit("/verteiler/import", {"file": (io.BytesIO(xlsx_data()), "l.xlsx")}, content_type="multipart/form-data")
    preview_url = response.headers["Location"]
    discarded = staff_client.submit(preview_url, {"action": "verwerfen"})
    assert discarded.status_code == 302 and db.session.scalar(select(func.count(Contact.id))) == 0
    assert db.session.scalar(select(func.count(ImportUpload.id))) == 0


def test_organisation_pages(staff_client, demo):
    assert staff_client.get("/verteiler/kommunen").status_code == 200
    org = db.session.scalar(select(Organisation).where(Organisation.name == "Köln"))
    response = staff_client.submit(f"/verteiler/kommunen/{org.id}", {
        "name": "Köln", "kind": "kreisfreie_stadt", "regierungsbezirk": "Köln", "authority": "Stadt Köln",
        "street": "Willy-Brandt-Platz 2", "postcode": "50679", "town": "Köln"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Organisation, org.id).street == "Willy-Brandt-Platz 2"
    clash = staff_client.submit("/verteiler/kommunen/neu", {"name": "köln", "kind": "sonstige"})
    assert clash.status_code == 422
