"""Every mail carries the data-protection notice in both parts (DSG-03, DSG-T5)."""
from pathlib import Path

from ki_post.outbox.services import MAIL_TEMPLATE_DIR, mail_template_kinds, render_mail


def test_test_mail_links_the_privacy_notice_in_text_and_html(app):
    mail = render_mail("testversand", {"name": "Erika Muster", "zeitpunkt": "24. November 2026, 18:00 Uhr"})
    link = "http://127.0.0.1:5000/datenschutz"
    assert link in mail.text
    assert f'<a href="{link}"' in mail.html
    assert mail.html.count("<h1") == 1 and '<html lang="de">' in mail.html


def test_every_kind_uses_the_shared_layout_and_footer():
    kinds = mail_template_kinds()
    assert "einladung" in kinds and "_layout" not in kinds and "_datenschutz" not in kinds
    for kind in kinds:
        text = (Path(MAIL_TEMPLATE_DIR) / f"{kind}.txt").read_text()
        html = (Path(MAIL_TEMPLATE_DIR) / f"{kind}.html").read_text()
        assert '{% include "_datenschutz.txt" %}' in text, kind
        assert html.startswith('{% extends "_layout.html" %}'), kind
