"""Fixed members of a Verteiler are picked with checkboxes from a server-side search, or all results at once."""
from __future__ import annotations

import re

from sqlalchemy import select

from ki_post.extensions import db
from ki_post.recipients.models import Contact, Organisation, Verteiler


def checkboxes(html: str) -> dict[int, bool]:
    """member_ids checkbox value → checked."""
    return {int(m.group(1)): "checked" in m.group(0)
            for m in re.finditer(r'<input type="checkbox" name="member_ids" value="(\d+)"[^>]*>', html)}


def test_search_pick_and_save_without_typing_addresses(staff_client, demo):
    page = staff_client.get("/verteiler/listen/neu").get_data(as_text=True)
    assert 'name="members"' not in page and "Noch keine festen Mitglieder." in page and 'id="mitglieder-suche"' in page
    koeln = db.session.scalar(select(Contact).join(Organisation).where(Organisation.name == "Köln"))

    found = staff_client.submit("/verteiler/listen/neu", {"name": "Auswahl", "mitglieder_suche": "Köln", "action": "suchen"})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and 'value="Auswahl"' in html  # the form keeps what was typed
    boxes = checkboxes(html)
    assert koeln.id in boxes and not any(boxes.values())  # offered, nothing chosen yet
    assert db.session.scalar(select(Verteiler).where(Verteiler.name == "Auswahl")) is None  # searching saves nothing

    saved = staff_client.submit("/verteiler/listen/neu", {"name": "Auswahl", "member_ids": [str(koeln.id)], "action": "speichern"})
    assert saved.status_code == 302
    verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == "Auswahl"))
    assert verteiler.members == [koeln]

    edit = staff_client.get(f"/verteiler/listen/{verteiler.id}/bearbeiten").get_data(as_text=True)
    assert checkboxes(edit) == {koeln.id: True}  # chosen members come checked
    # Unchecking removes: the browser sends no member_ids at all.
    assert staff_client.submit(f"/verteiler/listen/{verteiler.id}/bearbeiten", {"name": "Auswahl", "action": "speichern"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Verteiler, verteiler.id).members == []


def test_all_results_of_the_search_are_added_at_once(staff_client, demo):
    kreise = set(db.session.scalars(select(Contact.id).join(Organisation).where(Organisation.kind == "kreis",
                                                                               Contact.active.is_(True))))
    assert len(kreise) > 20
    first = db.session.scalar(select(Contact).join(Organisation).where(Organisation.name == "Köln"))
    page = staff_client.submit("/verteiler/listen/neu", {"name": "Alle Kreise", "mitglieder_suche": "Kreis",
                                                         "member_ids": [str(first.id)], "action": "alle"})
    html = page.get_data(as_text=True)
    chosen = {cid for cid, checked in checkboxes(html).items() if checked}
    assert chosen >= kreise | {first.id}  # the earlier choice stays
    saved = staff_client.submit("/verteiler/listen/neu", {"name": "Alle Kreise", "member_ids": [str(i) for i in chosen],
                                                          "action": "speichern"})
    assert saved.status_code == 302
    verteiler = db.session.scalar(select(Verteiler).where(Verteiler.name == "Alle Kreise"))
    assert {m.id for m in verteiler.members} == chosen


def test_a_forged_member_id_is_refused(staff_client, demo):
    answer = staff_client.submit("/verteiler/listen/neu", {"name": "Falsch", "member_ids": ["999999"], "action": "speichern"})
    assert answer.status_code == 422 and "gibt es nicht mehr" in answer.get_data(as_text=True)
    assert db.session.scalar(select(Verteiler).where(Verteiler.name == "Falsch")) is None
