"""Art. 15 DSGVO: the data export of a person holds every value KI-Post stores about them.

The oracle is the marker scan of the whole database (every table, every blob): whatever marker it
finds stored anywhere must be readable in the export, old values that live on only in letters and
mails included.
"""
from __future__ import annotations

import json

import pytest

from ki_post.extensions import db
from tests.erasure import scenario as erasure_scenario
from tests.erasure.scenario import BYSTANDER_EMAIL, DIETARY, MARKERS, REMARK
from tests.marker_scan import scan_database

NEW_NAME, NEW_PHONE = "Hochzeitname-Xqneu", "02104 5555-1234"


@pytest.fixture
def scenario(smtp_app, smtp, tmp_path):
    return erasure_scenario.build(smtp_app, smtp, tmp_path)


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_export_holds_every_marker_stored_anywhere(scenario):
    contact = scenario.contact()
    url = f"/verteiler/kontakte/{contact.id}"
    # She married and changed her phone after the mailings: the old values live on only in the history.
    edited = scenario.staff.submit(f"{url}/bearbeiten", {
        "organisation_id": contact.organisation_id, "anrede": "frau", "academic_title": contact.academic_title,
        "office_title": contact.office_title, "first_name": contact.first_name, "last_name": NEW_NAME,
        "function": contact.function, "email": contact.email, "phone": NEW_PHONE, "notes": contact.notes, "active": "y"})
    assert edited.status_code == 302
    markers = [*MARKERS, NEW_NAME, "5555-1234"]
    stored = {hit.marker for hit in scan_database(markers)}
    assert stored == set(markers)  # each of them is stored somewhere

    response = scenario.staff.submit(f"{url}/auskunft", form_url=url)
    assert response.status_code == 200
    export = json.loads(response.get_data(as_text=True))
    texts = [text.casefold() for text in _strings(export)]
    missing = sorted(marker for marker in stored if not any(marker.casefold() in text for text in texts))
    assert missing == []

    # Where the health-relevant and the calendar data are, by name.
    (invitation,) = export["einladungen"]
    assert invitation["ernaehrung"] == DIETARY and invitation["bemerkung"] == REMARK
    assert {reply["kommentar"] for reply in export["kalenderantworten"]} == {erasure_scenario.COMMENT}
    assert len(export["kalenderantworten"]) == 2  # the applied one and the unmatched one
    assert [row["Notizen"] for upload in export["importdateien_in_vorschau"] for row in upload["zeilen"]] == [
        erasure_scenario.PENDING_NOTE]
    # Nothing about the other person on the same Verteiler.
    assert not any(BYSTANDER_EMAIL in text or "beistand" in text for text in texts)
    db.session.rollback()
