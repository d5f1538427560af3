"""A mailed circular sent through a real SMTP server (aiosmtpd), and helpers to read an Akten-Export."""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass

from lxml import etree

from ki_post.exports import unneutralise
from ki_post.extensions import db
from ki_post.letters.services import update_sender_profile
from ki_post.recipients.models import Contact, Organisation
from ki_post.recipients.services import save_verteiler
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401 - fixtures used here

MINISTRY = "Ministerium für Kinder, Jugend, Familie, Gleichstellung, Flucht und Integration"
NS = {"m": "urn:ki-post:akten-export:1"}


def three_contacts() -> list[Contact]:
    """Three contacts in three towns, a Verteiler "Drei Städte" of them, and the sending ministry (committed)."""
    update_sender_profile({"ministerium": MINISTRY})
    contacts = []
    for k, town in enumerate(("Köln", "Bonn", "Essen")):
        organisation = Organisation(name=f"Stadt {town}", kind="kreisfreie_stadt", street="Rathausplatz 1",
                                    postcode=f"5{k}000", town=town)
        contact = Contact(anrede="frau", first_name="Erika", last_name=f"Muster{k}", email=f"erika{k}@{town.lower()}.example",
                          organisation=organisation)
        db.session.add_all([organisation, contact])
        contacts.append(contact)
    db.session.flush()
    save_verteiler(None, name="Drei Städte", member_ids=[c.id for c in contacts])
    db.session.commit()
    return contacts


@dataclass
class Export:
    files: dict[str, bytes]
    manifest: list[dict[str, str]]
    xml: etree._Element

    def csv(self, name: str) -> list[dict[str, str]]:
        text = self.files[name].decode("utf-8-sig")
        return [{key: unneutralise(value) for key, value in row.items()} for row in csv.DictReader(io.StringIO(text), delimiter=";")]


def read_export(data: bytes) -> Export:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        files = {info.filename: archive.read(info) for info in archive.infolist()}
    manifest_text = files["manifest.csv"].decode("utf-8-sig")
    manifest = [{key: unneutralise(value) for key, value in row.items()}
                for row in csv.DictReader(io.StringIO(manifest_text), delimiter=";")]
    xml = etree.fromstring(files["manifest.xml"])  # well-formed, or this raises
    return Export(files, manifest, xml)
