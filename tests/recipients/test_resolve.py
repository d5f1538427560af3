"""resolve_recipients and verteiler_by_name: who receives a mailing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from ki_post.errors import NotFound, ValidationError
from ki_post.extensions import db
from ki_post.recipients.models import Contact, Organisation, Verteiler
from ki_post.recipients.services import resolve_recipients, verteiler_by_name


def test_all_ki_dezernate_is_every_active_contact_ordered_by_organisation(demo):
    verteiler = verteiler_by_name("Alle KI-Dezernate")
    contacts = resolve_recipients(verteiler_id=verteiler.id)
    assert len(contacts) == 53
    names = [c.organisation.name for c in contacts]
    assert names == sorted(names)

    first = contacts[0]
    first.active = False
    db.session.commit()
    assert first not in resolve_recipients(verteiler_id=verteiler.id)
    assert len(resolve_recipients(verteiler_id=verteiler.id)) == 52


def test_unknown_verteiler_raises_not_found_in_german(app):
    with pytest.raises(NotFound, match="Verteiler „Gibt’s nicht“ gibt es nicht."):
        verteiler_by_name("Gibt’s nicht")
    with pytest.raises(NotFound):
        resolve_recipients(verteiler_id=999)


def test_filter_by_kind_regierungsbezirk_and_text(demo):
    kreise_koeln = resolve_recipients(filters={"kind": "kreis", "regierungsbezirk": "Köln"})
    assert kreise_koeln and all(c.organisation.kind == "kreis" and c.organisation.regierungsbezirk == "Köln" for c in kreise_koeln)
    expected = db.session.scalars(
        select(Contact).join(Organisation).where(Organisation.kind == "kreis", Organisation.regierungsbezirk == "Köln")
    ).all()
    assert {c.id for c in kreise_koeln} == {c.id for c in expected}

    cologne = resolve_recipients(filters={"q": "KÖLN"})
    assert {c.organisation.name for c in cologne} >= {"Köln"}
    weiss = resolve_recipients(filters={"q": "weiß"})
    assert weiss and all("Weiß" in c.last_name for c in weiss)
    assert resolve_recipients(filters={"q": "100%_"}) == []
    with pytest.raises(ValidationError):
        resolve_recipients(filters={"kind": "dorf"})
    with pytest.raises(ValidationError):
        resolve_recipients(filters={"farbe": "blau"})


def test_explicit_ids_and_nothing_means_nobody(demo):
    ids = db.session.scalars(select(Contact.id).order_by(Contact.id).limit(3)).all()
    assert sorted(c.id for c in resolve_recipients(contact_ids=ids)) == list(ids)
    assert resolve_recipients() == []
    assert len(resolve_recipients(filters={})) == 53


def test_verteiler_union_of_static_members_and_saved_filter(demo):
    outsider = db.session.scalar(
        select(Contact).join(Organisation).where(Organisation.regierungsbezirk == "Münster").order_by(Contact.id).limit(1)
    )
    verteiler = Verteiler(name="Köln plus eine", filter={"regierungsbezirk": "Köln"}, members=[outsider])
    static_only = Verteiler(name="Nur statisch", filter=None, members=[outsider])
    db.session.add_all([verteiler, static_only])
    db.session.commit()

    contacts = resolve_recipients(verteiler_id=verteiler.id)
    koeln = [c for c in contacts if c.organisation.regierungsbezirk == "Köln"]
    assert outsider in contacts and len(contacts) == len(koeln) + 1
    assert resolve_recipients(verteiler_id=static_only.id) == [outsider]
    # a filter narrows a Verteiler down
    assert resolve_recipients(verteiler_id=verteiler.id, filters={"regierungsbezirk": "Münster"}) == [outsider]
