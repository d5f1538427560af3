"""The HTML part of every kind of mail: styled inline, system fonts, no images, dark-mode safe, and the
sender's signature with each line on a line of its own.

Each mail goes the outbox road (enqueue → build_mime) and is read back with ``email`` and
``policy.default``, as a mail program would.
"""
from __future__ import annotations

import email
import re
from email import policy
from html.parser import HTMLParser

import pytest

from ki_post.events import mails as event_mails, services
from ki_post.extensions import db
from ki_post.letters.services import signature_lines
from ki_post.outbox.models import OutboxMessage
from ki_post.outbox.services import build_mime, create_mailing, enqueue, mail_template_kinds, render_mail

SIGNATURE = ["Agnes Heuvelmann", "Veranstaltungsteam, Abteilung IV",
             "Ministerium für Arbeit, Integration und Soziales des Landes Nordrhein-Westfalen"]
# Enough for every template in templates/mail (each uses its own part of it).
CONTEXT = {
    "anrede": "Sehr geehrte Frau Dr. Schmidt,", "betreff": "Förderung 2027", "datum": "8. Februar 2017",
    "aktenzeichen": "9506", "dateiname": "Rundschreiben.pdf", "name": "Erika Muster", "zeitpunkt": "heute",
    "absaetze": ["Erster Absatz."], "links": [], "event": {"title": "Fachtag", "description": "", "location": "Düsseldorf"},
    "beginn": "11:00", "ende": "13:00", "frist": "", "link": "https://ki-post.example/a/xyz", "organisation": "Stadt Köln",
    "status": "Zusage", "begleitpersonen": 0, "begleitpersonen_text": "0 Begleitpersonen",
    "antworten": [("Welchen Workshop besuchen Sie?", "Workshop C: Wohnen")], "aenderungen": ["Neuer Ort"], "grund": "Terminkonflikt",
    "gueltig_bis": "31. Januar 2027", "absender": "\n".join(SIGNATURE),
}


class _Lines(HTMLParser):
    """The text as a mail program lays it out: a line break at <br> and around block elements."""

    BLOCKS = {"p", "div", "li", "tr", "h1", "h2", "table", "caption", "ul", "footer", "main"}

    def __init__(self):
        super().__init__()
        self.text = []

    def handle_starttag(self, tag, attrs):
        if tag == "br" or tag in self.BLOCKS:
            self.text.append("\n")

    def handle_endtag(self, tag):
        if tag in self.BLOCKS:
            self.text.append("\n")

    def handle_data(self, data):
        self.text.append(data.replace("\n", " "))

    def lines(self) -> list[str]:
        return [" ".join(line.split()) for line in "".join(self.text).split("\n") if line.strip()]


def html_lines(html: str) -> list[str]:
    parser = _Lines()
    parser.feed(html)
    return parser.lines()


def through_outbox(subject: str, text: str, html: str) -> str:
    """The HTML part as the recipient's program decodes it from the RFC 5322 bytes."""
    mailing = create_mailing("allgemein", "Layout")
    enqueue(mailing, to_email="erika@stadt.example", to_name="Erika Muster", subject=subject, text=text, html=html)
    db.session.flush()
    message = db.session.query(OutboxMessage).filter_by(mailing_id=mailing.id).one()
    parsed = email.message_from_bytes(build_mime(message), policy=policy.default)
    return parsed.get_body(("html",)).get_content()


def assert_well_laid_out(html: str, signature: list[str]) -> None:
    lines = html_lines(html)
    greeting = max(i for i, line in enumerate(lines) if line in ("Mit freundlichen Grüßen", "Viele Grüße"))
    assert lines[greeting + 1:greeting + 1 + len(signature)] == signature, lines[greeting:]
    assert "<img" not in html.lower()
    assert "Times" not in html and "sans-serif" in html
    assert re.search(r"<p(?![^>]*style=)[\s>]", html) is None, "ein Absatz ohne eigenen Stil"
    # Dark mode: a text colour is only ever set together with its background.
    for style in re.findall(r'style="([^"]*)"', html):
        if re.search(r"(?<![-\w])color:", style):
            assert "background-color:" in style, style


@pytest.mark.parametrize("kind", mail_template_kinds())
def test_every_kind_renders_a_styled_html_part_with_the_signature_on_separate_lines(app, kind):
    mail = render_mail(kind, dict(CONTEXT))
    assert mail.html is not None
    html = through_outbox(mail.subject, mail.text, mail.html)
    assert_well_laid_out(html, SIGNATURE)


def test_a_closing_of_its_own_keeps_the_signature_apart(app):
    mail = render_mail("allgemein", dict(CONTEXT, gruss="Viele Grüße"))
    assert_well_laid_out(through_outbox(mail.subject, mail.text, mail.html), SIGNATURE)


@pytest.mark.parametrize("kind", ["einladung", "aktualisierung", "absage", "erinnerung", "bestaetigung", "nachruecker"])
def test_event_mails_sign_with_the_sender_lines(published, kind):
    event = published(1)
    invitation = event.invitations[0]
    told = event_mails.EventFacts.of(event)
    mail = event_mails.render(kind, event, invitation, told=told, audience=("open",))
    html = through_outbox(mail.subject, mail.text, mail.html)
    assert_well_laid_out(html, signature_lines())
    assert len(signature_lines()) == 3


def test_recipient_data_stays_text_and_gets_no_style(app):
    mail = render_mail("allgemein", dict(CONTEXT, anrede='<p onclick="x">Hallo</p>', absaetze=["<a href=x>y</a>"]))
    assert "&lt;p onclick=" in mail.html and "&lt;a href=x&gt;" in mail.html
    assert mail.html.count("<a ") == 1  # only the privacy link of the footer
