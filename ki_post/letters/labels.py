"""Address labels and window-envelope sheets for circulars that go by post.

The address is the one the letters print (``recipients.addressing.address_lines``: DIN 5008
Anschriftzone, at most six lines), so label and letter always agree. Contacts without a postal
address (no organisation, or neither street nor town) get no label; they are named in the result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from ..errors import ValidationError
from ..recipients.addressing import address_lines, postal_lines
from ..recipients.models import Contact
from ..recipients.services import resolve_recipients, verteiler_by_name
from . import pdf, services
from .sheets import Label, Stock, sheet_docx, stock_among, stocks_of
from .textfit import Block

DEFAULT_STOCK = "etikett-70x37"


def label_stocks() -> list[Stock]:
    """Stocks for addresses: label sheets and the window-envelope sheet."""
    return stocks_of("etikett") + stocks_of("fenster")


def stock_for_addresses(name: str | None) -> Stock:
    return stock_among(name or DEFAULT_STOCK, label_stocks(), "Etikettenbogen")


@dataclass
class LabelSheets:
    pdf: bytes
    count: int
    stock: Stock
    without_address: list[str] = field(default_factory=list)  # names of contacts left out


def address_label(contact: Contact, stock: Stock, return_line: str = "") -> Label:
    address = Block("\n".join(address_lines(contact)), 10, 7, max_lines=6, keep_lines=True)
    if stock.kind == "fenster":
        # DIN 5008: the Rücksendeangabe at 8 pt (6 pt at the least for a long one), one line.
        return Label((Block(return_line, 8, 6, keep_lines=True), address))
    return Label((address,))


def has_postal_address(contact: Contact) -> bool:
    return len(postal_lines(contact.organisation)) == 2


def address_labels(list_name: str | None = None, stock_name: str | None = None) -> LabelSheets:
    """Labels (or window sheets) for the active contacts of a Verteiler, or of all active contacts."""
    stock = stock_for_addresses(stock_name)
    contacts = resolve_recipients(verteiler_id=verteiler_by_name(list_name).id) if list_name else resolve_recipients(filters={})
    with_address = [contact for contact in contacts if has_postal_address(contact)]
    missing = [contact.full_name or contact.email for contact in contacts if not has_postal_address(contact)]
    if not with_address:
        raise ValidationError("Keiner der Kontakte hat eine Postanschrift (Straße und Ort der Kommune)." if contacts
                              else "Keine aktiven Kontakte gefunden (Verteiler leer?).", "list")
    profile = services.sender_profile()
    labels = [address_label(contact, stock, profile.ruecksendeangabe) for contact in with_address]
    what = "Anschriften für Fensterumschläge" if stock.kind == "fenster" else "Adressetiketten"
    document = sheet_docx(stock, labels, title=f"{what}: {list_name or 'alle aktiven Kontakte'}",
                          author=profile.ministerium or current_app.config.get("APP_NAME", "KI-Post"))
    (result,) = pdf.convert_to_pdf([document], soffice=current_app.config.get("SOFFICE_PATH") or None)
    return LabelSheets(result, len(labels), stock, missing)
