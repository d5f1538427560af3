"""Name badges and table cards for an event, as PDF (DOCX sheets of ``letters.sheets`` via LibreOffice).

Who gets one: every invitation with a Zusage (not Warteliste, not vorläufig), ordered by
organisation and name. A badge shows the name (with academic title), the function and the
organisation (Kommune) of the contact; for each companion one more badge follows with a blank line
to write the name on and "Begleitung von <Name>" (companions' names are not asked for). Table
cards are for the invited persons only: a companion sits next to the person they accompany.

A QR code is off by default; ``qr_content`` (invitation → text, or None for none) switches it on,
e.g. for a personal check-in link. Badges carry the event's title in small print at the bottom
(``event_title``, on by default); table cards print the same text on both faces of the tent.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from ..errors import ValidationError
from ..extensions import db
from ..letters import pdf
from ..letters.services import sender_profile
from ..letters.fontmetrics import text_width_mm
from ..letters.sheets import Label, Stock, sheet_docx, stock_among, stocks_of
from ..letters.textfit import WIDTH_RESERVE, Block
from ..recipients.addressing import name_line
from ..recipients.models import Contact
from .models import Event, Invitation, InvitationState

DEFAULT_STOCK = "namensschild-90x54"
WRITE_ON_PT = 12.0  # size of the blank name line of a companion's badge

# Largest and smallest sizes (pt) of name, function and organisation per kind of stock.
SIZES = {"namensschild": ((20, 9), (11, 7), (12, 7)), "tischkarte": ((32, 14), (16, 9), (18, 10))}


def badge_stocks() -> list[Stock]:
    return stocks_of("namensschild") + stocks_of("tischkarte")


def stock_for_badges(name: str | None) -> Stock:
    return stock_among(name or DEFAULT_STOCK, badge_stocks(), "Bogen")


def write_on_line(stock: Stock, with_qr: bool) -> str:
    """The blank name line of a companion's badge: as many "_" as fill nine tenths of the text width."""
    usable = stock.text_width(with_qr) * (1 - WIDTH_RESERVE) * 0.9
    return "_" * int(usable // text_width_mm("_", WRITE_ON_PT))


def download_name(stock: Stock, event_id: int, *, qr: bool = False) -> str:
    """The file name of a download: what, which stock, whether with QR codes, the event (namensschilder-90x54-10-7.pdf)."""
    what = "tischkarten" if stock.kind == "tischkarte" else "namensschilder"
    size = stock.name.split("-", 1)[1]
    return f"{what}-{size}{'-qr' if qr else ''}-{event_id}.pdf"


def person(invitation: Invitation) -> tuple[str, str, str]:
    """(name with title, function, organisation): from the contact when there is one, else the invitation's copies."""
    contact = db.session.get(Contact, invitation.contact_id) if invitation.contact_id else None
    if contact is not None and contact.anonymised_at is None:
        organisation = contact.organisation.name if contact.organisation else invitation.organisation_name
        return name_line(contact) or invitation.name, contact.function or "", organisation or ""
    return invitation.name or invitation.email, "", invitation.organisation_name or ""


def _label(stock: Stock, name: str, function: str, organisation: str, qr: str | None, footer: str,
           *, write_on: bool = False) -> Label:
    (name_max, name_min), (function_max, function_min), (org_max, org_min) = SIZES[stock.kind]
    gap = 2.0 if stock.kind == "namensschild" else 4.0
    first = Block(name, WRITE_ON_PT, WRITE_ON_PT) if write_on else Block(name, name_max, name_min, True, max_lines=3)
    return Label((first,
                  Block(function, function_max, function_min, max_lines=2, space_before_mm=gap),
                  Block(organisation, org_max, org_min, max_lines=2, space_before_mm=gap * 0.75)),
                 qr if stock.qr_w else None, footer)


def event_labels(event: Event, stock: Stock, qr_content: Callable[[Invitation], str | None] | None = None,
                 *, event_title: bool = True) -> list[Label]:
    """One label per Zusage (and on badges one per companion); ``event_title``: the title at the foot of each badge."""
    footer = event.title if event_title and stock.kind == "namensschild" else ""
    line = write_on_line(stock, with_qr=qr_content is not None)
    accepted = sorted((i for i in event.invitations if i.state == InvitationState.ZUGESAGT),
                      key=lambda i: (i.organisation_name.lower(), i.name.lower()))
    labels = []
    for invitation in accepted:
        name, function, organisation = person(invitation)
        labels.append(_label(stock, name, function, organisation, qr_content(invitation) if qr_content else None, footer))
        if stock.kind == "namensschild":
            for _ in range(invitation.companions or 0):
                labels.append(_label(stock, line, f"Begleitung von {name}", organisation, None, footer, write_on=True))
    return labels


def badges_pdf(event: Event, stock_name: str | None = None,
               qr_content: Callable[[Invitation], str | None] | None = None, *, event_title: bool = True) -> tuple[bytes, int]:
    """The PDF and the number of badges or cards in it."""
    stock = stock_for_badges(stock_name)
    labels = event_labels(event, stock, qr_content, event_title=event_title)
    if not labels:
        raise ValidationError("Für diese Veranstaltung gibt es noch keine Zusagen.")
    what = "Tischkarten" if stock.kind == "tischkarte" else "Namensschilder"
    profile = sender_profile()
    document = sheet_docx(stock, labels, title=f"{what}: {event.title}",
                          author=profile.ministerium or current_app.config.get("APP_NAME", "KI-Post"))
    (result,) = pdf.convert_to_pdf([document], soffice=current_app.config.get("SOFFICE_PATH") or None)
    return result, len(labels)
