"""`flask letters mail`: a circular per recipient as attachment with a cover mail, through the outbox."""
from __future__ import annotations

import email
import io
import shutil
from email import policy

import pytest
from docx import Document
from sqlalchemy import select

from ki_post.extensions import db
from ki_post.outbox.models import Mailing
from ki_post.outbox.services import build_mime


def test_letters_mail_enqueues_docx_per_recipient(runner, demo):
    result = runner.invoke(args=["letters", "mail", "--template", "rundschreiben", "--list", "Alle KI-Dezernate",
                                 "--subject", "Förderung 2027"])
    assert result.exit_code == 0, result.output
    mailing_id = int(result.output.strip().splitlines()[-1])
    mailing = db.session.get(Mailing, mailing_id)
    assert mailing.state == "aktiv" and mailing.kind == "rundschreiben"
    assert len(mailing.messages) == 53
    assert len({m.to_email for m in mailing.messages}) == 53
    first = email.message_from_bytes(build_mime(mailing.messages[0]), policy=policy.default)
    assert str(first["Subject"]) == "Rundschreiben: Förderung 2027"
    assert "Förderung 2027" in first.get_body(("plain",)).get_content()
    (attachment,) = list(first.iter_attachments())
    assert attachment.get_filename().endswith(".docx")
    text = "\n".join(p.text for p in Document(io.BytesIO(attachment.get_payload(decode=True))).paragraphs)
    assert "Förderung 2027" in text


def test_letters_mail_unknown_list_changes_nothing(runner, demo):
    result = runner.invoke(args=["letters", "mail", "--template", "rundschreiben", "--list", "Gibt es nicht"])
    assert result.exit_code != 0 and "gibt es nicht" in result.output
    assert db.session.scalar(select(Mailing)) is None


def test_letters_mail_pdf(runner, demo):
    if not (shutil.which("soffice") or shutil.which("libreoffice")):
        pytest.skip("LibreOffice (soffice) fehlt")
    from ki_post.recipients.models import Contact
    from ki_post.recipients.services import save_verteiler

    two = db.session.scalars(select(Contact.id).order_by(Contact.id).limit(2)).all()
    save_verteiler(None, name="Zwei Dezernate", member_ids=two)
    db.session.commit()
    result = runner.invoke(args=["letters", "mail", "--template", "rundschreiben", "--format", "pdf",
                                 "--subject", "PDF-Test", "--entwurf", "--list", "Zwei Dezernate"])
    assert result.exit_code == 0, result.output
    mailing = db.session.get(Mailing, int(result.output.strip().splitlines()[-1]))
    assert mailing.state == "entwurf"
    assert len(mailing.messages) == 2
    assert mailing.messages[0].attachments[0].mimetype == "application/pdf"
    assert mailing.messages[0].attachments[0].filename.endswith(".pdf")
