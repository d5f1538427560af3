"""The Verteiler tells the packages above it when contacts change or are erased."""
from __future__ import annotations

from contextlib import contextmanager

from ki_post.extensions import db
from ki_post.recipients import services
from ki_post.recipients.importer import apply_import
from ki_post.recipients.signals import contact_erasing, contacts_changed
from tests.recipients.files import ROWS, csv_data


@contextmanager
def caught(signal):
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    signal.connect(receiver)
    try:
        yield seen
    finally:
        signal.disconnect(receiver)


def _form(contact, **changes):
    data = {name: getattr(contact, name) for name in services.CONTACT_LIMITS}
    data.update(email=contact.email, organisation_id=contact.organisation_id, **changes)
    return data


def test_rename_by_form_and_by_import_is_announced_no_op_is_not(app):
    apply_import(csv_data(), "liste.csv")
    db.session.commit()
    contact = services.resolve_recipients(filters={"q": "Koch"})[0]

    with caught(contacts_changed) as seen:
        services.save_contact(contact, _form(contact))
    assert seen == []

    with caught(contacts_changed) as seen:
        services.save_contact(contact, _form(contact, last_name="Koch-Berger"))
    assert seen == [{"contact_ids": [contact.id]}]
    # The receiver sees the flushed new name.
    db.session.commit()

    renamed = [list(row) for row in ROWS]
    renamed[0][6] = "Jäger-Schmidt"
    with caught(contacts_changed) as seen:
        apply_import(csv_data(rows=renamed), "liste.csv")
    jaeger = services.resolve_recipients(filters={"q": "Jäger-Schmidt"})[0]
    # The file also names Koch as before the form's rename: the import changes him back.
    assert seen == [{"contact_ids": sorted([jaeger.id, contact.id])}]

    with caught(contacts_changed) as seen:
        apply_import(csv_data(rows=renamed), "liste.csv")
    assert seen == []


def test_erasure_is_announced_before_the_row_changes(app):
    apply_import(csv_data(), "liste.csv")
    db.session.commit()
    first, second = services.resolve_recipients(filters={})[:2]
    names = []

    def receiver(sender, contact, delete):
        names.append((contact.last_name, delete))

    contact_erasing.connect(receiver)
    try:
        services.anonymise_contact(first)
        last_name = second.last_name
        services.delete_contact(second)
    finally:
        contact_erasing.disconnect(receiver)
    assert names[0][1] is False and names[0][0] != "Anonymisiert"
    assert names[1] == (last_name, True)
