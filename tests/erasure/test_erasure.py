"""Erased means erased: after anonymising or deleting a person, no table, blob or file holds their data,
except the archived letters as sent (records duty), which only the administration may open.

Both backends; the person goes through the whole product first (tests/erasure_scenario.py).
"""
from __future__ import annotations

import csv
import io
import zipfile

import pytest
from sqlalchemy import select

from ki_post.auth.models import AuditEntry
from ki_post.extensions import db
from ki_post.letters.models import ArchivedLetter
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import mailing_counts
from ki_post.recipients.models import Contact
from tests.erasure import scenario as erasure_scenario
from tests.erasure.scenario import BYSTANDER_EMAIL, MARKERS, PERSON_EMAIL, mail_mentions, run_worker
from tests.marker_scan import docx_text, scan_database, scan_files


@pytest.fixture
def scenario(smtp_app, smtp, tmp_path):
    return erasure_scenario.build(smtp_app, smtp, tmp_path)


def _kept(hit, archived_keys: set[str]) -> bool:
    """The documented kept copies: archived letters and the bytes they point to."""
    if hit.table == "archived_letters":
        return True
    return hit.table == "blobs" and hit.where.split("#", 1)[1].split("/", 1)[0] in archived_keys


@pytest.mark.parametrize("action", ["anonymisieren", "loeschen"])
def test_erasure_leaves_the_person_only_in_the_archived_letters(scenario, action, tmp_path):
    app, smtp = scenario.app, scenario.smtp
    before = scan_database(MARKERS)
    # The scan sees the person everywhere the product put them (so "nothing found" later means something).
    assert {hit.table for hit in before} >= {"contacts", "outbox_messages", "invitations", "calendar_replies", "blobs",
                                             "archived_letters", "recipient_import_uploads"}
    assert {hit.marker for hit in before if hit.table == "invitations"} >= {"Xqbemerkung", "Xqdiaet"}
    assert {hit.marker for hit in before if hit.table == "calendar_replies"} >= {"Xqkommentar", PERSON_EMAIL, "Quirinella"}
    sent_before = mailing_counts(scenario.circular_mailing_id)
    received_before = len(smtp.handler.received)

    confirm_url = f"/verteiler/kontakte/{scenario.contact_id}/loeschen"
    done = scenario.admin.submit(confirm_url, {"action": action})
    assert done.status_code == 302

    archived_keys = set(db.session.scalars(select(ArchivedLetter.sha256)))
    after = scan_database(MARKERS) + scan_files([tmp_path / "instance", tmp_path / "postausgang"], MARKERS)
    leaks = sorted({(hit.table, hit.where.split("#")[0], hit.marker) for hit in after if not _kept(hit, archived_keys)})
    assert leaks == []
    # The kept copy is really there, unchanged: the letter as sent still names her.
    assert any(hit.table == "blobs" for hit in after) and any(hit.table == "archived_letters" for hit in after)

    # Counts of the past stay right: the circular was sent to two people, the event has her acceptance.
    assert mailing_counts(scenario.circular_mailing_id) == sent_before
    rows = list(csv.reader(io.StringIO(scenario.reader.get(f"/veranstaltungen/{scenario.event_id}/teilnehmende.csv")
                                       .get_data(as_text=True).lstrip("\ufeff")), delimiter=";"))
    assert len(rows) == 3 and not any(marker.casefold() in ";".join(row).casefold() for row in rows for marker in MARKERS)
    assert ["Anonymisiert", "Kreis Mettmann"] == rows[1][:2] and rows[1][3] == "Zusage"

    # Her personal link is dead.
    for token in scenario.old_tokens:
        assert erasure_scenario.PersonClient(app, app.response_class).get(f"/antwort/{token}").status_code == 404

    # The draft from before the erasure is started now: nothing reaches her, the others get theirs.
    waiting = db.session.scalars(select(OutboxMessage.state).where(OutboxMessage.mailing_id == scenario.draft_mailing_id)).all()
    assert sorted(waiting) == ["wartend", "zurueckgezogen"]
    result = app.test_cli_runner().invoke(args=["outbox", "start", str(scenario.draft_mailing_id)])
    assert result.exit_code == 0, result.output
    run_worker(app)
    new = smtp.handler.received[received_before:]
    assert [rcpt.lower() for mail in new for rcpt in mail.rcpt_tos] == [BYSTANDER_EMAIL]
    assert all(mail_mentions(mail.content, MARKERS) == set() for mail in new)

    # The kept letter: the administration can open it, the reading role sees neither it nor her name.
    (letter,) = scenario.person_letters()
    assert letter.addressee_erased_at is not None
    opened = scenario.admin.get(f"/rundschreiben/archiv/brief/{letter.id}")
    assert opened.status_code == 200 and "Zwirbelmeyer-Xq" in docx_text(opened.data)
    assert scenario.reader.get(f"/rundschreiben/archiv/brief/{letter.id}").status_code == 403
    assert scenario.staff.get(f"/rundschreiben/archiv/brief/{letter.id}").status_code == 403
    run_page = scenario.reader.get(f"/rundschreiben/archiv/{scenario.letter_run_id}").get_data(as_text=True)
    assert "Zwirbelmeyer" not in run_page and "nur für die Administration" in run_page
    names = zipfile.ZipFile(io.BytesIO(scenario.reader.get(f"/rundschreiben/archiv/{scenario.letter_run_id}/zip").data)).namelist()
    assert len(names) == 1 and all("Zwirbelmeyer" not in docx_text(zipfile.ZipFile(io.BytesIO(
        scenario.reader.get(f"/rundschreiben/archiv/{scenario.letter_run_id}/zip").data)).read(name)) for name in names)
    admin_zip = zipfile.ZipFile(io.BytesIO(scenario.admin.get(f"/rundschreiben/archiv/{scenario.letter_run_id}/zip").data))
    assert len(admin_zip.namelist()) == 2

    # The pages the reading role sees show her nowhere.
    pages = [f"/postausgang/{scenario.circular_mailing_id}", f"/postausgang/{scenario.draft_mailing_id}",
             f"/veranstaltungen/{scenario.event_id}", "/veranstaltungen/kalenderantworten", "/rundschreiben/archiv/",
             "/verteiler/"] + ([f"/verteiler/kontakte/{scenario.contact_id}"] if action == "anonymisieren" else [])
    for page in pages:
        response = scenario.reader.get(page)
        html = response.get_data(as_text=True).casefold()
        assert response.status_code == 200 and [m for m in MARKERS if m.casefold() in html] == [], page

    # The audit log says what was scrubbed, with counts only.
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action.in_(["kontakt.anonymisiert", "kontakt.geloescht"])))
    assert entry.details["zurueckgezogen"] == 1 and entry.details["einladungen"] == 1
    assert entry.details["kalenderantworten"] == 2 and entry.details["importdateien"] == 1
    if action == "loeschen":
        assert db.session.get(Contact, scenario.contact_id) is None
    else:
        assert db.session.get(Contact, scenario.contact_id).email.endswith("@anonymisiert.invalid")
        # The anonymised record's data export does not reveal the kept letter either.
        url = f"/verteiler/kontakte/{scenario.contact_id}"
        export = scenario.staff.submit(f"{url}/auskunft", form_url=url).get_data(as_text=True)
        assert [marker for marker in MARKERS if marker.casefold() in export.casefold()] == []
        assert '"nur_fuer_die_administration": true' in export


def test_sqlite_file_and_log_keep_no_remnants(scenario, tmp_path):
    """Below the tables: neither free space in the SQLite file nor old page images in its write-ahead
    log hold her data after the erasure is committed."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("Dateiprüfung nur für SQLite; PostgreSQL gibt alte Zeilenversionen mit VACUUM frei")
    # Her name stays in the archived letter's row (kept copy); everything else must be gone.
    markers = [marker for marker in MARKERS if marker not in ("Xqtitel", "Quirinella", "Zwirbelmeyer-Xq")]
    files = [tmp_path / "test.sqlite3", tmp_path / "test.sqlite3-wal"]

    def remnants() -> set[str]:
        data = b"".join(path.read_bytes() for path in files if path.exists()).lower()
        return {marker for marker in markers if marker.lower().encode() in data}

    assert remnants() >= {PERSON_EMAIL, "Xqkommentar"}  # there before
    assert scenario.admin.submit(f"/verteiler/kontakte/{scenario.contact_id}/loeschen", {"action": "anonymisieren"}).status_code == 302
    assert remnants() == set()
