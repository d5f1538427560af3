"""A letter from a user's template as PDF/A-2b for the files: tags, de-DE, title and author, fonts embedded."""
from __future__ import annotations

import pytest

from ki_post.extensions import db
from ki_post.letters import pdf, services
from tests.letters.test_engine import make_docx
from tests.pdfa import assert_pdfa
from tests.records.conftest import MINISTRY, three_contacts


@pytest.mark.skipif(not pdf.pdf_available(), reason="LibreOffice (soffice) fehlt")
def test_letter_from_a_user_template_is_pdfa_for_the_files(app):
    contacts = three_contacts()
    # python-docx's defaults: no title, creator "python-docx", language en-US.
    version, _ = services.upload_template("Eigene Vorlage", make_docx("{{ anrede }},", "es geht um {{ betreff }}."))
    db.session.commit()
    (contact, document), = services.render_letters_for(contacts[:1], version, {"betreff": "Förderung 2027"})
    (letter,) = pdf.convert_to_pdf([document])
    assert_pdfa(letter, title="Rundschreiben: Förderung 2027 – Stadt Köln", author=MINISTRY)


@pytest.mark.skipif(not pdf.pdf_available(), reason="LibreOffice (soffice) fehlt")
def test_the_validator_refuses_a_pdf_that_only_looks_like_pdfa(app):
    """The validator is no rubber stamp: the same letter without its XMP metadata (where PDF/A names
    itself) fails the PDF/A-2b profile."""
    import io

    import page
    import pikepdf

    version, _ = services.upload_template("Eigene Vorlage", make_docx("{{ anrede }},", "Text."))
    db.session.commit()
    (_contact, document), = services.render_letters_for(three_contacts()[:1], version, {"betreff": "Test"})
    (letter,) = pdf.convert_to_pdf([document])
    assert page.validate_pdf_bytes(letter, profile="2b").is_compliant
    stripped = pikepdf.open(io.BytesIO(letter))
    del stripped.Root["/Metadata"]
    buffer = io.BytesIO()
    stripped.save(buffer)
    assert not page.validate_pdf_bytes(buffer.getvalue(), profile="2b").is_compliant
